/**
 * Storm holds and budgets under any interleaving: many identities, across providers, fire one rule
 * within a couple of hours, decided in any order (partitions lag differently, so decision order is
 * not time order), some re-delivered. Whatever the order:
 * - between a rule's StormDetected and its StormResolved, that rule approves nothing automatically;
 * - until its first storm, no window of the storm length holds as many identities with automatic
 *   actions of the rule as the storm threshold;
 * - no window of a budget holds more automatic actions than the budget's limit (here a global `*`
 *   budget counted across providers).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../../../schemas/events.ts';
import {
  compile,
  detectionInput,
  HOUR,
  MINUTE,
  runCoreDetailed,
} from '../../../test/support/decider-testkit.ts';

const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 150) };
const PROVIDERS = ['okta', 'entra', 'github', 'aws'] as const;

const policyText = (minIdentities: number, budget: number) => `
id: storm-prop
version: "1"
guards:
  storm: { window: 1h, minIdentities: ${minIdentities}, baselineFactor: 5 }
  budgets:
    - { action: "*", limit: ${budget}, window: 1h, scope: global }
rules:
  - id: ti
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder: [{ action: revoke_sessions, approval: auto }]
`;

const arbWorld = fc.record({
  minIdentities: fc.integer({ min: 2, max: 12 }),
  budget: fc.integer({ min: 1, max: 30 }),
  firings: fc.array(
    fc.record({
      provider: fc.constantFrom(...PROVIDERS),
      who: fc.integer({ min: 0, max: 79 }),
      occurredMin: fc.integer({ min: 0, max: 150 }),
      /** How late it reaches the decider: the decision order follows receipt, not occurrence. */
      lagMin: fc.integer({ min: 0, max: 50 }),
    }),
    { minLength: 1, maxLength: 120 },
  ),
});

const T = Date.parse('2026-12-01T08:00:00.000Z');
const atOf = (e: NewEvent) => Date.parse(e.occurredAt);
const keyOf = (e: Extract<NewEvent, { type: 'ActionProposed' }>) =>
  `${e.data.identity.provider}:${e.data.identity.id}`;

type World = typeof arbWorld extends fc.Arbitrary<infer V> ? V : never;

function decideWorld(w: World) {
  const inputs = w.firings
    .map((f, i) => ({ f, i, atMs: T + (f.occurredMin + f.lagMin) * MINUTE }))
    .sort((a, b) => a.atMs - b.atMs || a.i - b.i)
    .map(({ f, i, atMs }) => ({
      ...detectionInput({
        identity: { provider: f.provider, id: `u${f.who}`, type: 'human' },
        kind: 'known_compromise',
        confidence: 0.95,
        atMs,
        occurredAtMs: T + f.occurredMin * MINUTE,
        source: 'threatintel',
        id: `ti-${i % 97}`, // some re-deliveries of the same detection
      }),
    }));
  const catalogue = PROVIDERS.flatMap((provider) =>
    Array.from({ length: 80 }, (_, n) => ({
      provider,
      id: `u${n}`,
      type: 'human' as const,
      tier: 'development' as const,
      consumers: 1,
      tags: [],
      breakGlass: false,
      secrets: 'none' as const,
    })),
  );
  return runCoreDetailed(inputs, { policy: compile(policyText(w.minIdentities, w.budget)), catalogue });
}

/** Most items of `stamps` (ms) in any window [s, s + windowMs). */
function fullestWindow<T>(
  items: ReadonlyArray<{ atMs: number; key: T }>,
  windowMs: number,
  distinct: boolean,
): number {
  const sorted = [...items].sort((a, b) => a.atMs - b.atMs);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    const inWindow = sorted.filter((x) => x.atMs >= sorted[i]!.atMs && x.atMs < sorted[i]!.atMs + windowMs);
    most = Math.max(most, distinct ? new Set(inWindow.map((x) => x.key)).size : inWindow.length);
  }
  return most;
}

describe('storm holds and budgets, whatever the interleaving of identities and providers', () => {
  it('a held rule approves nothing automatically until its storm is resolved', () => {
    let worldsWithStorms = 0;
    fc.assert(
      fc.property(arbWorld, (w) => {
        const r = decideWorld(w);
        if (r.events.some((e) => e.type === 'StormDetected')) worldsWithStorms++;
        const holding = new Set<string>();
        for (const e of r.events) {
          if (e.type === 'StormResolved') holding.delete(e.data.stormId);
          else if (e.type === 'StormDetected') holding.add(e.data.stormId);
          else if (e.type === 'ActionProposed' && e.data.approval.mode === 'auto') {
            expect(holding.size, `${e.id} automatic while a storm holds rule ti`).toBe(0);
          }
        }
      }),
      RUNS,
    );
    // The generator must actually produce storms, or the property says nothing.
    expect(worldsWithStorms).toBeGreaterThan(RUNS.numRuns / 10);
  });

  it('before the first storm, no hour holds as many automatically actioned identities as the threshold', () => {
    fc.assert(
      fc.property(arbWorld, (w) => {
        const r = decideWorld(w);
        const firstStorm = r.events.findIndex((e) => e.type === 'StormDetected');
        const before = (firstStorm < 0 ? r.events : r.events.slice(0, firstStorm)).filter(
          (e): e is Extract<NewEvent, { type: 'ActionProposed' }> =>
            e.type === 'ActionProposed' && e.data.approval.mode === 'auto',
        );
        const most = fullestWindow(
          before.map((e) => ({ atMs: atOf(e), key: keyOf(e) })),
          HOUR,
          true,
        );
        expect(most).toBeLessThan(w.minIdentities);
      }),
      RUNS,
    );
  });

  it('no hour holds more automatic actions than the global budget, across providers', () => {
    fc.assert(
      fc.property(arbWorld, (w) => {
        const r = decideWorld(w);
        const auto = r.events.filter(
          (e): e is Extract<NewEvent, { type: 'ActionProposed' }> =>
            e.type === 'ActionProposed' && e.data.approval.mode === 'auto',
        );
        expect(
          fullestWindow(
            auto.map((e) => ({ atMs: atOf(e), key: e.id })),
            HOUR,
            false,
          ),
        ).toBeLessThanOrEqual(w.budget);
      }),
      RUNS,
    );
  });

  it('a storm of many identities is held within its first threshold identities, and stays below 20 automatic actions by default', () => {
    fc.assert(
      fc.property(fc.integer({ min: 30, max: 300 }), fc.integer({ min: 1, max: 1_000_000 }), (size, seed) => {
        // `size` distinct identities over 4 providers, in an order drawn from `seed`, within one hour.
        const order = Array.from({ length: size }, (_, i) => i).sort(
          (a, b) => ((a * 2654435761 + seed) % 1000003) - ((b * 2654435761 + seed) % 1000003),
        );
        const inputs = order.map((n, k) =>
          detectionInput({
            identity: { provider: PROVIDERS[n % 4]!, id: `s${n}`, type: 'human' },
            kind: 'known_compromise',
            confidence: 0.95,
            atMs: T + Math.floor((k * 59 * MINUTE) / size),
            occurredAtMs: T + ((n * 7919) % 59) * MINUTE,
            source: 'threatintel',
            id: `s${n}`,
          }),
        );
        const r = runCoreDetailed(inputs, {});
        const auto = r.events.filter((e) => e.type === 'ActionProposed' && e.data.approval.mode === 'auto');
        expect(auto.length).toBeLessThanOrEqual(20);
        expect(r.events.filter((e) => e.type === 'StormDetected')).toHaveLength(1);
      }),
      RUNS,
    );
  });
});
