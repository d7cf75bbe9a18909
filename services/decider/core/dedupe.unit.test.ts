import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DedupeTable, NO_REPEATS } from './dedupe.ts';

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
        const owners = [0, 1, 2, 3, 4].map(() => table.newOwner());
        expect(new Set(owners).size).toBe(5);
        const reference = new Set<string>();
        for (const k of keys) {
          const ref = `${k.owner}\u0000${k.source}\u0000${k.id}`;
          const owner = owners[k.owner]!;
          expect(table.has(owner, k.source, k.id)).toBe(reference.has(ref));
          expect(table.add(owner, k.source, k.id)).toBe(!reference.has(ref));
          reference.add(ref);
          expect(table.has(owner, k.source, k.id)).toBe(true);
        }
        expect(table.size).toBe(reference.size);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps identities apart: the same source and id seen by one identity is new to another', () => {
    const table = new DedupeTable();
    const alice = table.newOwner();
    const bob = table.newOwner();
    table.add(alice, 'okta', 'evt-1');
    expect(table.has(alice, 'okta', 'evt-1')).toBe(true);
    expect(table.has(bob, 'okta', 'evt-1')).toBe(false);
    expect(table.has(alice, 'splunk', 'evt-1')).toBe(false); // another source's id 1 is other evidence
  });

  it('NO_REPEATS remembers nothing: every detection is new', () => {
    expect(NO_REPEATS.add(NO_REPEATS.newOwner(), 'okta', 'x')).toBe(true);
    expect(NO_REPEATS.has(0, 'okta', 'x')).toBe(false);
  });
});
