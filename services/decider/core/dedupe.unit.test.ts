import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DedupeTable, hasSeen, INLINE_KEYS, markSeen, NO_REPEATS, type SeenStore } from './dedupe.ts';
import { initialState } from './evolve.ts';

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
    const state = initialState(null, NO_REPEATS);
    markSeen(state, 'okta', 'x');
    expect(hasSeen(state, 'okta', 'x')).toBe(false);
  });
});

describe("an identity's seen detections (its first keys inline in its state, the rest in the table)", () => {
  const ref = (source: string, id: string) => `${source}\u0000${id}`;

  it('answers exactly like a set per identity, whether keys are inline, indexed or both', () => {
    const key = fc.record({
      identity: fc.integer({ min: 0, max: 3 }),
      source: fc.constantFrom('okta', 'splunk'),
      // few distinct ids: 7-bit fingerprints collide often, so the log comparison is exercised
      id: fc.string({ minLength: 0, maxLength: 2 }),
    });
    fc.assert(
      fc.property(fc.array(key, { maxLength: 300 }), fc.boolean(), (keys, shared) => {
        const table = new DedupeTable();
        const states = [0, 1, 2, 3].map(() => initialState(null, shared ? table : new DedupeTable()));
        const reference = states.map(() => new Set<string>());
        for (const k of keys) {
          const state = states[k.identity]!;
          const set = reference[k.identity]!;
          expect(hasSeen(state, k.source, k.id)).toBe(set.has(ref(k.source, k.id)));
          if (!set.has(ref(k.source, k.id))) markSeen(state, k.source, k.id);
          set.add(ref(k.source, k.id));
          expect(hasSeen(state, k.source, k.id)).toBe(true);
        }
        states.forEach((state, i) => {
          expect(state.seenInline).toBe(Math.min(INLINE_KEYS, reference[i]!.size));
          expect(state.seenIndexed).toBe(reference[i]!.size > INLINE_KEYS);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('holds the first keys in the state and indexes only the ones after them', () => {
    const table = new DedupeTable();
    const state = initialState(null, table);
    for (let i = 0; i < INLINE_KEYS; i++) markSeen(state, 'okta', `evt-${i}`);
    expect(state.seenInline).toBe(INLINE_KEYS);
    expect(table.size).toBe(0); // nothing indexed yet
    markSeen(state, 'okta', 'evt-late');
    expect(table.size).toBe(1);
    for (let i = 0; i < INLINE_KEYS; i++) expect(hasSeen(state, 'okta', `evt-${i}`)).toBe(true);
    expect(hasSeen(state, 'okta', 'evt-late')).toBe(true);
    expect(hasSeen(state, 'okta', 'evt-other')).toBe(false);
    expect(hasSeen(state, 'splunk', 'evt-0')).toBe(false);
  });

  it('indexes a key instead once the log is past what an inline slot can point at', () => {
    const table = new DedupeTable();
    const full: SeenStore = {
      newOwner: () => table.newOwner(),
      has: (o, s, i) => table.has(o, s, i),
      add: (o, s, i) => table.add(o, s, i),
      entries: 2 ** 23,
      log: () => {
        throw new Error('must not log past 2^23 entries');
      },
      isEntry: (e, s, i) => table.isEntry(e, s, i),
    };
    const state = initialState(null, full);
    markSeen(state, 'okta', 'evt-1');
    expect(state.seenInline).toBe(0);
    expect(state.seenIndexed).toBe(true);
    expect(hasSeen(state, 'okta', 'evt-1')).toBe(true);
    expect(hasSeen(state, 'okta', 'evt-2')).toBe(false);
  });
});
