/** Per-rule monitor mode: a rule records what it would have proposed, and never executes or asks. */
import { describe, expect, it } from 'vitest';
import { type HistoryLine, historyFromLines } from '../../../simulations/history.ts';
import { replayHistory } from '../../../simulations/replay.ts';
import { summarize } from '../../../simulations/report.ts';
import { MINUTE, ofType, proposals, Scenario } from '../../../test/support/decider-testkit.ts';
import { parsePolicy } from '../policy/load.ts';

const POLICY = `
id: spec
version: "1"
rules:
  - id: trial
    mode: monitor
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder:
      - { action: revoke_sessions, approval: auto }
      - { action: disable_account, approval: analyst }
  - id: review
    fallback: true
    when: { kinds: [known_compromise], minConfidence: 0.5 }
    ladder: [{ action: revoke_sessions, approval: analyst }]
`;

describe('monitor mode', () => {
  it('records ActionShadowed with what it would have needed, once per case; nothing proposed by the rule, nothing approved', () => {
    const s = new Scenario({ policy: POLICY, catalogue: [{ id: 'ann', tier: 'development' }] });
    const first = s.detect('ann', 'known_compromise', 0.95);
    expect(ofType(first, 'ActionShadowed').map((e) => e.data)).toEqual([
      {
        caseId: expect.any(String),
        identity: expect.objectContaining({ id: 'ann' }),
        ruleId: 'trial',
        action: 'revoke_sessions',
        stage: 1,
        policyVersion: '1',
        detectionIds: ['det-1'],
        wouldNeed: 'auto',
        guards: [],
      },
    ]);
    expect(ofType(first, 'ActionApproved')).toEqual([]);
    expect(proposals(first).filter((p) => p.ruleId === 'trial')).toEqual([]);
    // A rule in monitor mode does not claim the detection: the catch-all still asks an analyst.
    expect(proposals(first).map((p) => p.ruleId)).toEqual(['review']);
    expect(ofType(first, 'NoActionTaken')[0]!.data.reasons.map((r) => r.code)).toEqual([
      'monitor',
      'approval_required',
    ]);
    s.advance(MINUTE);
    const second = s.detect('ann', 'known_compromise', 0.95);
    expect(ofType(second, 'ActionShadowed')).toEqual([]);
    // the second detection joins the case: its reasons ride on its DetectionReceived
    expect(ofType(second, 'DetectionReceived')[0]!.data.noAction?.[0]).toMatchObject({
      code: 'monitor',
      ruleId: 'trial',
    });
  });

  it('a replay of the same period reproduces the shadowed actions, and the report counts them', () => {
    const policy = parsePolicy(POLICY, 'monitor.yaml');
    const human = (n: string) => ({ provider: 'okta', id: `${n}@acme.example`, type: 'human' as const });
    const lines: HistoryLine[] = ['a', 'b', 'c'].map((n, i) => ({
      type: 'detection',
      id: `kc-${n}`,
      source: 'okta',
      kind: 'known_compromise',
      confidence: 0.95,
      severity: 'high',
      identity: human(n),
      occurredAt: `2026-10-01T10:0${i}:00.000Z`,
    }));
    const live = new Scenario({ policy });
    const liveShadowed = lines.flatMap((l) =>
      l.type === 'detection'
        ? ofType(
            live.step({ type: 'detection', at: l.occurredAt, detection: { ...l, evidence: {} } as never }),
            'ActionShadowed',
          )
        : [],
    );
    const replayed: string[] = [];
    const run = replayHistory(historyFromLines(lines), policy, {
      onEvent: (e) => {
        if (e.type === 'ActionShadowed') replayed.push(e.id);
      },
    });
    expect(replayed).toEqual(liveShadowed.map((e) => e.id));
    expect(replayed).toHaveLength(3);
    expect(summarize(run).totals.actionsShadowed).toBe(3);
    expect(run.actions.every((a) => a.ruleId !== 'trial')).toBe(true);
  });
});
