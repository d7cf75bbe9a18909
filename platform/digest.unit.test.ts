import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, digestOf } from './digest.ts';

/** The definition canonicalJson must keep to: JSON.stringify, every object's keys sorted. */
function reference(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v as Record<string, unknown>).sort())
        sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

describe('canonical JSON', () => {
  it('is JSON.stringify with sorted keys, for any JSON-like value', () => {
    const value = fc.anything({
      withBoxedValues: false,
      withMap: false,
      withSet: false,
      withObjectString: true,
      withNullPrototype: true,
      withDate: true,
      withSparseArray: true,
      withTypedArray: false,
      withBigInt: false,
      withUnicodeString: true,
    });
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(reference(v));
      }),
      { numRuns: 3000 },
    );
  });

  it('orders keys as the sorted-copy definition does, for objects with many index-like keys', () => {
    const key = fc.oneof(
      fc.nat().map(String),
      fc.constantFrom('4294967294', '4294967295', '01', '-1', '1e3', '', '__proto__'),
      fc.string({ maxLength: 4 }),
    );
    fc.assert(
      fc.property(fc.dictionary(key, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 8 }), (v) => {
        expect(canonicalJson(v)).toBe(reference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('orders keys as the sorted-copy definition does for objects with many keys (sorted another way)', () => {
    const key = fc.oneof(fc.nat({ max: 200 }).map(String), fc.string({ maxLength: 3 }));
    fc.assert(
      fc.property(fc.dictionary(key, fc.integer(), { minKeys: 30, maxKeys: 60 }), (v) => {
        expect(canonicalJson(v)).toBe(reference(v));
      }),
      { numRuns: 300 },
    );
  });

  it('escapes strings and keys exactly as JSON.stringify: quotes, controls, lone and paired surrogates', () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    fc.assert(
      fc.property(fc.dictionary(text, text, { maxKeys: 4 }), fc.array(text, { maxLength: 4 }), (o, a) => {
        expect(canonicalJson({ o, a })).toBe(reference({ o, a }));
      }),
      { numRuns: 2000 },
    );
    for (const s of ['"', '\\', '\n', '\u0000', '\u001f', '\ud800', '\udfff', '\ud83d\ude00', 'plain', ''])
      expect(canonicalJson({ [s]: s })).toBe(reference({ [s]: s }));
  });

  it('orders keys as the sorted-copy definition does: array indices first, numerically', () => {
    for (const v of [
      { '0': 'null', '': '' },
      { b: 1, '10': 2, '9': 3, a: 4, '01': 5, '4294967295': 6, '4294967294': 7, '-1': 8 },
      { nested: { z: [{ '2': 1, '1': 2, x: 3 }] } },
    ]) {
      expect(canonicalJson(v)).toBe(reference(v));
    }
  });

  it('drops undefined and functions from objects, writes null for them in arrays, honours toJSON', () => {
    const v = { b: [undefined, () => 1, Number.NaN], a: { d: undefined, c: new Date(0) }, e: Symbol('x') };
    expect(canonicalJson(v)).toBe('{"a":{"c":"1970-01-01T00:00:00.000Z"},"b":[null,null,null]}');
    expect(digestOf({ y: 1, x: 2 })).toBe(digestOf({ x: 2, y: 1 }));
  });
});
