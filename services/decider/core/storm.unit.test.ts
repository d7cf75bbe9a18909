/**
 * Storms: a rule firing on many distinct identities within its window, far above its own usual
 * rate, is held at once (not after a budget is spent) until an analyst resolves it or it subsides.
 */
import { describe, expect, it } from 'vitest';
import { type NewEvent, SCHEMA_VERSION } from '../../../schemas/events.ts';
import {
  autoApprovals,
  HOUR,
  iso,
  MINUTE,
  ofType,
  proposals,
  Scenario,
} from '../../../test/support/decider-testkit.ts';

const devs = (n: number, prefix = 'u', provider = 'okta') =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, provider, tier: 'development' as const }));

/** Known compromise on each identity in turn, one every `gapMs`. */
function wave(s: Scenario, ids: readonly string[], gapMs = MINUTE): NewEvent[] {
  const out: NewEvent[] = [];
  for (const id of ids) {
    out.push(...s.detect(id, 'known_compromise', 0.97, { source: 'threatintel' }));
    s.advance(gapMs);
  }
  return out;
}

function resolveStorm(s: Scenario, stormId: string, ruleId: string): void {
  s.ledger.record({
    id: `${stormId}-resolved`,
    type: 'StormResolved',
    stream: 'control-automation',
    occurredAt: s.at,
    causationId: null,
    correlationId: null,
    schemaVersion: SCHEMA_VERSION,
    data: { stormId, ruleId, reason: 'analyst', by: { kind: 'human', id: 'ana' } },
  });
}

describe('storm detection', () => {
  it('holds a rule at its 10th identity within the hour: StormDetected, then every action asks an analyst in one group', () => {
    const s = new Scenario({ catalogue: devs(40) });
    const events = wave(
      s,
      devs(40).map((e) => e.id),
    );
    const storms = ofType(events, 'StormDetected');
    expect(storms).toHaveLength(1);
    expect(storms[0]!.data).toMatchObject({
      ruleId: 'known-compromise',
      source: 'threatintel',
      identityCount: 10,
      windowSeconds: 3600,
      baseline: 0,
      threshold: 10,
    });
    expect(storms[0]!.data.identities).toHaveLength(10);
    const all = proposals(events);
    expect(all).toHaveLength(40);
    expect(autoApprovals(events)).toHaveLength(9);
    const held = all.slice(9);
    expect(held.every((p) => p.approval.mode === 'analyst')).toBe(true);
    expect(held.every((p) => p.guards.some((g) => g.guard === 'storm_hold'))).toBe(true);
    expect(new Set(held.map((p) => p.group))).toEqual(new Set([`storm:${storms[0]!.data.stormId}`]));
    // The storm is raised in the decision of the identity that trips it, before its proposal.
    const tripIx = events.findIndex((e) => e.type === 'StormDetected');
    expect(events[tripIx + 1]!.type).toBe('ActionProposed');
  });

  it('a real campaign of five identities of one team within minutes never trips it', () => {
    const s = new Scenario({ catalogue: devs(5, 'team-') });
    const events = wave(
      s,
      devs(5, 'team-').map((e) => e.id),
      2 * MINUTE,
    );
    expect(ofType(events, 'StormDetected')).toEqual([]);
    expect(autoApprovals(events)).toHaveLength(5);
  });

  it('counts identities across providers as one storm', () => {
    const catalogue = [...devs(4, 'o', 'okta'), ...devs(4, 'e', 'entra'), ...devs(4, 'g', 'github')];
    const s = new Scenario({ catalogue });
    const events = wave(
      s,
      catalogue.map((e) => e.id),
    );
    expect(ofType(events, 'StormDetected')).toHaveLength(1);
    expect(autoApprovals(events)).toHaveLength(9);
  });

  it("is relative to the rule's own baseline: a rule that usually fires on 4 identities an hour needs 20", () => {
    const catalogue = devs(720);
    const s = new Scenario({ catalogue });
    let next = 0;
    // A week of 4 new identities an hour builds the baseline.
    for (let h = 0; h < 7 * 24; h++) {
      for (let k = 0; k < 4; k++) s.detect(`u${next++}`, 'known_compromise', 0.97);
      s.advance(HOUR);
    }
    const burst = Array.from({ length: 15 }, (_, i) => `u${680 + i}`);
    expect(ofType(wave(s, burst), 'StormDetected')).toEqual([]);
    const more = wave(
      s,
      Array.from({ length: 10 }, (_, i) => `u${695 + i}`),
    );
    const [storm] = ofType(more, 'StormDetected');
    expect(storm?.data.threshold).toBeGreaterThanOrEqual(19);
    expect(storm?.data.baseline).toBeGreaterThan(3.5);
  });

  it('an analyst resolving the storm makes the rule automatic again, and only new identities count towards the next one', () => {
    const s = new Scenario({ catalogue: devs(30) });
    const first = wave(
      s,
      devs(12).map((e) => e.id),
    );
    const [storm] = ofType(first, 'StormDetected');
    resolveStorm(s, storm!.data.stormId, 'known-compromise');
    const after = wave(s, ['u20', 'u21']);
    expect(autoApprovals(after)).toHaveLength(2);
    expect(ofType(after, 'StormDetected')).toEqual([]);
  });

  it('subsides once the rule fires on fewer than half the threshold within the window; the next action is automatic', () => {
    const s = new Scenario({ catalogue: devs(30) });
    const first = wave(
      s,
      devs(12).map((e) => e.id),
    );
    const [storm] = ofType(first, 'StormDetected');
    s.advance(2 * HOUR);
    const later = s.detect('u25', 'known_compromise', 0.97);
    expect(ofType(later, 'StormResolved').map((e) => e.data)).toEqual([
      {
        stormId: storm!.data.stormId,
        ruleId: 'known-compromise',
        reason: 'subsided',
        by: { kind: 'system', id: 'decider' },
      },
    ]);
    expect(autoApprovals(later)).toHaveLength(1);
    expect(proposals(later)[0]!.group).toBeUndefined();
  });

  it('can be turned off in the policy', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
guards: { storm: { enabled: false } }
rules:
  - id: compromise
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder: [{ action: revoke_sessions, approval: auto }]
`,
      catalogue: devs(20),
    });
    const events = wave(
      s,
      devs(20).map((e) => e.id),
    );
    expect(ofType(events, 'StormDetected')).toEqual([]);
    expect(autoApprovals(events)).toHaveLength(20);
  });

  it('is decided from event time alone: the same inputs a day later decide the same', () => {
    const a = new Scenario({ catalogue: devs(15) });
    const b = new Scenario({ catalogue: devs(15), startMs: a.nowMs });
    const ea = wave(
      a,
      devs(15).map((e) => e.id),
    );
    const eb = wave(
      b,
      devs(15).map((e) => e.id),
    );
    expect(eb).toEqual(ea);
    expect(iso(a.nowMs)).toBe(iso(b.nowMs));
  });
});
