/**
 * The guards, one rule at a time. Each `it` states a rule of the policy in words; together they are
 * the specification of what overrides a rule's approval, in the order the decider applies them:
 * unmanaged secrets, break-glass, third-party, shared, staged containment, kill switch, budget;
 * then dedupe, cool-down and the catalogue as of event time.
 */
import { describe, expect, it } from 'vitest';
import { ApprovalError } from '../../../platform/errors.ts';
import {
  autoApprovals,
  HOUR,
  iso,
  MINUTE,
  ofType,
  proposals,
  Scenario,
  T0,
} from '../../../test/support/decider-testkit.ts';

/** One rule: a known compromise revokes sessions automatically, then disables automatically. */
const COMPROMISE_POLICY = `
id: spec
version: "1"
guards:
  stagedContainment: { tiers: [production], validationWindow: 30m }
rules:
  - id: compromise
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder:
      - { action: revoke_sessions, approval: auto }
      - { action: disable_account, approval: auto }
`;

const guardsOf = (p: { guards: Array<{ guard: string }> }) => p.guards.map((g) => g.guard);

describe('break-glass identities', () => {
  it('a break-glass identity with a known compromise gets a two-person proposal, never an automatic one', () => {
    const s = new Scenario({ catalogue: [{ id: 'root-admin', tier: 'development', breakGlass: true }] });
    const events = s.detect('root-admin', 'known_compromise', 0.97);
    expect(proposals(events)).toMatchObject([
      { action: 'revoke_sessions', ruleId: 'known-compromise', approval: { mode: 'two-person' } },
    ]);
    expect(guardsOf(proposals(events)[0]!)).toEqual(['break_glass']);
    expect(autoApprovals(events)).toEqual([]);
  });

  it('when the break-glass floor is "never", nothing is proposed for it, and an analyst cannot propose it by hand either', () => {
    const s = new Scenario({
      policy: COMPROMISE_POLICY.replace('guards:', 'guards:\n  breakGlass: { approval: never }'),
      catalogue: [{ id: 'root-admin', tier: 'development', breakGlass: true }],
    });
    const events = s.detect('root-admin', 'known_compromise', 0.97);
    expect(ofType(events, 'CaseOpened')).toHaveLength(1);
    expect(proposals(events)).toEqual([]);
    expect(() => s.propose('root-admin', 'revoke_sessions', 'ana')).toThrow(ApprovalError);
  });

  it('the break-glass floor only ever raises approval: a two-person stage stays two-person under an analyst floor', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
guards: { breakGlass: { approval: analyst } }
rules:
  - id: compromise
    when: { kinds: [known_compromise] }
    ladder: [{ action: revoke_sessions, approval: two-person }]
`,
      catalogue: [{ id: 'root-admin', breakGlass: true }],
    });
    const [p] = proposals(s.detect('root-admin', 'known_compromise', 0.95));
    expect(p).toMatchObject({ approval: { mode: 'two-person' }, guards: [] });
  });
});

describe('shared identities', () => {
  it('an identity shared by two or more consumers needs an analyst where the rule says automatic', () => {
    const s = new Scenario({ catalogue: [{ id: 'team-login', tier: 'development', consumers: 3 }] });
    const events = s.detect('team-login', 'known_compromise', 0.95);
    const [p] = proposals(events);
    expect(p).toMatchObject({
      action: 'revoke_sessions',
      approval: { mode: 'analyst' },
      blastRadius: { consumers: 3, shared: true },
    });
    expect(guardsOf(p!)).toEqual(['shared_identity']);
    expect(autoApprovals(events)).toEqual([]);
  });

  it('an identity with a single consumer is not shared: the automatic approval stands', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development', consumers: 1 }] });
    const events = s.detect('alice', 'known_compromise', 0.95);
    expect(proposals(events)).toMatchObject([
      { approval: { mode: 'auto' }, blastRadius: { shared: false }, guards: [] },
    ]);
    expect(autoApprovals(events)).toMatchObject([
      { by: { kind: 'policy', ruleId: 'known-compromise', policyId: 'default' }, final: true },
    ]);
  });
});

describe('third-party connected identities', () => {
  const partner = { partner: 'payroll-co', grant: 'grant-77' };

  it('a revocation on a partner-connected identity needs external coordination: mode external and CoordinationRequested, never automatic', () => {
    const s = new Scenario({ catalogue: [{ id: 'payroll-sync', tier: 'development', thirdParty: partner }] });
    const events = s.detect('payroll-sync', 'known_compromise', 0.95);
    const [p] = proposals(events);
    expect(p).toMatchObject({
      action: 'revoke_sessions',
      approval: { mode: 'external' },
      blastRadius: { thirdParty: true },
    });
    expect(guardsOf(p!)).toEqual(['third_party']);
    expect(ofType(events, 'CoordinationRequested').map((e) => e.data)).toEqual([
      expect.objectContaining({ actionId: p!.actionId, partner: 'payroll-co', grant: 'grant-77' }),
    ]);
    expect(autoApprovals(events)).toEqual([]);
  });

  it('its rollback is marked incomplete: the partner grant is outside our control', () => {
    const s = new Scenario({ catalogue: [{ id: 'payroll-sync', tier: 'development', thirdParty: partner }] });
    const [p] = proposals(s.detect('payroll-sync', 'known_compromise', 0.95));
    expect(p!.rollback.complete).toBe(false);
    expect(p!.rollback.notes).toContain('third-party grant grant-77 (payroll-co) is outside our control');
  });

  it('an action that revokes nothing (step-up) is not held for the partner', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
rules:
  - id: step-up
    when: { kinds: [impossible_travel] }
    ladder: [{ action: force_step_up, approval: auto }]
`,
      catalogue: [{ id: 'payroll-sync', tier: 'development', thirdParty: partner }],
    });
    const events = s.detect('payroll-sync', 'impossible_travel', 0.9);
    expect(proposals(events)).toMatchObject([{ action: 'force_step_up', approval: { mode: 'auto' } }]);
    expect(ofType(events, 'CoordinationRequested')).toEqual([]);
  });

  it('once the partner has agreed, one human approval completes it', () => {
    const s = new Scenario({ catalogue: [{ id: 'payroll-sync', tier: 'development', thirdParty: partner }] });
    const [p] = proposals(s.detect('payroll-sync', 'known_compromise', 0.95));
    const [approved] = ofType(s.approve('payroll-sync', p!.actionId, 'ana', p!.argsDigest), 'ActionApproved');
    expect(approved!.data).toMatchObject({ by: { kind: 'human', id: 'ana' }, final: true });
  });
});

