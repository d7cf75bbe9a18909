/**
 * The storm guard counts a window's identities only as far as its thresholds need (busiestCount):
 * that count is always busiestWindow's size, capped, whatever the order firings arrive in.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../../../schemas/events.ts';
import { StormLedger } from './storm.ts';

function proposed(atMs: number, who: number): NewEvent {
  return {
    id: `p-${atMs}-${who}`,
    type: 'ActionProposed',
    stream: `identity-okta:u${who}`,
    occurredAt: new Date(atMs).toISOString(),
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    data: { ruleId: 'r', identity: { provider: 'okta', id: `u${who}`, type: 'human' } },
  } as unknown as NewEvent;
}

describe('busiestCount', () => {
  it('is min(busiestWindow size, stopAt) for firings in any order', () => {
    const base = Date.UTC(2026, 0, 1);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(7200_000), fc.nat(30)), { maxLength: 120 }),
        fc.nat(7200_000),
        fc.integer({ min: 1, max: 3600_000 }),
        fc.option(fc.nat(7200_000), { nil: undefined }),
        fc.integer({ min: 1, max: 40 }),
        (firings, at, windowMs, notBefore, stopAt) => {
          const ledger = new StormLedger();
          for (const [t, who] of firings) ledger.record(proposed(base + t, who));
          const nb = notBefore === undefined ? Number.NEGATIVE_INFINITY : base + notBefore;
          const full = ledger.busiestWindow('r', base + at, windowMs, nb, 'okta:self').size;
          expect(ledger.busiestCount('r', base + at, windowMs, nb, 'okta:self', stopAt)).toBe(
            Math.min(full, stopAt),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });
});
