/**
 * Why nothing happened: every detection that opens or joins a case without an automatic action
 * records its reasons, one situation at a time: one that opens a case in a NoActionTaken, one that
 * joins a case on its own DetectionReceived (`noAction`).
 */
import { describe, expect, it } from 'vitest';
import type { NewEvent, NoActionReason } from '../../../schemas/events.ts';
import { autoApprovals, HOUR, MINUTE, ofType, Scenario } from '../../../test/support/decider-testkit.ts';

/** A decision's reasons, wherever they are recorded; exactly one place records them. */
const reasonsOf = (events: readonly NewEvent[]): NoActionReason[] => {
  const recorded = ofType(events, 'NoActionTaken');
  const carried = ofType(events, 'DetectionReceived')[0]?.data.noAction;
  expect(recorded.length + (carried ? 1 : 0), 'one record of why nothing happened').toBe(1);
  return carried ?? recorded[0]!.data.reasons;
};

describe('NoActionTaken', () => {
  it('below the case floor, joining an open case: recorded only', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    s.detect('ann', 'other', 0.4); // opens a case (above the floor), no rule
    s.advance(MINUTE);
    expect(reasonsOf(s.detect('ann', 'other', 0.1))).toEqual([
      { code: 'below_case_floor', detail: 'below the case floor 0.3: recorded only' },
    ]);
  });

  it('no rule acts on it: the case opens and says so', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const events = s.detect('ann', 'other', 0.45);
    expect(ofType(events, 'CaseOpened')).toHaveLength(1);
    expect(reasonsOf(events)[0]).toMatchObject({ code: 'no_rule' });
  });

  it('a rule gathering evidence shows its progress: "2/3 in 30m"', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const first = s.detect('ann', 'mfa_fatigue', 0.7);
    expect(reasonsOf(first)).toEqual([
      { code: 'gathering', ruleId: 'mfa-fatigue', detail: 'rule mfa-fatigue gathering evidence: 1/3 in 30m' },
    ]);
    s.advance(5 * MINUTE);
    expect(reasonsOf(s.detect('ann', 'mfa_fatigue', 0.7))).toEqual([
      { code: 'gathering', ruleId: 'mfa-fatigue', detail: 'rule mfa-fatigue gathering evidence: 2/3 in 30m' },
    ]);
    s.advance(5 * MINUTE);
    const third = s.detect('ann', 'mfa_fatigue', 0.7);
    expect(autoApprovals(third)).toHaveLength(1);
    expect(ofType(third, 'NoActionTaken')).toEqual([]);
    expect(ofType(third, 'DetectionReceived')[0]!.data.noAction).toBeUndefined();
  });

  it('cool-down after a rejection', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const [p] = ofType(s.detect('ann', 'credential_abuse', 0.55), 'ActionProposed'); // analyst-review
    s.advance(MINUTE);
    s.reject('ann', p!.data.actionId, 'ana');
    s.advance(10 * MINUTE);
    const [r] = reasonsOf(s.detect('ann', 'credential_abuse', 0.55));
    expect(r).toMatchObject({ code: 'cooldown', ruleId: 'analyst-review' });
    expect(r!.detail).toMatch(/was rejected; cool-down until 2026-03-02T10:01:00.000Z/);
  });

  it('a blast-radius budget spent', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
guards:
  budgets: [{ action: "*", limit: 1, window: 1h, scope: global }]
rules:
  - id: compromise
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder: [{ action: revoke_sessions, approval: auto }]
`,
      catalogue: [
        { id: 'ann', tier: 'development' },
        { id: 'bob', tier: 'development' },
      ],
    });
    expect(autoApprovals(s.detect('ann', 'known_compromise', 0.95))).toHaveLength(1);
    const [r] = reasonsOf(s.detect('bob', 'known_compromise', 0.95));
    expect(r).toMatchObject({ code: 'budget', ruleId: 'compromise' });
    expect(r!.detail).toContain('budget *@global: 1 automatic actions in 3600s, limit 1');
  });

  it("a guard (shared identity) and the rule's own approval", () => {
    const s = new Scenario({ catalogue: [{ id: 'team', tier: 'development', consumers: 4 }] });
    expect(reasonsOf(s.detect('team', 'known_compromise', 0.95))).toEqual([
      {
        code: 'guard',
        ruleId: 'known-compromise',
        detail: 'revoke_sessions approval auto -> analyst (shared_identity): shared by 4 consumers',
      },
    ]);
    const t = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    expect(reasonsOf(t.detect('ann', 'credential_abuse', 0.55))).toEqual([
      {
        code: 'approval_required',
        ruleId: 'analyst-review',
        detail: 'rule analyst-review: revoke_sessions needs analyst approval',
      },
    ]);
  });

  it('stale', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const [r] = reasonsOf(s.detect('ann', 'known_compromise', 0.95, { occurredAtMs: s.nowMs - 2 * HOUR }));
    expect(r).toMatchObject({ code: 'stale', ruleId: 'known-compromise' });
  });

  it('automation paused', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    s.pause();
    const [r] = reasonsOf(s.detect('ann', 'known_compromise', 0.95));
    expect(r).toMatchObject({ code: 'paused', ruleId: 'known-compromise' });
  });

  it('storm hold', () => {
    const catalogue = Array.from({ length: 12 }, (_, i) => ({ id: `u${i}`, tier: 'development' as const }));
    const s = new Scenario({ catalogue });
    let last: NewEvent[] = [];
    for (const e of catalogue) {
      last = s.detect(e.id, 'known_compromise', 0.95);
      s.advance(MINUTE);
    }
    expect(reasonsOf(last)[0]).toMatchObject({ code: 'storm_hold', ruleId: 'known-compromise' });
  });

  it('an action already pending in the case', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    s.detect('ann', 'credential_abuse', 0.55);
    s.advance(MINUTE);
    expect(reasonsOf(s.detect('ann', 'credential_abuse', 0.56))).toEqual([
      {
        code: 'pending',
        ruleId: 'analyst-review',
        detail: 'rule analyst-review: stage 1 (revoke_sessions) awaits analyst approval',
      },
    ]);
  });

  it('nothing is recorded for a detection that neither opens nor joins a case, nor when an action is automatic', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const recordedOnly = s.detect('ann', 'other', 0.1);
    expect(recordedOnly.map((e) => e.type)).toEqual(['DetectionReceived']);
    expect(ofType(recordedOnly, 'DetectionReceived')[0]!.data.noAction).toBeUndefined();
    const contained = s.detect('ann', 'known_compromise', 0.95);
    expect(ofType(contained, 'NoActionTaken')).toEqual([]);
    expect(ofType(contained, 'DetectionReceived')[0]!.data.noAction).toBeUndefined();
  });

  it('a detection that opens a case records NoActionTaken; one that joins it carries its reasons instead', () => {
    const s = new Scenario({ catalogue: [{ id: 'ann', tier: 'development' }] });
    const opened = s.detect('ann', 'other', 0.4);
    expect(opened.map((e) => e.type)).toEqual(['DetectionReceived', 'CaseOpened', 'NoActionTaken']);
    expect(ofType(opened, 'DetectionReceived')[0]!.data.noAction).toBeUndefined();
    const caseId = ofType(opened, 'CaseOpened')[0]!.data.caseId;

    s.advance(MINUTE);
    const joined = s.detect('ann', 'other', 0.45);
    expect(joined.map((e) => e.type)).toEqual(['DetectionReceived']);
    expect(joined[0]!.correlationId).toBe(caseId);
    expect(ofType(joined, 'DetectionReceived')[0]!.data.noAction).toEqual(
      ofType(opened, 'NoActionTaken')[0]!.data.reasons,
    );
  });
});
