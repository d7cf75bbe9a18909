/**
 * Fuzzing the ingest API on the whole embedded stack: batches of hostile detections (lone
 * surrogates, NUL, astral text, deep and wide JSON, extreme numbers and dates, the same source + id
 * across identities, good and bad items mixed) and hostile bodies. Every answer is 202 or a
 * documented 4xx, never a 5xx, and `audit verify` passes on the store they leave.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedHttp, embeddedHttp } from '../support/embedded-http.ts';
import { hostileDetection, hostileText } from '../support/hostile-input.ts';

/** What POST /v1/detections documents (docs/api.md, the OpenAPI document). */
const DOCUMENTED = new Set([202, 400, 409, 413, 415]);

let env: EmbeddedHttp;
beforeAll(async () => {
  env = await embeddedHttp();
});
afterAll(async () => {
  await env?.close();
});

// A small pool of ids and identities, so the same source + id meets other identities and contents.
const ids = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('a', 'b', 'c', 'd') },
  { weight: 1, arbitrary: hostileText(12) },
);
const body = fc.oneof(
  { weight: 3, arbitrary: fc.array(hostileDetection(ids), { minLength: 1, maxLength: 6 }) },
  { weight: 2, arbitrary: hostileDetection(ids) },
  { weight: 1, arbitrary: fc.constantFrom([], {}, null, 7, 'text', [null], [[]]) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(hostileDetection(ids), fc.integer({ min: 200_000, max: 400_000 }))
      .map(([d, n]) => ({ ...d, evidence: { blob: 'x'.repeat(n) } })),
  },
);
// Bodies JSON.stringify cannot produce: nested far past every limit, truncated, broken escapes.
const rawBody = fc.oneof(
  fc.integer({ min: 60, max: 50_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.integer({ min: 60, max: 20_000 }).map((n) => `{"raw":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}`),
  fc.constantFrom(
    '{"id": "\\ud800"',
    '{"id":"\\u12"}',
    '[1,]',
    '\u0000',
    '{"__proto__":{"x":1}}',
    '1e999999',
  ),
);

const statuses = new Map<number, number>();
const seen = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);

describe('ingest fuzz', () => {
  it('answers 202 or a documented 4xx to hostile detections and batches', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const r = await env.post('/v1/detections', b);
        seen(r.status);
        expect(DOCUMENTED.has(r.status), `${r.status} ${JSON.stringify(r.json)}`).toBe(true);
        if (r.status !== 202) expect(r.json.error.code).toMatch(/^[A-Z_]+$/);
      }),
      { numRuns: 400 },
    );
  });

  it('answers a documented 4xx to hostile bodies', async () => {
    await fc.assert(
      fc.asyncProperty(rawBody, async (text) => {
        const r = await env.postText('/v1/detections', text);
        seen(r.status);
        expect(DOCUMENTED.has(r.status), `${r.status} ${JSON.stringify(r.json)}`).toBe(true);
        expect(r.status).not.toBe(202);
      }),
      { numRuns: 60 },
    );
  });

  it('leaves a store that audit verify passes, having exercised acceptance, refusal and conflicts', async () => {
    const verdict = env.verify();
    expect(verdict.firstBad).toBeUndefined();
    expect(verdict.ok).toBe(true);
    expect(statuses.get(202) ?? 0).toBeGreaterThan(20);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(20);
    expect(statuses.get(409) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(413) ?? 0).toBeGreaterThan(0);
    const conflicts = await env.stack.store.readAll({ types: ['DetectionConflicted'] });
    expect(conflicts.length).toBeGreaterThan(0);
    console.info(
      `ingest fuzz: ${[...statuses].map(([s, n]) => `${s}×${n}`).join(', ')}; verify checked ${verdict.checked} events`,
    );
  });
});
