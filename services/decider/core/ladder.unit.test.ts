/**
 * The action ladder and the approval boundary, one transition at a time: when a rule's evidence is
 * sufficient, how a stage leads to the next, how approvals, rejections, expiry and verdicts move an
 * action, and what a human may and may not do. Read top to bottom, it is the ladder's specification.
 */
import { describe, expect, it } from 'vitest';
import { ApprovalError, NotFoundError } from '../../../platform/errors.ts';
import {
  autoApprovals,
  HOUR,
  MINUTE,
  ofType,
  proposals,
  Scenario,
} from '../../../test/support/decider-testkit.ts';

const dev = (id: string, over: Record<string, unknown> = {}) => ({
  id,
  tier: 'development' as const,
  ...over,
});

describe('evidence thresholds (stage 1)', () => {
  it('stolen-token needs two matching detections within an hour: the first alone proposes nothing', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    expect(proposals(s.detect('alice', 'anomalous_token_use', 0.85))).toEqual([]);
    s.advance(20 * MINUTE);
    const events = s.detect('alice', 'impossible_travel', 0.9);
    expect(proposals(events)).toMatchObject([
      {
        ruleId: 'stolen-token',
        action: 'revoke_tokens',
        stage: 1,
        detectionIds: ['det-1', 'det-2'],
        policyId: 'default',
        policyVersion: '2026.11.1',
      },
    ]);
    expect(autoApprovals(events)).toHaveLength(1);
  });

  it('two detections further apart than the window are not enough', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    s.detect('alice', 'anomalous_token_use', 0.85);
    s.advance(HOUR + MINUTE);
    expect(
      proposals(s.detect('alice', 'anomalous_token_use', 0.85)).filter((p) => p.ruleId === 'stolen-token'),
    ).toEqual([]);
  });

  it('a detection below the rule’s minimum confidence does not count towards it', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    s.detect('alice', 'anomalous_token_use', 0.79);
    s.advance(MINUTE);
    expect(
      proposals(s.detect('alice', 'anomalous_token_use', 0.85)).filter((p) => p.ruleId === 'stolen-token'),
    ).toEqual([]);
  });

  it('a rule that names identity types ignores other identities (stolen-token is for humans)', () => {
    const s = new Scenario({ catalogue: [dev('build-bot', { type: 'service_account' })] });
    s.detect('build-bot', 'anomalous_token_use', 0.85);
    s.advance(MINUTE);
    expect(proposals(s.detect('build-bot', 'anomalous_token_use', 0.85)).map((p) => p.ruleId)).not.toContain(
      'stolen-token',
    );
  });

  it('distinct sources: the same source twice is one witness; a second source makes two', () => {
    const policy = `
id: spec
version: "1"
rules:
  - id: corroborated
    when: { kinds: [impossible_travel], count: 2, distinctSources: 2, window: 1h }
    ladder: [{ action: force_step_up, approval: auto }]
`;
    const s = new Scenario({ policy, catalogue: [dev('alice')] });
    s.detect('alice', 'impossible_travel', 0.9, { source: 'okta' });
    expect(proposals(s.detect('alice', 'impossible_travel', 0.9, { source: 'okta' }))).toEqual([]);
    expect(proposals(s.detect('alice', 'impossible_travel', 0.9, { source: 'sentinel' }))).toMatchObject([
      { action: 'force_step_up' },
    ]);
  });

  it('a fallback rule (analyst-review) takes only what no specific rule claims, even a claim still gathering evidence', () => {
    const s = new Scenario({ catalogue: [dev('alice'), dev('build-bot', { type: 'service_account' })] });
    // stolen-token claims a human's token anomaly while it waits for the second detection
    expect(proposals(s.detect('alice', 'anomalous_token_use', 0.85))).toEqual([]);
    // no specific rule claims a service account's token anomaly: the fallback puts it before an analyst
    expect(proposals(s.detect('build-bot', 'anomalous_token_use', 0.85))).toMatchObject([
      { ruleId: 'analyst-review', action: 'revoke_sessions', approval: { mode: 'analyst' } },
    ]);
  });

  it('a detection above the case floor opens a case even when no rule fires; below it, it is only recorded', () => {
    const s = new Scenario({ catalogue: [dev('alice'), dev('bob')] });
    expect(s.detect('alice', 'other', 0.2).map((e) => e.type)).toEqual(['DetectionReceived']);
    const bob = s.detect('bob', 'other', 0.4);
    expect(bob.map((e) => e.type)).toEqual(['DetectionReceived', 'CaseOpened', 'NoActionTaken']);
    expect(bob[2]!.data).toMatchObject({ reasons: [{ code: 'no_rule' }] });
  });
});

