import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import type { ActionType, NewEvent } from '../../schemas/events.ts';
import { loadOrCreateSigningKey, type SigningKey } from './keys.ts';
import { SignalTransmitter } from './transmitter.ts';

interface Received {
  jti: string;
  aud: unknown;
  types: string[];
  subject: unknown;
  authorization: string | undefined;
}

/** An RFC 8935 push receiver on loopback that verifies every SET with the transmitter's public key. */
async function receiver(key: SigningKey, audience: string, opts: { failFirst?: number } = {}) {
  const accepted: Received[] = [];
  const refused: string[] = [];
  let requests = 0;
  const jwks = createLocalJWKSet({ keys: [key.publicJwk] });
  const app: FastifyInstance = Fastify();
  app.addContentTypeParser('application/secevent+jwt', { parseAs: 'string' }, (_r, body, done) =>
    done(null, body),
  );
  app.post('/push', async (req, reply) => {
    requests += 1;
    if (requests <= (opts.failFirst ?? 0)) return reply.status(503).send({ err: 'unavailable' });
    const { payload } = await jwtVerify(req.body as string, jwks, {
      issuer: 'https://tourniquet.test',
      audience,
      typ: 'secevent+jwt',
    });
    const subject = payload.sub_id as { user?: { id?: string } };
    if (subject.user?.id === 'reject-me') {
      refused.push(payload.jti!);
      return reply.status(400).send({ err: 'invalid_subject', description: 'no such account here' });
    }
    accepted.push({
      jti: payload.jti!,
      aud: payload.aud,
      types: Object.keys(payload.events as object).map((t) => t.slice(t.lastIndexOf('/') + 1)),
      subject: payload.sub_id,
      authorization: req.headers.authorization,
    });
    return reply.status(202).send();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address() as { port: number };
  return { app, url: `http://127.0.0.1:${address.port}/push`, accepted, refused, requests: () => requests };
}

let n = 0;
function effect(type: 'ActionExecuted' | 'ActionRolledBack', action: ActionType, id: string): NewEvent {
  n += 1;
  const identity: IdentityRef = { provider: 'keycloak', id, type: 'human' };
  const ref = { actionId: `act-${n}`, caseId: `case-${n}`, identity, action };
  return {
    id: `evt-${n}`,
    type,
    stream: `identity-keycloak-${id}`,
    occurredAt: new Date(Date.UTC(2026, 2, 2, 10, 0, n)).toISOString(),
    causationId: null,
    correlationId: ref.caseId,
    schemaVersion: 1,
    data:
      type === 'ActionExecuted'
        ? {
            ...ref,
            provider: 'keycloak',
            idempotencyKey: ref.actionId,
            result: {},
            priorState: {},
            reconciled: false,
          }
        : { ...ref, restored: ['enabled'], residue: [], complete: true },
  } as NewEvent;
}

async function until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('SignalTransmitter: SETs pushed to receivers (RFC 8935) from the event store', () => {
  let dir: string;
  let store: SqliteEventStore;
  let key: SigningKey;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tq-signals-'));
    store = new SqliteEventStore({ path: join(dir, 'events.db'), durability: 'normal' });
    key = await loadOrCreateSigningKey(join(dir, 'ssf-signing-key.json'), true);
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers each effect once per receiver, in order, through outages; refusals go to the dead-letter file; restarts resume', async () => {
    const a = await receiver(key, 'aud-a', { failFirst: 2 });
    const b = await receiver(key, 'aud-b');
    const deadLetterPath = join(dir, 'signals-dead-letters.jsonl');
    const start = () => {
      const t = new SignalTransmitter({
        store,
        issuer: 'https://tourniquet.test',
        key,
        deadLetterPath,
        retry: { initialDelayMs: 10, maxDelayMs: 40 },
        receivers: [
          { name: 'a', url: a.url, audience: 'aud-a', authorization: 'Bearer push-token' },
          { name: 'b', url: b.url, audience: 'aud-b', events: ['account-disabled', 'account-enabled'] },
        ],
      });
      return t;
    };
    try {
      const events = [
        effect('ActionExecuted', 'revoke_sessions', 'alice'),
        effect('ActionExecuted', 'disable_account', 'bob'),
        effect('ActionExecuted', 'revoke_sessions', 'reject-me'),
        effect('ActionExecuted', 'quarantine', 'carol'),
        effect('ActionRolledBack', 'disable_account', 'bob'),
      ];
      for (const e of events) await store.append(e.stream, [e], 'any');
      const t = start();
      await t.start();
      // A receiver counts a SET when it arrives, the transmitter once the answer is back: wait for both.
      const settled = (name: string) => {
        const s = t.stats.get(name);
        return s ? s.delivered + s.deadLettered : 0;
      };
      await until(
        () =>
          a.accepted.length === 3 &&
          a.refused.length === 1 &&
          b.accepted.length === 2 &&
          settled('a') === 4 &&
          settled('b') === 2,
        'deliveries',
      );
      expect(a.accepted.map((x) => x.types[0])).toEqual([
        'session-revoked',
        'account-disabled',
        'account-enabled',
      ]);
      expect(a.accepted.every((x) => x.aud === 'aud-a' && x.authorization === 'Bearer push-token')).toBe(
        true,
      );
      expect(b.accepted.map((x) => x.types[0])).toEqual(['account-disabled', 'account-enabled']);
      expect(a.requests()).toBe(2 + 4); // two 503s retried, then 3 accepted and 1 refused
      expect(t.stats.get('a')).toMatchObject({ delivered: 3, deadLettered: 1, retries: 2 });

      const dead = readFileSync(deadLetterPath, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({
        receiver: 'a',
        type: 'session-revoked',
        status: 400,
        jti: a.refused[0],
      });
      expect(dead[0].answer).toContain('invalid_subject');
      expect(typeof dead[0].set).toBe('string');

      const head = await store.headPosition();
      const end = Date.now() + 10_000;
      let positions: number[] = [];
      while (Date.now() < end) {
        positions = (await t.status()).map((r) => r.position);
        if (positions.every((p) => p === head)) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(positions).toEqual([head, head]); // both receivers' checkpoints at the head
      await t.stop();
      expect(await store.getCheckpoint(SignalTransmitter.checkpointName('a'))).toBe(head);

      // A restart sends only what came after: no SET twice
      const later = effect('ActionExecuted', 'disable_service_account', 'ci-bot');
      await store.append(later.stream, [later], 'any');
      const again = start();
      await again.start();
      await until(() => a.accepted.length === 4 && b.accepted.length === 3, 'the later effect');
      await new Promise((r) => setTimeout(r, 200));
      expect(a.accepted).toHaveLength(4);
      expect(b.accepted).toHaveLength(3);
      expect(new Set(a.accepted.map((x) => x.jti)).size).toBe(4);
      await again.stop();
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });

  it('keeps a down receiver’s signals (checkpoint not moved) and stops promptly mid-retry', async () => {
    const down = await receiver(key, 'aud-down');
    const url = down.url;
    await down.app.close(); // nothing listens there now
    const t = new SignalTransmitter({
      store,
      issuer: 'https://tourniquet.test',
      key,
      deadLetterPath: join(dir, 'down-dead-letters.jsonl'),
      retry: { initialDelayMs: 10, maxDelayMs: 20 },
      receivers: [{ name: 'down', url, audience: 'aud-down' }],
    });
    await t.start();
    await until(() => (t.stats.get('down')?.retries ?? 0) >= 3, 'retries');
    const started = Date.now();
    await t.stop();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await store.getCheckpoint(SignalTransmitter.checkpointName('down'))).toBeUndefined();
    expect(existsSync(join(dir, 'down-dead-letters.jsonl'))).toBe(false);
  });

  it('refuses a configuration with a receiver named twice or oddly', () => {
    const base = { store, issuer: 'https://tourniquet.test', key, deadLetterPath: join(dir, 'x.jsonl') };
    const r = { url: 'http://127.0.0.1:9/push', audience: 'x' };
    expect(
      () =>
        new SignalTransmitter({
          ...base,
          receivers: [
            { ...r, name: 'a' },
            { ...r, name: 'a' },
          ],
        }),
    ).toThrow(/named twice/);
    expect(() => new SignalTransmitter({ ...base, receivers: [{ ...r, name: 'a b' }] })).toThrow(
      /plain name/,
    );
  });
});
