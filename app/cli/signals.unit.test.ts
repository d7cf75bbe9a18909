import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadOrCreateSigningKey } from '../../services/signals/keys.ts';
import { runSignalsJwks, runSignalsRedeliver } from './signals.ts';

async function jwksOf(opts: Parameters<typeof runSignalsJwks>[0]) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c) => {
    text += c;
  });
  const code = await runSignalsJwks(opts, out);
  return { code, jwks: JSON.parse(text) as { keys: Array<Record<string, unknown>> } };
}

describe('tourniquet signals jwks', () => {
  it('prints the public half of the key in the data dir, the providers file or --key; never creates one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-signals-cli-'));
    await expect(jwksOf({ dataDir: dir })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const generated = await loadOrCreateSigningKey(join(dir, 'ssf-signing-key.json'), true);
    const fromDataDir = await jwksOf({ dataDir: dir });
    expect(fromDataDir.code).toBe(0);
    expect(fromDataDir.jwks.keys).toEqual([generated.publicJwk]);
    expect(fromDataDir.jwks.keys[0]).not.toHaveProperty('d');

    const other = await loadOrCreateSigningKey(join(dir, 'other.jwk'), true);
    writeFileSync(
      join(dir, 'providers.yaml'),
      'providers: { "*": { type: dry-run } }\nsignals:\n  issuer: https://t.example\n  signingKeyFile: other.jwk\n  receivers: [{ name: r, url: "https://r.example/p", audience: r }]\n',
    );
    const fromProviders = await jwksOf({ dataDir: dir, providers: join(dir, 'providers.yaml') });
    expect(fromProviders.jwks.keys[0]!.kid).toBe(other.kid);
    const fromKey = await jwksOf({ dataDir: '/nonexistent', key: join(dir, 'other.jwk') });
    expect(fromKey.jwks.keys[0]!.kid).toBe(other.kid);
    expect(other.kid).not.toBe(generated.kid);
  });

  it('signals redeliver keeps what a receiver that is down did not take, and says so with exit 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-signals-cli-'));
    writeFileSync(
      join(dir, 'providers.yaml'),
      'providers: { "*": { type: dry-run } }\nsignals:\n  issuer: https://t.example\n  receivers: [{ name: app, url: "http://127.0.0.1:9/push", audience: a }]\n',
    );
    const line = JSON.stringify({ receiver: 'app', jti: 'j1', set: 'x.y.z', type: 'session-revoked' });
    writeFileSync(join(dir, 'signals-dead-letters.jsonl'), `${line}\n`);
    const out = new PassThrough();
    let text = '';
    out.on('data', (c) => {
      text += c;
    });
    const code = await runSignalsRedeliver({ providers: join(dir, 'providers.yaml'), dataDir: dir }, out);
    expect(code).toBe(2);
    expect(JSON.parse(text)).toMatchObject({ read: 1, toSend: 1, delivered: 0, failed: 1 });
    expect(readFileSync(join(dir, 'signals-dead-letters.jsonl'), 'utf8')).toBe(`${line}\n`);
  });
});
