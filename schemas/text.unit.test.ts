import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hostileText, nested } from '../test/support/hostile-input.ts';
import { NormalizedDetection, safeParseDetection, safeParseStrictDetection } from './detection.ts';
import { codePointLength, configureJsonLimits, jsonValueProblem, textProblem } from './text.ts';

const base = {
  id: 'd-1',
  source: 'splunk',
  kind: 'known_compromise',
  confidence: 0.9,
  severity: 'high',
  identity: { provider: 'okta', id: 'alice', type: 'human' },
  occurredAt: '2026-03-01T10:00:00.000Z',
};
const issuesOf = (v: unknown) => {
  const r = safeParseDetection(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('canonical text at the boundary', () => {
  it('refuses lone surrogates in ids, source and identity fields, naming the field', () => {
    expect(issuesOf({ ...base, id: 'a\ud800' })).toEqual([
      'id: is not well-formed Unicode (it holds a lone UTF-16 surrogate)',
    ]);
    expect(issuesOf({ ...base, source: '\udfffx' })[0]).toMatch(/^source: is not well-formed/);
    expect(issuesOf({ ...base, identity: { ...base.identity, id: 'x\udc00' } })[0]).toMatch(
      /^identity.id: is not well-formed/,
    );
    expect(issuesOf({ ...base, title: 'ok \ud83d' })[0]).toMatch(/^title: is not well-formed/);
    expect(issuesOf({ ...base, evidence: { 'k\ud800': 1 } })[0]).toMatch(/^evidence: has a key/);
    expect(issuesOf({ ...base, raw: { a: ['x', '\ud800'] } })[0]).toMatch(/^raw.a.1: is not well-formed/);
  });

  it('refuses NUL in identifiers but not in free text', () => {
    expect(issuesOf({ ...base, id: 'a\u0000b' })).toEqual(['id: must not contain NUL (U+0000)']);
    expect(issuesOf({ ...base, identity: { ...base.identity, provider: '\u0000' } })[0]).toMatch(
      /^identity.provider: must not contain NUL/,
    );
    expect(issuesOf({ ...base, title: 'a\u0000b' })).toEqual([]);
  });

  it('counts the 512 limit in code points, not UTF-16 units', () => {
    const astral = '\ud83d\ude00'; // one code point, two units
    expect(issuesOf({ ...base, id: astral.repeat(512) })).toEqual([]);
    expect(issuesOf({ ...base, id: 'a'.repeat(513) })[0]).toMatch(/^id: must be at most 512 characters/);
    expect(issuesOf({ ...base, id: `${'a'.repeat(512)}\ud83d` })[0]).toMatch(/^id: is not well-formed/);
    expect(issuesOf({ ...base, id: astral.repeat(513) })[0]).toMatch(/got 513$/);
  });

  it('the fast path and zod agree on every hostile string', () => {
    fc.assert(
      fc.property(hostileText(600), hostileText(8), (id, provider) => {
        const v = { ...base, id, identity: { ...base.identity, provider } };
        const fast = safeParseDetection(v).success;
        const slow = NormalizedDetection.safeParse(v).success;
        expect(fast).toBe(slow);
        const expected =
          textProblem(id, 1, 512, false) === undefined && textProblem(provider, 1, 128, false) === undefined;
        expect(fast).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('codePointLength counts pairs once and lone surrogates once', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 50 }), (s) => {
        expect(codePointLength(s)).toBe([...s].length);
      }),
    );
  });
});

describe('JSON limits on raw and evidence', () => {
  it('refuses nesting past the depth limit without recursion, naming the limit', () => {
    expect(jsonValueProblem(nested(64), 'raw')).toBeUndefined();
    expect(jsonValueProblem(nested(65), 'raw')).toMatchObject({ kind: 'depth', limit: 64 });
    const deep = nested(100_000);
    expect(jsonValueProblem(deep, 'raw')).toMatchObject({ kind: 'depth', message: /limit of 64 levels/ });
    expect(issuesOf({ ...base, raw: deep })[0]).toMatch(
      /^raw(\.0)+: nesting exceeds the limit of 64 levels$/,
    );
  });

  it('measures size as the UTF-8 length of the JSON text JSON.stringify writes', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.string({ unit: 'grapheme', maxLength: 30 }), (v, s) => {
        const value = { v, s, q: '"\\\n\u0001' };
        const bytes = Buffer.byteLength(JSON.stringify(value));
        expect(jsonValueProblem(value, 'raw', { maxDepth: 64, maxBytes: bytes })).toBeUndefined();
        expect(jsonValueProblem(value, 'raw', { maxDepth: 64, maxBytes: bytes - 1 })).toMatchObject({
          kind: 'size',
        });
      }),
      { numRuns: 300 },
    );
  });

  it('is configurable, and refuses what JSON cannot carry', () => {
    const previous = configureJsonLimits({ maxDepth: 3, maxBytes: 100 });
    try {
      expect(issuesOf({ ...base, evidence: { a: { b: { c: {} } } } })[0]).toMatch(/limit of 3 levels/);
      expect(issuesOf({ ...base, raw: 'x'.repeat(200) })[0]).toMatch(
        /^raw: is larger than the limit of 100 bytes/,
      );
    } finally {
      configureJsonLimits(previous);
    }
    expect(issuesOf({ ...base, evidence: { n: Number.NaN } })[0]).toMatch(
      /^evidence.n: must be a finite number/,
    );
    expect(() => configureJsonLimits({ maxDepth: 0 })).toThrow(/positive integer/);
  });
});

describe('strict detections (the HTTP API)', () => {
  it('refuses unknown fields by name, at the top and in identity', () => {
    const r = safeParseStrictDetection({ ...base, extra: 1, identity: { ...base.identity, role: 'x' } });
    expect(r.success).toBe(false);
    const paths = r.success ? [] : r.error.issues.map((i) => ({ path: i.path.join('.'), code: i.code }));
    expect(paths).toEqual(
      expect.arrayContaining([
        { path: '', code: 'unrecognized_keys' },
        { path: 'identity', code: 'unrecognized_keys' },
      ]),
    );
    expect(safeParseStrictDetection(base).success).toBe(true);
    // the lenient schema (Kafka, history files) still strips them
    expect(safeParseDetection({ ...base, extra: 1 }).success).toBe(true);
  });
});

describe('jsonValueProblem paths', () => {
  it('names the member at fault through arrays and objects', () => {
    const v = { a: [1, { b: 'ok', c: Number.NaN }], d: 'x' };
    expect(jsonValueProblem(v, 'raw')?.path).toBe('raw.a.1.c');
    expect(jsonValueProblem({ s: [`x${'\uD800'}`] }, '')?.path).toBe('.s.0');
    expect(jsonValueProblem({ x: { y: () => 1 } }, 'evidence')?.message).toMatch(/function/);
    expect(jsonValueProblem({ x: { y: () => 1 } }, 'evidence')?.path).toBe('evidence.x.y');
    expect(jsonValueProblem(v, 'raw', { maxDepth: 2, maxBytes: 1e6 })?.path).toBe('raw.a.1');
  });
});