describe('ladder transitions', () => {
  function stolenTokenStage1() {
    const s = new Scenario({ catalogue: [dev('alice')] });
    s.detect('alice', 'anomalous_token_use', 0.85);
    s.advance(MINUTE);
    s.detect('alice', 'anomalous_token_use', 0.85); // stage 1 revoke_tokens, approved by policy
    return s;
  }

  it('stage 1 approved → stage 2 needs its own evidence, newer than that approval', () => {
    const s = stolenTokenStage1();
    s.advance(MINUTE);
    expect(proposals(s.detect('alice', 'anomalous_token_use', 0.85))).toEqual([]); // one fresh detection of two
    s.advance(MINUTE);
    expect(proposals(s.detect('alice', 'anomalous_token_use', 0.85))).toMatchObject([
      {
        ruleId: 'stolen-token',
        action: 'force_step_up',
        stage: 2,
        args: { requiredAction: 'CONFIGURE_TOTP' },
        approval: { mode: 'auto' },
      },
    ]);
  });

  it('stage 2 approved → stage 3 (disable, analyst) waits its 30-minute validation window', () => {
    const s = stolenTokenStage1();
    s.advance(MINUTE);
    s.detect('alice', 'anomalous_token_use', 0.85);
    s.advance(MINUTE);
    s.detect('alice', 'anomalous_token_use', 0.85); // stage 2, approved by policy
    s.advance(10 * MINUTE);
    s.detect('alice', 'anomalous_token_use', 0.85);
    expect(proposals(s.detect('alice', 'anomalous_token_use', 0.85))).toEqual([]); // evidence enough, too early
    s.advance(21 * MINUTE);
    const events = s.detect('alice', 'anomalous_token_use', 0.85); // 31 minutes after stage 2
    expect(proposals(events)).toMatchObject([
      { action: 'disable_account', stage: 3, approval: { mode: 'analyst' } },
    ]);
    expect(autoApprovals(events)).toEqual([]);
  });

  it('while a stage is pending, the rule proposes nothing further', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6)); // analyst-review, pending
    expect(p!.approval.mode).toBe('analyst');
    s.advance(2 * HOUR);
    expect(proposals(s.detect('alice', 'impossible_travel', 0.6))).toEqual([]);
  });

  it('the last stage approved → the rule is done for this case', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    s.approve('alice', p!.actionId, 'ana');
    s.advance(2 * HOUR);
    expect(proposals(s.detect('alice', 'impossible_travel', 0.6))).toEqual([]);
  });

  it('a stage approved by a human moves the ladder like one approved by policy', () => {
    const s = new Scenario({ catalogue: [dev('alice', { consumers: 2 })] }); // shared: stage 1 needs an analyst
    const [p] = proposals(s.detect('alice', 'known_compromise', 0.95));
    expect(p!.approval.mode).toBe('analyst');
    s.advance(MINUTE);
    s.approve('alice', p!.actionId, 'ana');
    s.advance(31 * MINUTE);
    expect(proposals(s.detect('alice', 'known_compromise', 0.95))).toMatchObject([
      { action: 'disable_account', stage: 2 },
    ]);
  });

  it('an expired stage is proposed again after the cool-down, counted from the expiry, with fresh evidence', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    s.advance(4 * HOUR);
    s.tick('alice');
    s.advance(59 * MINUTE);
    expect(proposals(s.detect('alice', 'impossible_travel', 0.6))).toEqual([]);
    s.advance(MINUTE);
    expect(proposals(s.detect('alice', 'impossible_travel', 0.6))).toMatchObject([
      { action: 'revoke_sessions', stage: 1, caseId: p!.caseId },
    ]);
  });
});