describe('staged containment of production identities', () => {
  it('disabling as a first stage on a production identity needs an analyst', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
rules:
  - id: disable-now
    when: { kinds: [known_compromise] }
    ladder: [{ action: disable_account, approval: auto }]
`,
      catalogue: [{ id: 'prod-svc', tier: 'production' }],
    });
    const [p] = proposals(s.detect('prod-svc', 'known_compromise', 0.95));
    expect(p).toMatchObject({ action: 'disable_account', approval: { mode: 'analyst' } });
    expect(guardsOf(p!)).toEqual(['staged_containment']);
  });

  it('the same first-stage disable on a development identity stays automatic', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
rules:
  - id: disable-now
    when: { kinds: [known_compromise] }
    ladder: [{ action: disable_account, approval: auto }]
`,
      catalogue: [{ id: 'dev-svc', tier: 'development' }],
    });
    expect(proposals(s.detect('dev-svc', 'known_compromise', 0.95))).toMatchObject([
      { action: 'disable_account', approval: { mode: 'auto' }, guards: [] },
    ]);
  });

  it('after the narrow stage, a production identity is not disabled before the validation window has passed, whatever the evidence', () => {
    const s = new Scenario({ policy: COMPROMISE_POLICY, catalogue: [{ id: 'alice', tier: 'production' }] });
    expect(proposals(s.detect('alice', 'known_compromise', 0.95))).toMatchObject([
      { action: 'revoke_sessions', stage: 1 },
    ]);
    s.advance(10 * MINUTE);
    expect(proposals(s.detect('alice', 'known_compromise', 0.99))).toEqual([]);
    s.advance(19 * MINUTE);
    expect(proposals(s.detect('alice', 'known_compromise', 0.99))).toEqual([]);
  });

  it('after the validation window, evidence older than the narrow stage does not count; fresh evidence disables', () => {
    const s = new Scenario({ policy: COMPROMISE_POLICY, catalogue: [{ id: 'alice', tier: 'production' }] });
    s.detect('alice', 'known_compromise', 0.95);
    const narrowedAt = s.nowMs;
    s.advance(31 * MINUTE);
    // arrives now, but occurred before the sessions were revoked
    expect(
      proposals(s.detect('alice', 'known_compromise', 0.99, { occurredAtMs: narrowedAt - MINUTE })),
    ).toEqual([]);
    const events = s.detect('alice', 'known_compromise', 0.99);
    expect(proposals(events)).toMatchObject([
      { action: 'disable_account', stage: 2, approval: { mode: 'auto' }, guards: [] },
    ]);
    expect(autoApprovals(events)).toHaveLength(1);
  });

  it('a development identity moves to the next stage without a validation window', () => {
    const s = new Scenario({
      policy: COMPROMISE_POLICY,
      catalogue: [{ id: 'dev-user', tier: 'development' }],
    });
    s.detect('dev-user', 'known_compromise', 0.95);
    s.advance(MINUTE);
    expect(proposals(s.detect('dev-user', 'known_compromise', 0.95))).toMatchObject([
      { action: 'disable_account', stage: 2 },
    ]);
  });

  it('an identity missing from the catalogue is treated as production (assume the worst)', () => {
    const s = new Scenario({ policy: COMPROMISE_POLICY });
    s.detect('stranger', 'known_compromise', 0.95);
    s.advance(MINUTE);
    expect(proposals(s.detect('stranger', 'known_compromise', 0.95))).toEqual([]);
    s.advance(30 * MINUTE);
    expect(proposals(s.detect('stranger', 'known_compromise', 0.95))).toMatchObject([
      { action: 'disable_account', blastRadius: { tier: 'production' } },
    ]);
  });
});

