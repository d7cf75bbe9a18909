import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateHistory } from '../simulations/scenarios/index.ts';
import {
  canonicalTimeMs,
  DETECTION_KINDS,
  IDENTITY_TYPES,
  isCanonicalTime,
  NormalizedDetection,
  plainDetection,
  SEVERITIES,
  safeParseDetection,
  Timestamp,
} from './detection.ts';

// Mostly valid values, each field sometimes replaced by something zod must judge (wrong type, out of
// range, empty, too long, non-canonical or impossible time, explicit undefined, extra keys).
const maybe = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 6, arbitrary: good }, { weight: 1, arbitrary: bad });
const text = (min: number, max: number) =>
  maybe(
    fc.string({ minLength: min, maxLength: Math.min(max, 20) }),
    fc.oneof(
      fc.constant(''),
      fc.string({ minLength: max + 1, maxLength: max + 2 }),
      fc.integer(),
      fc.constant(null),
    ),
  );
const time = maybe(
  fc
    .date({ min: new Date('1970-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom(
    '2026-02-29T10:00:00.000Z',
    '2026-10-01T00:00:00Z',
    '2026-10-01T00:00:00.000+02:00',
    '2026-10-01 00:00:00.000Z',
    'yesterday',
    '',
    1700000000000,
  ),
);
const optional = (arb: fc.Arbitrary<unknown>) =>
  fc.oneof(fc.constant(Symbol.for('absent')), fc.constant(undefined), arb);
const withOptional = (base: Record<string, unknown>, extra: Record<string, unknown>) => {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) if (v !== Symbol.for('absent')) out[k] = v;
  return out;
};

const identity = fc
  .record({
    provider: text(1, 128),
    id: text(1, 512),
    type: maybe(fc.constantFrom(...IDENTITY_TYPES), fc.constantFrom('robot', 1, null)),
    tenant: optional(text(1, 256)),
    displayName: optional(text(0, 512)),
    extra: optional(fc.string()),
  })
  .map(({ tenant, displayName, extra, ...base }) => withOptional(base, { tenant, displayName, extra }));

const detection = fc
  .record({
    type: optional(fc.constant('detection')),
    at: optional(time),
    id: text(1, 512),
    source: text(1, 128),
    kind: maybe(fc.constantFrom(...DETECTION_KINDS), fc.constantFrom('phishing', 3)),
    confidence: maybe(
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.constantFrom(-0.1, 1.5, Number.NaN, '0.9'),
    ),
    severity: maybe(fc.constantFrom(...SEVERITIES), fc.constantFrom('severe', 2)),
    identity: maybe(identity, fc.constantFrom(null, [], 'alice')),
    occurredAt: time,
    title: optional(text(0, 1024)),
    evidence: optional(
      maybe(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 4 }), fc.constantFrom(null, [1], 'e')),
    ),
    raw: optional(fc.jsonValue()),
  })
  .map(({ type, at, title, evidence, raw, ...base }) =>
    withOptional(base, { type, at, title, evidence, raw }),
  );

describe('detection validation fast path', () => {
  it('judges canonical timestamps exactly as the zod datetime check does (leap years, ranges)', () => {
    const pad = (n: number, w: number) => String(n).padStart(w, '0');
    fc.assert(
      fc.property(
        fc.tuple(
          fc.integer({ min: 0, max: 9999 }),
          fc.integer({ min: 0, max: 13 }),
          fc.integer({ min: 0, max: 32 }),
          fc.integer({ min: 0, max: 25 }),
          fc.integer({ min: 0, max: 61 }),
          fc.integer({ min: 0, max: 61 }),
          fc.integer({ min: 0, max: 999 }),
        ),
        ([y, mo, d, h, mi, s, ms]) => {
          const text = `${pad(y, 4)}-${pad(mo, 2)}-${pad(d, 2)}T${pad(h, 2)}:${pad(mi, 2)}:${pad(s, 2)}.${pad(ms, 3)}Z`;
          expect(isCanonicalTime(text)).toBe(Timestamp.safeParse(text).success);
          // where it answers, the instant is Date.parse's
          if (isCanonicalTime(text)) expect(canonicalTimeMs(text)).toBe(Date.parse(text));
          else expect(canonicalTimeMs(text)).toBeNaN();
        },
      ),
      { numRuns: 5000 },
    );
    for (const leap of ['2024-02-29T00:00:00.000Z', '2000-02-29T00:00:00.000Z'])
      expect(isCanonicalTime(leap)).toBe(true);
    for (const not of ['2100-02-29T00:00:00.000Z', '2026-02-29T00:00:00.000Z', '2026-10-01T00:00:00Z'])
      expect(isCanonicalTime(not)).toBe(false);
  });

  it('accepts exactly what zod accepts and returns exactly what zod returns (keys, order, values)', () => {
    fc.assert(
      fc.property(detection, (value) => {
        const ours = safeParseDetection(value);
        const theirs = NormalizedDetection.safeParse(value);
        expect(ours.success).toBe(theirs.success);
        if (ours.success && theirs.success) {
          expect(ours.data).toStrictEqual(theirs.data);
          expect(JSON.stringify(ours.data)).toBe(JSON.stringify(theirs.data));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('takes the fast path for the detections the scenario generators and normalizers write', () => {
    // Declining everything would pass the test above and lose the speed: the common case must be
    // vouched for by the fast path itself, and match zod.
    let n = 0;
    for (const line of generateHistory({ scenario: 'mixed', seed: 2, identities: 50, days: 3 })) {
      if (line.type !== 'detection') continue;
      const fast = plainDetection(line);
      expect(fast).toBeDefined();
      expect(JSON.stringify(fast)).toBe(JSON.stringify(NormalizedDetection.parse(line)));
      n++;
    }
    expect(n).toBeGreaterThan(100);
  });
});
