import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../schemas/events.ts';
import { foldAction, slackBlocks, webhookPayload } from './facts.ts';

const identity = { provider: 'aws', id: 'ci-deployer', type: 'service_account' as const };
let position = 0;
function ev(type: string, data: Record<string, unknown>): RecordedEvent {
  position += 1;
  return {
    id: `e${position}`,
    type,
    stream: 'identity-aws-ci-deployer',
    data,
    occurredAt: '2026-12-06T03:00:00.000Z',
    recordedAt: '2026-12-06T03:00:00.000Z',
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    revision: position - 1,
    position,
  } as unknown as RecordedEvent;
}

const ref = { actionId: 'act-1', caseId: 'case-1', identity };
const history = [
  ev('DetectionReceived', {
    detection: {
      id: 'd1',
      source: 'guardduty',
      kind: 'privilege_escalation',
      confidence: 0.93,
      severity: 'high',
      identity,
      occurredAt: '2026-12-06T02:59:00.000Z',
      title: 'AttachUserPolicy AdministratorAccess',
    },
  }),
  ev('ActionProposed', {
    ...ref,
    action: 'quarantine',
    stage: 1,
    ruleId: 'privilege-escalation',
    policyId: 'default',
    policyVersion: '7',
    detectionIds: ['d1'],
    args: { policyArn: 'arn:aws:iam::aws:policy/AWSDenyAll' },
    argsDigest: 'sha256:abcdef0123456789abcdef',
    blastRadius: {
      consumers: 3,
      tier: 'production',
      shared: true,
      thirdParty: false,
      reversible: true,
      budgetUsed: 0,
      budgetLimit: -1,
      budgetKeys: [],
    },
    approval: {
      mode: 'two-person',
      ttlSeconds: 3600,
      expiresAt: '2026-12-06T04:00:00.000Z',
      reason: 'rule requires two people',
    },
    guards: [{ guard: 'shared', effect: 'analyst', reason: '3 consumers' }],
    rollback: { complete: false, notes: ['sessions issued before quarantine stay valid until expiry'] },
  }),
];

describe('approval facts folded from events', () => {
  it('carries the queue’s facts: identity, rule, stage, arguments, confidence, evidence, blast radius, residue, expiry', () => {
    const { facts, outcome } = foldAction(history, 'act-1', 'https://tq.example/')!;
    expect(facts).toMatchObject({
      action: 'quarantine',
      ruleId: 'privilege-escalation',
      stage: 1,
      confidence: 0.93,
      approvalMode: 'two-person',
      expiresAt: '2026-12-06T04:00:00.000Z',
      rollback: { complete: false, residue: ['sessions issued before quarantine stay valid until expiry'] },
      blastRadius: { tier: 'production', consumers: 3, shared: true },
      consoleUrl: 'https://tq.example/cases/case-1',
    });
    expect(facts.evidence).toEqual([
      {
        source: 'guardduty',
        kind: 'privilege_escalation',
        confidence: 0.93,
        severity: 'high',
        title: 'AttachUserPolicy AdministratorAccess',
      },
    ]);
    expect(outcome).toEqual({ kind: 'pending', approvers: [] });
    const blocks = JSON.stringify(slackBlocks(facts, outcome));
    for (const s of [
      'aws:ci-deployer',
      'privilege-escalation',
      'AWSDenyAll',
      '0.93',
      'residue',
      'tq_approve',
      'tq_reject',
    ])
      expect(blocks).toContain(s);
  });

  it('follows the decisions: a first of two approvals keeps the buttons; expiry removes them', () => {
    const half = [
      ...history,
      ev('ActionApproved', {
        ...ref,
        argsDigest: 'sha256:abcdef0123456789abcdef',
        by: { kind: 'human', id: 'ann', role: 'analyst' },
        final: false,
      }),
    ];
    const s1 = foldAction(half, 'act-1')!;
    expect(s1.outcome).toEqual({ kind: 'pending', approvers: ['ann'] });
    expect(JSON.stringify(slackBlocks(s1.facts, s1.outcome))).toContain('tq_approve');

    const expired = [...half, ev('ActionExpired', { ...ref, expiredAt: '2026-12-06T04:00:00.000Z' })];
    const s2 = foldAction(expired, 'act-1')!;
    expect(s2.outcome).toEqual({ kind: 'expired', at: '2026-12-06T04:00:00.000Z' });
    const blocks = JSON.stringify(slackBlocks(s2.facts, s2.outcome));
    expect(blocks).toContain('Expired at 2026-12-06T04:00:00.000Z');
    expect(blocks).not.toContain('tq_approve');
    expect(webhookPayload(s2.facts, s2.outcome, 'approval.updated')).toMatchObject({
      outcome: { kind: 'expired' },
      actions: [],
    });
  });

  it('shows what the acting provider can undo, before approval', () => {
    const proposed = history[1]!;
    const withProvider = [
      history[0]!,
      {
        ...proposed,
        data: {
          ...(proposed.data as Record<string, unknown>),
          reversibility: {
            provider: 'aws',
            type: 'aws',
            reversibility: 'irreversible',
            residue: ['removing the deny would revive the stolen sessions'],
          },
        },
      } as RecordedEvent,
    ];
    const { facts, outcome } = foldAction(withProvider, 'act-1')!;
    expect(facts.provider).toMatchObject({ type: 'aws', reversibility: 'irreversible' });
    const blocks = JSON.stringify(slackBlocks(facts, outcome));
    expect(blocks).toContain('irreversible on aws');
    expect(blocks).toContain('removing the deny would revive the stolen sessions');
    expect(foldAction(history, 'act-1')!.facts.provider).toBeNull();
  });

  it('ignores other actions and says nothing about an action never proposed', () => {
    expect(foldAction(history, 'act-2')).toBeUndefined();
  });
});