describe('identities whose secrets live outside a managed vault', () => {
  it('a leaked secret is answered by revoking tokens instead of rotating it, and the rollback is marked incomplete', () => {
    const s = new Scenario({
      catalogue: [{ id: 'ci-bot', type: 'service_account', tier: 'development', secrets: 'unmanaged' }],
    });
    const [p] = proposals(s.detect('ci-bot', 'secret_exposure', 0.9));
    expect(p).toMatchObject({
      action: 'revoke_tokens',
      ruleId: 'leaked-secret',
      approval: { mode: 'auto' },
      rollback: { complete: false },
    });
    expect(p!.guards).toMatchObject([
      { guard: 'unmanaged_secrets', effect: 'rotate_credential replaced by revoke_tokens' },
    ]);
    expect(p!.rollback.notes).toContain(
      'secrets kept outside a managed vault: copies may persist and cannot be recalled',
    );
  });

  it('the same leak on a vault-managed identity rotates the credential', () => {
    const s = new Scenario({
      catalogue: [{ id: 'ci-bot', type: 'service_account', tier: 'development', secrets: 'managed_vault' }],
    });
    const [p] = proposals(s.detect('ci-bot', 'secret_exposure', 0.9));
    expect(p).toMatchObject({ action: 'rotate_credential', guards: [] });
    expect(p!.rollback.notes).not.toContain(
      'secrets kept outside a managed vault: copies may persist and cannot be recalled',
    );
  });

  it('any action on such an identity has an incomplete rollback, even one that is otherwise fully reversible', () => {
    const s = new Scenario({
      policy: `
id: spec
version: "1"
rules:
  - id: quarantine
    when: { kinds: [privilege_escalation] }
    ladder: [{ action: quarantine, approval: analyst }]
`,
      catalogue: [
        { id: 'vaulted', type: 'workload', secrets: 'managed_vault' },
        { id: 'loose', type: 'workload', secrets: 'unmanaged' },
      ],
    });
    expect(proposals(s.detect('vaulted', 'privilege_escalation', 0.9))).toMatchObject([
      { rollback: { complete: true, notes: [] }, blastRadius: { reversible: true } },
    ]);
    expect(proposals(s.detect('loose', 'privilege_escalation', 0.9))).toMatchObject([
      { rollback: { complete: false }, blastRadius: { reversible: false } },
    ]);
  });

  it('an analyst asking to rotate it while a token revocation is already pending or approved is refused (it would be the same action twice)', () => {
    const s = new Scenario({
      catalogue: [{ id: 'ci-bot', type: 'service_account', tier: 'development', secrets: 'unmanaged' }],
    });
    s.detect('ci-bot', 'secret_exposure', 0.9); // revoke_tokens, approved automatically
    expect(() => s.propose('ci-bot', 'rotate_credential', 'ana')).toThrow(
      /revoke_tokens is already pending or approved/,
    );
  });
});

