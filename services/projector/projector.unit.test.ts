import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { actionStream, identityStream } from '../../schemas/events.ts';
import {
  ALICE,
  appendScriptedHistory,
  at,
  CI_BOT,
  detection,
  ev,
  proposal,
} from '../../test/support/projector-kit.ts';
import { Projector } from './projector.ts';
import {
  actionCounts,
  getAction,
  getCase,
  getIdentity,
  listActions,
  listCases,
  queryAuditEvents,
  queryAuditIndex,
} from './queries.ts';
import { ActionView, CaseDetail, IdentityView } from './views.ts';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

function setup(path = ':memory:') {
  const store = new SqliteEventStore({ path: ':memory:' });
  const projector = new Projector({ store, path });
  cleanup.push(async () => {
    await projector.close();
    await store.close();
  });
  return { store, projector };
}

describe('Projector views from a scripted history', () => {
  it('detection → case → auto approval → executed → verified → benign → rolled back with residue', async () => {
    const { store, projector } = setup();
    await appendScriptedHistory(store);
    await projector.start();
    expect(projector.position).toBe(await store.headPosition());

    const c = getCase(projector, 'case-alice-1')!;
    expect(CaseDetail.parse(c)).toEqual(c);
    expect(c).toMatchObject({
      status: 'resolved',
      verdict: 'benign',
      resolvedBy: { kind: 'human', id: 'bob' },
      openedAt: at(0),
      resolvedAt: at(600),
      detectionIds: ['d-1'],
      actionIds: ['act-alice-1-1'],
      identityKey: 'okta:alice@example.com',
    });
    expect(c.detections.map((d) => [d.id, d.kind, d.caseId])).toEqual([
      ['d-1', 'known_compromise', 'case-alice-1'],
    ]);
    expect(c.timeline.map((t) => t.type)).toEqual([
      'DetectionReceived',
      'CaseOpened',
      'ActionProposed',
      'ActionApproved',
      'ExecutionClaimed',
      'ActionExecuted',
      'ActionVerified',
      'CaseResolved',
      'ActionRolledBack',
    ]);
    expect(c.timeline.at(-1)!.summary).toContain('residue: revoked sessions cannot be restored');

    const a = getAction(projector, 'act-alice-1-1')!;
    expect(ActionView.parse(a)).toEqual(a);
    expect(a).toMatchObject({
      status: 'rolled_back',
      verified: true,
      type: 'revoke_sessions',
      stage: 1,
      ruleId: 'known-compromise',
      policyVersion: '2026.11.1',
      approvalMode: 'auto',
      approvers: ['policy:known-compromise@2026.11.1'],
      argsDigest: 'sha256:act-alice-1-1',
      executedAt: at(2),
      verifiedAt: at(3),
      rolledBackAt: at(601),
      residue: ['revoked sessions cannot be restored; users sign in again'],
      execution: { provider: 'keycloak', idempotencyKey: 'act-alice-1-1', result: { sessionsRevoked: 3 } },
      rollback: { complete: false, restored: ['account state as before'] },
    });
    expect(a.approvals).toHaveLength(1);
    expect(a.approvals[0]!.final).toBe(true);

    const alice = getIdentity(projector, ALICE.provider, ALICE.id)!;
    expect(IdentityView.parse(alice)).toEqual(alice);
    expect(alice).toMatchObject({
      contained: false,
      containment: [],
      pendingApprovals: [],
      openCaseId: null,
      caseIds: ['case-alice-1'],
      detectionCount: 1,
    });
    expect(alice.residue).toEqual([
      {
        actionId: 'act-alice-1-1',
        type: 'revoke_sessions',
        caseId: 'case-alice-1',
        rolledBackAt: at(601),
        complete: false,
        residue: ['revoked sessions cannot be restored; users sign in again'],
      },
    ]);

    const ci = getIdentity(projector, CI_BOT.provider, CI_BOT.id)!;
    expect(ci.openCaseId).toBe('case-ci-1');
    expect(ci.pendingApprovals.map((p) => [p.actionId, p.approvalMode])).toEqual([
      ['act-ci-1-1', 'analyst'],
      ['act-ci-1-2', 'two-person'],
    ]);

    expect(listCases(projector, { status: 'open' }).items.map((x) => x.id)).toEqual([
      'case-carol-1',
      'case-ci-1',
    ]);
    expect(listActions(projector, { status: 'proposed' }).items.map((x) => x.id)).toEqual([
      'act-ci-1-2',
      'act-ci-1-1',
    ]);
    expect(listActions(projector, { status: 'rolled_back' }).items.map((x) => x.id)).toEqual([
      'act-alice-1-1',
    ]);
    expect(actionCounts(projector)).toMatchObject({ proposed: 2, rolled_back: 1, executed: 0 });
  });

  it('shows containment while an action is in effect, and verified as a flag on executed', async () => {
    const { store, projector } = setup();
    await projector.start();
    const A = identityStream(ALICE);
    const S = actionStream('act-x');
    const ref = { actionId: 'act-x', caseId: 'case-x', identity: ALICE };
    await store.append(
      A,
      [
        ev('det-x', 'DetectionReceived', A, at(0), { detection: detection('d-x', ALICE) }),
        ev('case-x-opened', 'CaseOpened', A, at(0), {
          caseId: 'case-x',
          identity: ALICE,
          detectionIds: ['d-x'],
        }),
        proposal({ actionId: 'act-x', caseId: 'case-x', identity: ALICE, detectionIds: ['d-x'] }),
        ev('act-x-approved-1', 'ActionApproved', A, at(1), {
          ...ref,
          argsDigest: 'sha256:act-x',
          by: { kind: 'policy', ruleId: 'r', policyId: 'p', policyVersion: 'v' },
          final: true,
        }),
      ],
      'no_stream',
    );
    await projector.waitFor(await store.headPosition());
    expect(getAction(projector, 'act-x')!.status).toBe('approved');
    expect(listActions(projector, { status: 'approved' }).items).toHaveLength(1);

    const r = await store.append(
      S,
      [
        ev('act-x-exec', 'ActionExecuted', S, at(2), {
          ...ref,
          action: 'revoke_sessions',
          provider: 'dry-run',
          idempotencyKey: 'act-x',
          result: {},
          priorState: {},
          reconciled: false,
        }),
        ev('act-x-verified', 'ActionVerified', S, at(3), {
          ...ref,
          probes: [{ probe: 'p', ok: true, detail: '' }],
        }),
      ],
      'no_stream',
    );
    await projector.waitFor(r.position);
    const a = getAction(projector, 'act-x')!;
    expect([a.status, a.verified]).toEqual(['executed', true]);
    expect(listActions(projector, { status: 'verified' }).items.map((x) => x.id)).toEqual(['act-x']);
    const v = getIdentity(projector, ALICE.provider, ALICE.id)!;
    expect(v.contained).toBe(true);
    expect(v.containment).toEqual([
      {
        actionId: 'act-x',
        type: 'revoke_sessions',
        caseId: 'case-x',
        executedAt: at(2),
        verified: true,
        status: 'executed',
      },
    ]);
  });

  it('tracks rejected, expired, failed, partial two-person approvals and failed rollbacks', async () => {
    const { store, projector } = setup();
    const B = identityStream(CI_BOT);
    const ref = (actionId: string) => ({ actionId, caseId: 'case-b', identity: CI_BOT });
    await store.append(
      B,
      [
        ev('case-b-opened', 'CaseOpened', B, at(0), { caseId: 'case-b', identity: CI_BOT, detectionIds: [] }),
        proposal({ actionId: 'a1', caseId: 'case-b', identity: CI_BOT, mode: 'analyst' }),
        proposal({
          actionId: 'a2',
          caseId: 'case-b',
          identity: CI_BOT,
          mode: 'analyst',
          action: 'revoke_tokens',
        }),
        proposal({
          actionId: 'a3',
          caseId: 'case-b',
          identity: CI_BOT,
          mode: 'two-person',
          action: 'rotate_credential',
        }),
        proposal({
          actionId: 'a4',
          caseId: 'case-b',
          identity: CI_BOT,
          mode: 'auto',
          action: 'force_step_up',
        }),
        proposal({ actionId: 'a5', caseId: 'case-b', identity: CI_BOT, mode: 'auto', action: 'quarantine' }),
        ev('a1-rej', 'ActionRejected', B, at(5), {
          ...ref('a1'),
          by: { kind: 'human', id: 'dana' },
          reason: 'known admin',
        }),
        ev('a2-exp', 'ActionExpired', B, at(6), { ...ref('a2'), expiredAt: at(6) }),
        ev('a3-ok-1', 'ActionApproved', B, at(7), {
          ...ref('a3'),
          argsDigest: 'sha256:a3',
          by: { kind: 'human', id: 'dana' },
          final: false,
        }),
      ],
      'any',
    );
    const fail = (id: string, phase: 'apply' | 'rollback') =>
      ev(`${id}-fail-${phase}`, 'ActionFailed', actionStream(id), at(9), {
        ...ref(id),
        action: 'force_step_up',
        provider: 'okta',
        error: { code: 'E403', message: 'forbidden', retriable: false },
        attempts: 3,
        phase,
      });
    await store.append(actionStream('a4'), [fail('a4', 'apply')], 'any');
    await store.append(
      actionStream('a5'),
      [
        ev('a5-exec', 'ActionExecuted', actionStream('a5'), at(8), {
          ...ref('a5'),
          action: 'quarantine',
          provider: 'okta',
          idempotencyKey: 'a5',
          result: {},
          priorState: {},
          reconciled: true,
        }),
        fail('a5', 'rollback'),
      ],
      'any',
    );
    await projector.start();
    const st = (id: string) => getAction(projector, id)!;
    expect(st('a1')).toMatchObject({
      status: 'rejected',
      rejection: { by: { id: 'dana' }, reason: 'known admin' },
    });
    expect(st('a2')).toMatchObject({ status: 'expired', expiredAt: at(6) });
    expect(st('a3')).toMatchObject({ status: 'proposed', approvers: ['dana'] });
    expect(st('a4')).toMatchObject({
      status: 'failed',
      failure: { phase: 'apply', code: 'E403', attempts: 3 },
    });
    expect(st('a5')).toMatchObject({
      status: 'executed',
      failure: { phase: 'rollback' },
      execution: { reconciled: true },
    });
    const v = getIdentity(projector, CI_BOT.provider, CI_BOT.id)!;
    expect(v.pendingApprovals.map((p) => [p.actionId, p.approvers])).toEqual([['a3', ['dana']]]);
    expect(v.containment.map((c) => c.actionId)).toEqual(['a5']);
  });

  it('indexes events for audit by identity, case, action, actor, rule, policy version, type and time', async () => {
    const { store, projector } = setup();
    await appendScriptedHistory(store);
    await projector.start();
    const ids = (f: Parameters<typeof queryAuditIndex>[1]) =>
      queryAuditIndex(projector, f, { limit: 1000 }).items.map((r) => r.eventId);

    expect(ids({ actionId: 'act-alice-1-1' })).toEqual([
      'act-alice-1-1-proposed',
      'act-alice-1-1-approved-1',
      'act-alice-1-1-claimed-1',
      'act-alice-1-1-executed',
      'act-alice-1-1-verified',
      'act-alice-1-1-rolled-back',
    ]);
    expect(ids({ actor: 'bob' })).toEqual(['case-alice-1-resolved']);
    expect(ids({ actor: 'policy:known-compromise@2026.11.1' })).toEqual([
      'act-alice-1-1-proposed',
      'act-alice-1-1-approved-1',
    ]);
    expect(ids({ ruleId: 'secret-exposed', type: 'ActionProposed' })).toEqual([
      'act-ci-1-1-proposed',
      'act-ci-1-2-proposed',
    ]);
    expect(ids({ identity: 'entra:carol' })).toEqual(['det-carol-d-3', 'case-carol-1-opened']);
    expect(ids({ caseId: 'case-alice-1' })).toHaveLength(9);
    expect(ids({ actionType: 'rotate_credential' })).toEqual(['act-ci-1-2-proposed']);
    expect(ids({ policyVersion: '2026.11.1', type: 'ActionRolledBack' })).toEqual([
      'act-alice-1-1-rolled-back',
    ]);
    expect(ids({ from: at(500), to: at(601) })).toEqual([
      'case-alice-1-resolved',
      'act-alice-1-1-rolled-back',
    ]);
    // Time bounds compare instants, not strings: +02:00 offsets are honoured.
    expect(ids({ from: '2026-03-01T12:10:00+02:00', to: '2026-03-01T12:10:01+02:00' })).toEqual([
      'case-alice-1-resolved',
      'act-alice-1-1-rolled-back',
    ]);

    const first = queryAuditIndex(projector, {}, { limit: 5 });
    expect(first.items).toHaveLength(5);
    const second = queryAuditIndex(projector, {}, { limit: 5, cursor: first.nextCursor! });
    expect(second.items[0]!.position).toBeGreaterThan(first.items[4]!.position);

    const withPayload = await queryAuditEvents(projector, store, { actor: 'bob' });
    expect(withPayload.items[0]).toMatchObject({
      type: 'CaseResolved',
      missingFromStore: false,
      data: { verdict: 'benign' },
    });
  });
});

