/**
 * The ingest boundary over HTTP, on the whole embedded stack: text that cannot be stored as hashed,
 * ids over their limits, JSON too deep or too large, and unknown fields are refused with a 4xx naming
 * the field and the limit; nothing is written, and `audit verify` passes afterwards.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configureJsonLimits } from '../../schemas/text.ts';
import { type EmbeddedHttp, embeddedHttp } from '../support/embedded-http.ts';
import { nested } from '../support/hostile-input.ts';

const good = (id: string, identity = 'alice') => ({
  id,
  source: 'splunk',
  kind: 'suspicious_api_use',
  confidence: 0.2,
  severity: 'low',
  identity: { provider: 'okta', id: identity, type: 'human' },
  occurredAt: '2026-03-01T10:00:00.000Z',
  evidence: { ip: '203.0.113.7' },
});

let env: EmbeddedHttp;
let before: number;
beforeEach(async () => {
  env = await embeddedHttp();
  before = await env.stack.store.headPosition();
});
afterEach(async () => {
  await env.close();
});

const refusedWhole = async () => {
  expect(await env.stack.store.headPosition()).toBe(before);
  expect(env.verify().ok).toBe(true);
};

describe('canonical text', () => {
  it.each([
    [
      'a lone surrogate in identity.id',
      { identity: { provider: 'okta', id: 'alice\ud800', type: 'human' } },
      '1.identity.id',
      /well-formed/,
    ],
    ['a lone surrogate in id', { id: '\udfffx' }, '1.id', /well-formed/],
    ['a lone surrogate in source', { source: 'spl\ud83dunk' }, '1.source', /well-formed/],
    ['NUL in id', { id: 'a\u0000b' }, '1.id', /NUL/],
    [
      'NUL in identity.provider',
      { identity: { provider: 'ok\u0000ta', id: 'a', type: 'human' } },
      '1.identity.provider',
      /NUL/,
    ],
    [
      'an id of 513 code points',
      { id: 'x'.repeat(513) },
      '1.id',
      /at most 512 characters \(code points\); got 513/,
    ],
    [
      'an id of 512 code points and a lone surrogate (514 units)',
      { id: `${'x'.repeat(512)}\ud800\ud800`.slice(0, 514) },
      '1.id',
      /./,
    ],
  ])('refuses %s (400 naming the field), the whole batch', async (_name, patch, path, message) => {
    const r = await env.post('/v1/detections', [good('ok-1'), { ...good('bad-1'), ...patch }]);
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('VALIDATION_FAILED');
    const issue = r.json.error.issues.find((i: { path: string }) => i.path === path);
    expect(issue?.message).toMatch(message);
    await refusedWhole();
  });

  it('accepts 512 astral code points (1024 UTF-16 units) and verify passes', async () => {
    const r = await env.post('/v1/detections', good('\ud83d\ude00'.repeat(512)));
    expect(r.status).toBe(202);
    expect(r.json.accepted).toBe(1);
    expect(env.verify()).toMatchObject({ ok: true });
  });
});

describe('depth and size of raw and evidence', () => {
  it('refuses raw nested past 64 levels with 400 naming the limit; the valid item is not written', async () => {
    const r = await env.post('/v1/detections', [good('ok-1'), { ...good('deep-1'), raw: nested(65) }]);
    expect(r.status).toBe(400);
    expect(r.json.error.issues[0].path).toMatch(/^1\.raw(\.0)+$/);
    expect(r.json.error.issues[0].message).toBe('nesting exceeds the limit of 64 levels');
    await refusedWhole();
  });

  it('refuses a 10,000-deep raw in a batch with 400, never 500, and writes nothing', async () => {
    const deep = `${'['.repeat(10_000)}1${']'.repeat(10_000)}`;
    const text = `[${JSON.stringify(good('ok-1'))},${JSON.stringify(good('deep-1')).replace(/}$/, `,"raw":${deep}}`)}]`;
    const r = await env.postText('/v1/detections', text);
    expect(r.status).toBe(400);
    expect(r.json.error.message).toMatch(/deeper than the limit of 68 levels/);
    await refusedWhole();
  });

  it('refuses a 100,000-deep body of any route with 400', async () => {
    const deep = `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`;
    for (const url of ['/v1/detections', '/v1/actions', '/v1/automation/pause']) {
      const r = await env.postText(url, deep);
      expect(r.status, url).toBe(400);
    }
    await refusedWhole();
  });

  it('refuses evidence over 256 KiB with 413 naming the limit', async () => {
    const r = await env.post('/v1/detections', [
      good('ok-1'),
      { ...good('big-1'), evidence: { blob: 'x'.repeat(300_000) } },
    ]);
    expect(r.status).toBe(413);
    expect(r.json.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', limit: 262_144, path: '1.evidence' });
    expect(r.json.error.message).toMatch(/limit of 262144 bytes/);
    await refusedWhole();
  });

  it('follows configured limits', async () => {
    const previous = configureJsonLimits({ maxDepth: 4, maxBytes: 1000 });
    try {
      const deep = await env.post('/v1/detections', { ...good('d'), raw: nested(5) });
      expect(deep.status).toBe(400);
      const big = await env.post('/v1/detections', { ...good('b'), raw: 'y'.repeat(1001) });
      expect(big.status).toBe(413);
      expect(big.json.error.limit).toBe(1000);
      const fine = await env.post('/v1/detections', { ...good('f'), raw: nested(4) });
      expect(fine.status).toBe(202);
    } finally {
      configureJsonLimits(previous);
    }
  });
});

describe('unknown fields', () => {
  it('refuses unknown fields with 400 naming each one, at the top and in identity', async () => {
    const r = await env.post('/v1/detections', [
      good('ok-1'),
      { ...good('x-1'), severty: 'high', identity: { ...good('x').identity, role: 'admin' } },
    ]);
    expect(r.status).toBe(400);
    const paths = r.json.error.issues.map((i: { path: string }) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['1.severty', '1.identity.role']));
    await refusedWhole();
  });
});