describe('blast-radius budget', () => {
  const BUDGET_POLICY = `
id: spec
version: "1"
guards:
  budgets:
    - { action: revoke_sessions, limit: 2, window: 1h, scope: global }
rules:
  - id: compromise
    when: { kinds: [known_compromise] }
    ladder: [{ action: revoke_sessions, approval: auto }]
`;
  const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8'].map((id) => ({
    id,
    tier: 'development' as const,
  }));

  it('the N+1th automatic action within the window degrades to an analyst and raises GuardTripped', () => {
    const s = new Scenario({ policy: BUDGET_POLICY, catalogue: users });
    expect(proposals(s.detect('u1', 'known_compromise', 0.95))).toMatchObject([
      { approval: { mode: 'auto' }, blastRadius: { budgetUsed: 0, budgetLimit: 2 } },
    ]);
    s.advance(MINUTE);
    expect(proposals(s.detect('u2', 'known_compromise', 0.95))).toMatchObject([
      { approval: { mode: 'auto' }, blastRadius: { budgetUsed: 1 } },
    ]);
    s.advance(MINUTE);
    const third = s.detect('u3', 'known_compromise', 0.95);
    const [p] = proposals(third);
    expect(p).toMatchObject({
      approval: { mode: 'analyst' },
      blastRadius: { budgetUsed: 2, budgetLimit: 2, budgetKeys: [] },
    });
    expect(p!.guards).toMatchObject([{ guard: 'blast_radius_budget', effect: 'approval auto -> analyst' }]);
    expect(autoApprovals(third)).toEqual([]);
    expect(ofType(third, 'GuardTripped').map((e) => e.data)).toEqual([
      {
        guard: 'blast_radius_budget:revoke_sessions@global',
        actionType: 'revoke_sessions',
        scope: 'revoke_sessions@global',
        limit: 2,
        windowSeconds: 3600,
        identity: s.who('u3'),
      },
    ]);
  });

  it('GuardTripped is raised once while the budget stays exhausted, not for every degraded action', () => {
    const s = new Scenario({ policy: BUDGET_POLICY, catalogue: users });
    const trips = ['u1', 'u2', 'u3', 'u4', 'u5'].map((u) => {
      s.advance(MINUTE);
      return ofType(s.detect(u, 'known_compromise', 0.95), 'GuardTripped').length;
    });
    expect(trips).toEqual([0, 0, 1, 0, 0]);
  });

  it('after the window frees up, actions are automatic again; when it fills again, GuardTripped is raised again', () => {
    const s = new Scenario({ policy: BUDGET_POLICY, catalogue: users });
    const run = (u: string) => {
      s.advance(MINUTE);
      const events = s.detect(u, 'known_compromise', 0.95);
      return `${proposals(events)[0]!.approval.mode}${ofType(events, 'GuardTripped').length ? '+trip' : ''}`;
    };
    expect(['u1', 'u2', 'u3', 'u4'].map(run)).toEqual(['auto', 'auto', 'analyst+trip', 'analyst']);
    s.advance(HOUR);
    expect(['u5', 'u6', 'u7', 'u8'].map(run)).toEqual(['auto', 'auto', 'analyst+trip', 'analyst']);
  });

  it('a per-tenant budget counts each tenant separately', () => {
    const s = new Scenario({
      policy: BUDGET_POLICY.replace('scope: global', 'scope: tenant').replace('limit: 2', 'limit: 1'),
      catalogue: [
        { id: 'a1', tenant: 'acme', tier: 'development' },
        { id: 'a2', tenant: 'acme', tier: 'development' },
        { id: 'g1', tenant: 'globex', tier: 'development' },
      ],
    });
    expect(proposals(s.detect('a1', 'known_compromise', 0.95))[0]).toMatchObject({
      approval: { mode: 'auto' },
      blastRadius: { budgetKeys: ['revoke_sessions@tenant:okta/acme'] },
    });
    expect(proposals(s.detect('a2', 'known_compromise', 0.95))[0]!.approval.mode).toBe('analyst');
    expect(proposals(s.detect('g1', 'known_compromise', 0.95))[0]!.approval.mode).toBe('auto');
  });

  it('an action under two budgets with the same action and scope (different windows) counts once and trips once', () => {
    const s = new Scenario({
      policy: BUDGET_POLICY.replace(
        '- { action: revoke_sessions, limit: 2, window: 1h, scope: global }',
        '- { action: revoke_sessions, limit: 2, window: 1h, scope: global }\n    - { action: revoke_sessions, limit: 2, window: 10m, scope: global }',
      ),
      catalogue: users,
    });
    const modes = ['u1', 'u2', 'u3'].map((u) => {
      s.advance(MINUTE);
      return s.detect(u, 'known_compromise', 0.95);
    });
    expect(modes.map((e) => proposals(e)[0]!.approval.mode)).toEqual(['auto', 'auto', 'analyst']);
    expect(proposals(modes[0]!)[0]!.blastRadius.budgetKeys).toEqual(['revoke_sessions@global']);
    expect(ofType(modes[2]!, 'GuardTripped')).toHaveLength(1);
  });

  it('a budget of zero makes every action of its type need an analyst', () => {
    const s = new Scenario({ policy: BUDGET_POLICY.replace('limit: 2', 'limit: 0'), catalogue: users });
    expect(proposals(s.detect('u1', 'known_compromise', 0.95))[0]!.approval.mode).toBe('analyst');
  });

  it('actions that were not automatic do not spend the budget', () => {
    const s = new Scenario({
      policy: BUDGET_POLICY,
      catalogue: [...users, { id: 'shared', consumers: 4, tier: 'development' }],
    });
    s.detect('shared', 'known_compromise', 0.95); // analyst (shared), not counted
    expect(
      ['u1', 'u2'].map((u) => proposals(s.detect(u, 'known_compromise', 0.95))[0]!.approval.mode),
    ).toEqual(['auto', 'auto']);
  });
});