describe('approval expiry', () => {
  it('a pending approval expires through a tick at its TTL (ActionExpired), not a moment before', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    expect(p!.approval.ttlSeconds).toBe(4 * 3600);
    s.advance(4 * HOUR - 1);
    expect(s.tick('alice')).toEqual([]);
    s.advance(1);
    const expired = ofType(s.tick('alice'), 'ActionExpired');
    expect(expired.map((e) => e.data)).toEqual([
      expect.objectContaining({ actionId: p!.actionId, expiredAt: p!.approval.expiresAt }),
    ]);
    expect(s.tick('alice')).toEqual([]);
  });

  it('a stage TTL overrides the default approval TTL', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
rules:
  - id: quick
    when: { kinds: [impossible_travel] }
    ladder: [{ action: force_step_up, approval: analyst, ttl: 15m }]
`,
      catalogue: [dev('alice')],
    });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    expect(p!.approval).toMatchObject({ ttlSeconds: 900 });
    s.advance(15 * MINUTE);
    expect(ofType(s.tick('alice'), 'ActionExpired')).toHaveLength(1);
  });

  it('an approval arriving after the TTL is refused, even before the tick has expired the action', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    s.advance(4 * HOUR);
    expect(() => s.approve('alice', p!.actionId, 'ana')).toThrow(/approval window has expired/);
  });

  it('an expired action can no longer be approved', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    s.advance(5 * HOUR);
    s.tick('alice');
    expect(() => s.approve('alice', p!.actionId, 'ana')).toThrow(/is expired, not pending/);
  });
});

describe('approvals are bound to the proposal', () => {
  it('an approval naming a different digest is refused and records nothing; the proposal’s digest is accepted', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    expect(() => s.approve('alice', p!.actionId, 'ana', 'sha256:forged')).toThrow(ApprovalError);
    const [a] = ofType(s.approve('alice', p!.actionId, 'ana', p!.argsDigest), 'ActionApproved');
    expect(a!.data).toMatchObject({
      argsDigest: p!.argsDigest,
      by: { kind: 'human', id: 'ana', role: 'analyst' },
      final: true,
    });
    expect(a!.causationId).toBe(`${p!.actionId}-proposed`);
  });

  it('approving an action that does not exist in the open case is NotFound', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    s.detect('alice', 'impossible_travel', 0.6);
    expect(() => s.approve('alice', 'act-nope', 'ana')).toThrow(NotFoundError);
  });

  it('an action already decided cannot be approved or rejected again', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    s.reject('alice', p!.actionId, 'ana');
    expect(() => s.approve('alice', p!.actionId, 'bo')).toThrow(/is rejected, not pending/);
    expect(() => s.reject('alice', p!.actionId, 'bo')).toThrow(/is rejected, not pending/);
  });

  it('an action approved by policy cannot be approved again by a human', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'known_compromise', 0.95));
    expect(() => s.approve('alice', p!.actionId, 'ana')).toThrow(/is approved, not pending/);
  });
});

describe('two-person approval', () => {
  function quarantinePending() {
    const s = new Scenario({ catalogue: [dev('etl', { type: 'workload' })] });
    const [p] = proposals(s.detect('etl', 'privilege_escalation', 0.9));
    expect(p).toMatchObject({
      ruleId: 'privilege-escalation',
      action: 'quarantine',
      approval: { mode: 'two-person' },
    });
    return { s, p: p! };
  }

  it('the first approval is recorded but not final', () => {
    const { s, p } = quarantinePending();
    expect(ofType(s.approve('etl', p.actionId, 'ana'), 'ActionApproved').map((e) => e.data.final)).toEqual([
      false,
    ]);
    expect(s.actions('etl')[0]!.status).toBe('pending');
  });

  it('the same person cannot give both approvals', () => {
    const { s, p } = quarantinePending();
    s.approve('etl', p.actionId, 'ana');
    expect(() => s.approve('etl', p.actionId, 'ana')).toThrow(/second, distinct approver/);
  });

  it('a second, distinct approver makes it final; nobody can approve it a third time', () => {
    const { s, p } = quarantinePending();
    s.approve('etl', p.actionId, 'ana');
    const [second] = ofType(s.approve('etl', p.actionId, 'bo'), 'ActionApproved');
    expect(second).toMatchObject({ id: `${p.actionId}-approved-2`, data: { final: true, by: { id: 'bo' } } });
    expect(() => s.approve('etl', p.actionId, 'cy')).toThrow(/is approved, not pending/);
  });

  it('a break-glass identity’s action proposed by an analyst needs two approvers besides the proposer', () => {
    const s = new Scenario({ catalogue: [dev('root', { breakGlass: true })] });
    const [p] = proposals(s.propose('root', 'revoke_sessions', 'ana', 'sessions from an unknown ASN'));
    expect(p!.approval.mode).toBe('two-person');
    expect(() => s.approve('root', p!.actionId, 'ana')).toThrow(/cannot approve it/);
    expect(ofType(s.approve('root', p!.actionId, 'bo'), 'ActionApproved')[0]!.data.final).toBe(false);
    expect(ofType(s.approve('root', p!.actionId, 'cy'), 'ActionApproved')[0]!.data.final).toBe(true);
  });
});

describe('manual proposals', () => {
  it('an analyst may propose an action; it opens a case when none is open and needs another analyst’s approval', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const events = s.propose('alice', 'force_step_up', 'ana', 'user reported phishing');
    expect(events.map((e) => e.type)).toEqual(['CaseOpened', 'ActionProposed']);
    const [p] = proposals(events);
    expect(p).toMatchObject({
      ruleId: 'manual',
      stage: 1,
      detectionIds: [],
      args: { proposedBy: 'ana', reason: 'user reported phishing' },
      approval: { mode: 'analyst' },
    });
  });

  it('the proposer cannot approve their own action; a colleague can', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.propose('alice', 'force_step_up', 'ana'));
    expect(() => s.approve('alice', p!.actionId, 'ana')).toThrow(/ana proposed .* and cannot approve it/);
    expect(ofType(s.approve('alice', p!.actionId, 'bo'), 'ActionApproved')[0]!.data.final).toBe(true);
  });

  it('is never approved automatically, even where the policy would pre-authorise the action', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    expect(autoApprovals(s.propose('alice', 'revoke_sessions', 'ana'))).toEqual([]);
  });

  it('cannot duplicate an action already pending or approved in the case', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    s.detect('alice', 'known_compromise', 0.95); // revoke_sessions approved by policy
    expect(() => s.propose('alice', 'revoke_sessions', 'ana')).toThrow(/already pending or approved/);
  });
});

describe('verdicts', () => {
  it('a benign verdict resolves the case and rejects its pending actions; approved ones stay approved (the executor rolls them back)', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [auto] = proposals(s.detect('alice', 'known_compromise', 0.95));
    const [pending] = proposals(s.propose('alice', 'force_step_up', 'ana'));
    s.advance(MINUTE);
    const events = s.verdict('alice', 'benign', 'lead');
    expect(events.map((e) => e.type)).toEqual(['CaseResolved', 'ActionRejected']);
    expect(ofType(events, 'CaseResolved')[0]!.data).toMatchObject({
      caseId: auto!.caseId,
      verdict: 'benign',
      by: { kind: 'human', id: 'lead' },
    });
    expect(ofType(events, 'ActionRejected')[0]!.data).toMatchObject({
      actionId: pending!.actionId,
      reason: 'case resolved benign',
    });
    expect(s.state(s.who('alice')).openCase).toBeNull();
  });

  it('a benign verdict clears the evidence: it does not count towards the next case', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
rules:
  - id: push-bombing
    when: { kinds: [mfa_fatigue], count: 3, window: 30m }
    ladder: [{ action: revoke_sessions, approval: auto }]
`,
      catalogue: [dev('alice')],
    });
    s.detect('alice', 'mfa_fatigue', 0.7);
    s.detect('alice', 'mfa_fatigue', 0.7);
    s.verdict('alice', 'benign');
    s.advance(MINUTE);
    const events = s.detect('alice', 'mfa_fatigue', 0.7);
    expect(ofType(events, 'CaseOpened')).toHaveLength(1); // a new case
    expect(proposals(events)).toEqual([]); // one detection of three
    s.detect('alice', 'mfa_fatigue', 0.7);
    expect(proposals(s.detect('alice', 'mfa_fatigue', 0.7))).toHaveLength(1);
  });

  it('a malicious verdict also leaves nothing pending: actions not approved by then are withdrawn', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    const events = s.verdict('alice', 'malicious');
    expect(ofType(events, 'ActionRejected').map((e) => e.data)).toEqual([
      expect.objectContaining({ actionId: p!.actionId, reason: 'case resolved malicious' }),
    ]);
  });

  it('a verdict on a case that is not open is NotFound', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    expect(() => s.verdict('alice', 'benign')).toThrow(NotFoundError);
  });

  it('the next case gets a new id, and evidence already seen stays deduplicated', () => {
    const s = new Scenario({ catalogue: [dev('alice')] });
    const first = ofType(s.detect('alice', 'other', 0.5, { detectionId: 'x-1' }), 'CaseOpened')[0]!.data
      .caseId;
    s.verdict('alice', 'benign');
    expect(s.detect('alice', 'other', 0.5, { detectionId: 'x-1' })).toEqual([]);
    const second = ofType(s.detect('alice', 'other', 0.5, { detectionId: 'x-2' }), 'CaseOpened')[0]!.data
      .caseId;
    expect(second).not.toBe(first);
    expect(second).toMatch(/-2$/);
  });
});