describe('Projector checkpoints and rebuild', () => {
  it('rebuild() from scratch gives exactly the live views, table for table', async () => {
    const { store, projector } = setup();
    await projector.start(); // live from an empty store: every event is applied one at a time
    await appendScriptedHistory(store);
    await projector.waitFor(await store.headPosition());
    const live = projector.dump();
    expect(live.audit).toHaveLength(await store.headPosition());

    await projector.rebuild();
    expect(projector.live).toBe(true);
    expect(projector.dump()).toEqual(live);

    // and a brand-new projector catching up in pages agrees too
    const other = new Projector({ store, path: ':memory:', pageSize: 3 });
    cleanup.push(() => other.close());
    await other.start();
    expect(other.dump()).toEqual(live);
  });

  it('re-delivering an already-applied position changes nothing', async () => {
    const { store, projector } = setup();
    await appendScriptedHistory(store);
    await projector.start();
    const before = projector.dump();
    const all = await store.readAll();
    expect(projector.applyEvents(all)).toEqual([]);
    expect(projector.applyEvents([all[3]!, all[0]!])).toEqual([]);
    expect(projector.dump()).toEqual(before);
  });

  it('keeps its checkpoint in its own file across restarts and resumes where it stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-proj-'));
    const store = new SqliteEventStore({ path: join(dir, 'events.db') });
    cleanup.push(() => store.close());
    await appendScriptedHistory(store);
    const p1 = new Projector({ store, path: join(dir, 'views.db') });
    await p1.start();
    const head = await store.headPosition();
    expect(p1.position).toBe(head);
    const dump = p1.dump();
    await p1.close();

    const A = identityStream(ALICE);
    await store.append(
      A,
      [ev('det-alice-d-9', 'DetectionReceived', A, at(900), { detection: detection('d-9', ALICE) })],
      'any',
    );
    const p2 = new Projector({ store, path: join(dir, 'views.db') });
    cleanup.push(() => p2.close());
    expect(p2.position).toBe(head);
    expect(p2.dump()).toEqual(dump);
    await p2.start();
    expect(p2.position).toBe(head + 1);
    expect(getIdentity(p2, ALICE.provider, ALICE.id)!.detectionCount).toBe(2);
  });

  it('waitFor resolves when the position is applied and rejects after its timeout', async () => {
    const { store, projector } = setup();
    await projector.start();
    const A = identityStream(ALICE);
    const waiting = projector.waitFor(1);
    await store.append(
      A,
      [ev('det-1', 'DetectionReceived', A, at(0), { detection: detection('d-1', ALICE) })],
      'any',
    );
    await expect(waiting).resolves.toBeUndefined();
    await expect(projector.waitFor(99, 50)).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      retriable: true,
    });
  });

  it('skips an event it cannot apply (logged, counted) instead of stalling every view', async () => {
    const { store, projector } = setup();
    const A = identityStream(ALICE);
    await store.append(
      A,
      [
        ev('bad', 'CaseOpened', A, at(0), { caseId: 'c', identity: null, detectionIds: [] } as never),
        ev('det-1', 'DetectionReceived', A, at(0), { detection: detection('d-1', ALICE) }),
      ],
      'any',
    );
    await projector.start();
    expect(projector.position).toBe(2);
    expect(projector.errorCount).toBe(1);
    expect(getIdentity(projector, ALICE.provider, ALICE.id)!.detectionCount).toBe(1);
    expect(queryAuditIndex(projector, {}).items.map((r) => r.eventId)).toEqual(['bad', 'det-1']);
  });
});