describe('kill switch', () => {
  it('while automation is paused nothing is approved automatically; the action waits for an analyst', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    s.pause();
    const events = s.detect('alice', 'known_compromise', 0.95);
    expect(proposals(events)).toMatchObject([{ approval: { mode: 'analyst' } }]);
    expect(guardsOf(proposals(events)[0]!)).toEqual(['automation_paused']);
    expect(autoApprovals(events)).toEqual([]);
  });

  it('after automation resumes, the rule acts automatically again', () => {
    const s = new Scenario({
      catalogue: [
        { id: 'alice', tier: 'development' },
        { id: 'bob', tier: 'development' },
      ],
    });
    s.pause();
    s.detect('alice', 'known_compromise', 0.95);
    s.resume();
    expect(autoApprovals(s.detect('bob', 'known_compromise', 0.95))).toHaveLength(1);
  });
});

describe('dedupe and cool-down', () => {
  it('the same detection delivered twice is recorded once and decides nothing the second time', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    expect(s.detect('alice', 'known_compromise', 0.95, { detectionId: 'okta-1' }).length).toBeGreaterThan(0);
    s.advance(MINUTE);
    expect(s.detect('alice', 'known_compromise', 0.95, { detectionId: 'okta-1' })).toEqual([]);
  });

  it('the same detection id from another source is other evidence', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    s.detect('alice', 'other', 0.2, { detectionId: '42', source: 'okta' });
    expect(
      ofType(s.detect('alice', 'other', 0.2, { detectionId: '42', source: 'sentinel' }), 'DetectionReceived'),
    ).toHaveLength(1);
  });

  it('an action pending in the case is not proposed again by more evidence', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    expect(proposals(s.detect('alice', 'impossible_travel', 0.6))).toMatchObject([
      { ruleId: 'analyst-review', action: 'revoke_sessions' },
    ]);
    s.advance(MINUTE);
    expect(proposals(s.detect('alice', 'impossible_travel', 0.65))).toEqual([]);
  });

  it('two rules asking for the same action in one decision give one proposal (the first rule in the policy)', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    // known-compromise (revoke_sessions, auto) and analyst-review (revoke_sessions, analyst) both match
    expect(proposals(s.detect('alice', 'known_compromise', 0.95))).toMatchObject([
      { ruleId: 'known-compromise', action: 'revoke_sessions' },
    ]);
  });

  it('an approved action is not proposed again in the same case: the identity is already contained', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    s.detect('alice', 'known_compromise', 0.95); // revoke_sessions, approved
    s.advance(MINUTE);
    // mfa-fatigue also wants revoke_sessions: already done in this case
    const events = ['m1', 'm2', 'm3'].flatMap((id) =>
      s.detect('alice', 'mfa_fatigue', 0.7, { detectionId: id }),
    );
    expect(proposals(events).map((p) => p.action)).not.toContain('revoke_sessions');
  });

  it('a rejected action is not proposed again within the cool-down, even with fresh evidence', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    s.advance(MINUTE);
    s.reject('alice', p!.actionId, 'ana');
    s.advance(59 * MINUTE - 1);
    expect(proposals(s.detect('alice', 'impossible_travel', 0.6))).toEqual([]);
  });

  it('after the cool-down, fresh evidence proposes the rejected action again', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    s.advance(MINUTE);
    s.reject('alice', p!.actionId, 'ana');
    s.advance(HOUR);
    const [again] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    expect(again).toMatchObject({ action: 'revoke_sessions', stage: 1, caseId: p!.caseId });
    expect(again!.actionId).not.toBe(p!.actionId);
  });

  it('after the cool-down, evidence that occurred before the rejection does not bring the action back', () => {
    const s = new Scenario({ catalogue: [{ id: 'alice', tier: 'development' }] });
    const [p] = proposals(s.detect('alice', 'impossible_travel', 0.6));
    s.advance(MINUTE);
    s.reject('alice', p!.actionId, 'ana');
    const rejectedAt = s.nowMs;
    s.advance(2 * HOUR);
    expect(
      proposals(s.detect('alice', 'impossible_travel', 0.6, { occurredAtMs: rejectedAt - 1000 })),
    ).toEqual([]);
  });
});

describe('catalogue as of event time', () => {
  it('an entry effective later does not apply to a decision made earlier', () => {
    const s = new Scenario({
      catalogue: [
        { id: 'alice', tier: 'development' },
        { id: 'alice', tier: 'development', breakGlass: true, at: iso(T0 + HOUR) },
      ],
    });
    expect(proposals(s.detect('alice', 'known_compromise', 0.95))).toMatchObject([
      { approval: { mode: 'auto' } },
    ]);
  });

  it('once effective, the later entry governs the decisions after it', () => {
    const s = new Scenario({
      catalogue: [
        { id: 'alice', tier: 'development' },
        { id: 'alice', tier: 'development', breakGlass: true, at: iso(T0 + HOUR) },
        { id: 'bob', tier: 'development' },
        { id: 'bob', tier: 'development', breakGlass: true, at: iso(T0 + HOUR) },
      ],
    });
    s.advance(HOUR);
    expect(proposals(s.detect('bob', 'known_compromise', 0.95))).toMatchObject([
      { approval: { mode: 'two-person' } },
    ]);
  });
});
