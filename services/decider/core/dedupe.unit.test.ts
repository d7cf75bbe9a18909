import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DedupeTable, SeenSet } from './dedupe.ts';

describe('dedupe table (per-identity sets of source + detection id)', () => {
  it('answers exactly like a set of (identity, source, id) keys, across growth and shared tables', () => {
    const key = fc.record({
      owner: fc.integer({ min: 0, max: 4 }),
      source: fc.constantFrom('okta', 'splunk', 'sentinel'),
      // short ids collide in the hash's low bits often: probing and equality are exercised
      id: fc.string({ minLength: 0, maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.array(key, { maxLength: 400 }), fc.integer({ min: 1, max: 64 }), (keys, capacity) => {
        const table = new DedupeTable(capacity);
        const sets = [0, 1, 2, 3, 4].map(() => table.newSet());
        const reference = new Set<string>();
        for (const k of keys) {
          const ref = `${k.owner}\u0000${k.source}\u0000${k.id}`;
          expect(sets[k.owner]!.has(k.source, k.id)).toBe(reference.has(ref));
          sets[k.owner]!.add(k.source, k.id);
          reference.add(ref);
          expect(sets[k.owner]!.has(k.source, k.id)).toBe(true);
        }
        expect(table.size).toBe(reference.size);
        const perOwner = [0, 1, 2, 3, 4].map(
          (o) => [...reference].filter((r) => r.startsWith(`${o}\u0000`)).length,
        );
        expect(sets.map((s) => s.size)).toEqual(perOwner);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps identities apart: the same source and id seen by one identity is new to another', () => {
    const table = new DedupeTable();
    const alice = table.newSet();
    const bob = table.newSet();
    alice.add('okta', 'evt-1');
    expect(alice.has('okta', 'evt-1')).toBe(true);
    expect(bob.has('okta', 'evt-1')).toBe(false);
    expect(alice.has('splunk', 'evt-1')).toBe(false); // another source's id 1 is other evidence
  });

  it('a set without a table gets a private one', () => {
    const a = new SeenSet();
    const b = new SeenSet();
    a.add('okta', 'x');
    expect(a.has('okta', 'x')).toBe(true);
    expect(b.has('okta', 'x')).toBe(false);
    expect(a.size).toBe(1);
    a.add('okta', 'x');
    expect(a.size).toBe(1);
  });
});
