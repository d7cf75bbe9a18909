/**
 * Shared Signals out on the embedded stack: a detection strong enough for automatic containment
 * becomes an executed action, and the receiver configured in the providers file gets a signed
 * CAEP session-revoked SET for that identity, verifiable with the keys the stack publishes through
 * its SSF configuration document.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { DEMO_CATALOGUE, demoDetections } from '../../app/cli/demo-scenario.ts';
import { type EmbeddedStack, startEmbedded } from '../../app/embedded.ts';
import { issueToken } from '../../services/api/auth.ts';

describe('Shared Signals out, embedded stack', () => {
  let dir: string;
  let stack: EmbeddedStack;
  const receiver = Fastify();
  const received: Array<{ jwt: string; authorization: string | undefined }> = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tq-signals-e2e-'));
    receiver.addContentTypeParser('application/secevent+jwt', { parseAs: 'string' }, (_r, b, done) =>
      done(null, b),
    );
    receiver.post('/ssf/push', async (req, reply) => {
      received.push({ jwt: req.body as string, authorization: req.headers.authorization });
      return reply.status(202).send();
    });
    const at = await receiver.listen({ host: '127.0.0.1', port: 0 });
    writeFileSync(join(dir, 'catalogue.yaml'), stringify(DEMO_CATALOGUE));
    writeFileSync(join(dir, 'push-token'), 'Bearer receiver-token-1\n');
    writeFileSync(
      join(dir, 'providers.yaml'),
      stringify({
        providers: { '*': { type: 'dry-run' } },
        signals: {
          issuer: 'https://tourniquet.acme.example',
          receivers: [
            {
              name: 'workspace-app',
              url: `${at}/ssf/push`,
              audience: 'https://app.acme.example',
              authorizationFile: 'push-token',
            },
          ],
        },
      }),
    );
    stack = await startEmbedded({
      dataDir: join(dir, 'data'),
      port: 0,
      cataloguePath: join(dir, 'catalogue.yaml'),
      providersPath: join(dir, 'providers.yaml'),
      tickMs: 1000,
      durability: 'normal',
      log: pino({ level: 'silent' }),
    });
  });

  afterAll(async () => {
    await stack?.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pushes a signed session-revoked SET for an automatic containment, verifiable from the published JWKS', async () => {
    const service = await issueToken(stack.auth, { sub: 'siem-connector', roles: ['service'] });
    const res = await fetch(`${stack.url}/v1/detections`, {
      method: 'POST',
      headers: { authorization: `Bearer ${service}`, 'content-type': 'application/json' },
      body: JSON.stringify(demoDetections(new Date()).first),
    });
    expect(res.status).toBe(202);

    const aliceRevoked = () =>
      received.find((r) => {
        const c = decodeJwt(r.jwt) as { sub_id?: { user?: { email?: string } }; events?: object };
        return (
          c.sub_id?.user?.email === 'alice@acme.example' &&
          Object.keys(c.events ?? {}).some((t) => t.endsWith('/session-revoked'))
        );
      });
    const deadline = Date.now() + 20_000;
    while (!aliceRevoked() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const set = aliceRevoked();
    expect(set, 'a session-revoked SET for alice').toBeDefined();
    expect(set!.authorization).toBe('Bearer receiver-token-1');

    const conf = (await (await fetch(`${stack.url}/.well-known/ssf-configuration`)).json()) as {
      issuer: string;
      jwks_uri: string;
    };
    expect(conf.issuer).toBe('https://tourniquet.acme.example');
    const jwks = createRemoteJWKSet(new URL(conf.jwks_uri));
    for (const r of received) {
      const { payload } = await jwtVerify(r.jwt, jwks, {
        issuer: conf.issuer,
        audience: 'https://app.acme.example',
        typ: 'secevent+jwt',
      });
      expect(payload.txn).toMatch(/^case-/);
    }

    const status = (await (
      await fetch(`${stack.url}/v1/signals`, { headers: { authorization: `Bearer ${stack.adminToken}` } })
    ).json()) as { receivers: Array<{ name: string; delivered: number; running: boolean }> };
    expect(status.receivers).toHaveLength(1);
    expect(status.receivers[0]).toMatchObject({ name: 'workspace-app', running: true });
    // counted once the receiver's 202 is back: at least alice's, at most what the receiver has seen
    expect(status.receivers[0]!.delivered).toBeGreaterThanOrEqual(1);
    expect(status.receivers[0]!.delivered).toBeLessThanOrEqual(received.length);
  });
});
