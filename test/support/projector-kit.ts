/**
 * Test support for the projector and API tests (not used by production code): event builders, a
 * scripted history, and fake gateways that append REAL events to a real store, so the projector
 * and the API are exercised end to end through the store.
 */
import { ApprovalError, NotFoundError } from '../../platform/errors.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import type { IdentityRef, NormalizedDetection } from '../../schemas/detection.ts';
import {
  actionStream,
  CONTROL_STREAM,
  type EventDataOf,
  type EventType,
  identityStream,
  type NewEvent,
  SCHEMA_VERSION,
} from '../../schemas/events.ts';
import type {
  AutomationGateway,
  DeciderGateway,
  IngestGateway,
  IngestReceipt,
} from '../../schemas/gateways.ts';
import type { DeciderInput } from '../../services/decider/core/types.ts';

export const T0 = Date.parse('2026-03-01T10:00:00.000Z');
export const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();

export function ev<T extends EventType>(
  id: string,
  type: T,
  stream: string,
  occurredAt: string,
  data: EventDataOf<T>,
  causationId: string | null = null,
  correlationId: string | null = null,
): NewEvent {
  return {
    id,
    type,
    stream,
    occurredAt,
    causationId,
    correlationId,
    schemaVersion: SCHEMA_VERSION,
    data,
  } as NewEvent;
}

export const ALICE: IdentityRef = { provider: 'okta', id: 'alice@example.com', type: 'human' };
export const CI_BOT: IdentityRef = { provider: 'github', id: 'ci-bot', type: 'service_account' };
export const CAROL: IdentityRef = { provider: 'entra', id: 'carol', type: 'human' };

export function detection(
  id: string,
  identity: IdentityRef,
  overrides: Partial<NormalizedDetection> = {},
): NormalizedDetection {
  return {
    id,
    source: 'splunk',
    kind: 'known_compromise',
    confidence: 0.95,
    severity: 'high',
    identity,
    occurredAt: at(0),
    evidence: { ip: '203.0.113.7' },
    ...overrides,
  };
}

const BLAST = {
  consumers: 1,
  tier: 'production',
  shared: false,
  thirdParty: false,
  reversible: false,
  budgetUsed: 0,
  budgetLimit: 50,
  budgetKeys: ['*:provider:okta'],
};

export function proposal(o: {
  actionId: string;
  caseId: string;
  identity: IdentityRef;
  action?: EventDataOf<'ActionProposed'>['action'];
  mode?: EventDataOf<'ActionProposed'>['approval']['mode'];
  ruleId?: string;
  detectionIds?: string[];
  atSec?: number;
  args?: Record<string, unknown>;
  guards?: EventDataOf<'ActionProposed'>['guards'];
}): NewEvent {
  const atSec = o.atSec ?? 1;
  return ev(
    `${o.actionId}-proposed`,
    'ActionProposed',
    identityStream(o.identity),
    at(atSec),
    {
      actionId: o.actionId,
      caseId: o.caseId,
      identity: o.identity,
      action: o.action ?? 'revoke_sessions',
      stage: 1,
      ruleId: o.ruleId ?? 'known-compromise',
      policyId: 'default',
      policyVersion: '2026.11.1',
      detectionIds: o.detectionIds ?? [],
      args: o.args ?? {},
      argsDigest: `sha256:${o.actionId}`,
      blastRadius: BLAST,
      approval: {
        mode: o.mode ?? 'auto',
        ttlSeconds: 4 * 3600,
        expiresAt: at(atSec + 4 * 3600),
        reason:
          o.mode && o.mode !== 'auto' ? `policy requires ${o.mode} approval` : 'pre-authorised by policy',
      },
      guards: o.guards ?? [],
      rollback: { complete: false, notes: ['revoked sessions cannot be restored; users sign in again'] },
    },
    null,
    o.caseId,
  );
}

/**
 * The scripted history of issue 6: detection → case → proposal → automatic approval → executed →
 * verified → case resolved benign → rolled back with residue (alice); plus a case with an analyst
 * approval and a two-person approval pending (ci-bot), and an open case with no action (carol).
 */
export async function appendScriptedHistory(store: EventStore): Promise<void> {
  const A = identityStream(ALICE);
  const d1 = detection('d-1', ALICE);
  await store.append(
    A,
    [
      ev('det-alice-d-1', 'DetectionReceived', A, at(0), { detection: d1 }),
      ev(
        'case-alice-1-opened',
        'CaseOpened',
        A,
        at(0),
        { caseId: 'case-alice-1', identity: ALICE, detectionIds: ['d-1'] },
        'det-alice-d-1',
        'case-alice-1',
      ),
      proposal({
        actionId: 'act-alice-1-1',
        caseId: 'case-alice-1',
        identity: ALICE,
        detectionIds: ['d-1'],
        atSec: 0,
        guards: [],
      }),
      ev(
        'act-alice-1-1-approved-1',
        'ActionApproved',
        A,
        at(0),
        {
          actionId: 'act-alice-1-1',
          caseId: 'case-alice-1',
          identity: ALICE,
          argsDigest: 'sha256:act-alice-1-1',
          by: { kind: 'policy', ruleId: 'known-compromise', policyId: 'default', policyVersion: '2026.11.1' },
          final: true,
        },
        'act-alice-1-1-proposed',
        'case-alice-1',
      ),
    ],
    'any',
  );
  const S = actionStream('act-alice-1-1');
  const ref = { actionId: 'act-alice-1-1', caseId: 'case-alice-1', identity: ALICE };
  await store.append(
    S,
    [
      ev(
        'act-alice-1-1-claimed-1',
        'ExecutionClaimed',
        S,
        at(1),
        {
          ...ref,
          action: 'revoke_sessions',
          executor: 'executor-1',
          attempt: 1,
          priorState: { sessions: 3, enabled: true },
        },
        'act-alice-1-1-approved-1',
        'case-alice-1',
      ),
      ev(
        'act-alice-1-1-executed',
        'ActionExecuted',
        S,
        at(2),
        {
          ...ref,
          action: 'revoke_sessions',
          provider: 'keycloak',
          idempotencyKey: 'act-alice-1-1',
          result: { sessionsRevoked: 3 },
          priorState: { sessions: 3, enabled: true },
          reconciled: false,
        },
        'act-alice-1-1-claimed-1',
        'case-alice-1',
      ),
      ev(
        'act-alice-1-1-verified',
        'ActionVerified',
        S,
        at(3),
        { ...ref, probes: [{ probe: 'sessions-gone', ok: true, detail: '0 active sessions' }] },
        'act-alice-1-1-executed',
        'case-alice-1',
      ),
    ],
    'any',
  );
  await store.append(
    A,
    [
      ev(
        'case-alice-1-resolved',
        'CaseResolved',
        A,
        at(600),
        {
          caseId: 'case-alice-1',
          identity: ALICE,
          verdict: 'benign',
          by: { kind: 'human', id: 'bob', role: 'analyst' },
        },
        null,
        'case-alice-1',
      ),
    ],
    'any',
  );
  await store.append(
    S,
    [
      ev(
        'act-alice-1-1-rolled-back',
        'ActionRolledBack',
        S,
        at(601),
        {
          ...ref,
          action: 'revoke_sessions',
          restored: ['account state as before'],
          residue: ['revoked sessions cannot be restored; users sign in again'],
          complete: false,
        },
        'case-alice-1-resolved',
        'case-alice-1',
      ),
    ],
    'any',
  );

  const B = identityStream(CI_BOT);
  await store.append(
    B,
    [
      ev('det-ci-d-2', 'DetectionReceived', B, at(10), {
        detection: detection('d-2', CI_BOT, {
          kind: 'secret_exposure',
          source: 'github',
          occurredAt: at(10),
        }),
      }),
      ev(
        'case-ci-1-opened',
        'CaseOpened',
        B,
        at(10),
        { caseId: 'case-ci-1', identity: CI_BOT, detectionIds: ['d-2'] },
        'det-ci-d-2',
        'case-ci-1',
      ),
      proposal({
        actionId: 'act-ci-1-1',
        caseId: 'case-ci-1',
        identity: CI_BOT,
        action: 'disable_service_account',
        mode: 'analyst',
        ruleId: 'secret-exposed',
        detectionIds: ['d-2'],
        atSec: 10,
        guards: [
          { guard: 'staged_containment', effect: 'approval auto -> analyst', reason: 'production identity' },
        ],
      }),
      proposal({
        actionId: 'act-ci-1-2',
        caseId: 'case-ci-1',
        identity: CI_BOT,
        action: 'rotate_credential',
        mode: 'two-person',
        ruleId: 'secret-exposed',
        detectionIds: ['d-2'],
        atSec: 10,
      }),
    ],
    'any',
  );

  const C = identityStream(CAROL);
  await store.append(
    C,
    [
      ev('det-carol-d-3', 'DetectionReceived', C, at(20), {
        detection: detection('d-3', CAROL, {
          kind: 'impossible_travel',
          confidence: 0.6,
          occurredAt: at(20),
        }),
      }),
      ev(
        'case-carol-1-opened',
        'CaseOpened',
        C,
        at(20),
        { caseId: 'case-carol-1', identity: CAROL, detectionIds: ['d-3'] },
        'det-carol-d-3',
        'case-carol-1',
      ),
    ],
    'any',
  );
}

// ------------------------------------------------------------------ fake gateways

interface FakeAction {
  actionId: string;
  caseId: string;
  mode: string;
  status: 'pending' | 'approved' | 'rejected' | 'expired';
  approvers: string[];
  argsDigest: string;
  proposedBy: string | null;
  proposalId: string;
  action: string;
}

/**
 * A tiny decider: folds the identity stream, validates the human command the way the real core
 * does (pending, digest, distinct approvers, open case) and appends the resulting events.
 */
export class FakeDecider implements DeciderGateway {
  readonly inputs: DeciderInput[] = [];
  private readonly store: EventStore;
  constructor(store: EventStore) {
    this.store = store;
  }

  private async state(identity: IdentityRef) {
    const events = await this.store.readStream(identityStream(identity));
    const actions = new Map<string, FakeAction>();
    let openCase: string | null = null;
    let cases = 0;
    for (const e of events) {
      if (e.type === 'CaseOpened') {
        openCase = e.data.caseId;
        cases += 1;
      } else if (e.type === 'CaseResolved' && openCase === e.data.caseId) openCase = null;
      else if (e.type === 'ActionProposed') {
        actions.set(e.data.actionId, {
          actionId: e.data.actionId,
          caseId: e.data.caseId,
          mode: e.data.approval.mode,
          status: 'pending',
          approvers: [],
          argsDigest: e.data.argsDigest,
          proposedBy: e.data.ruleId === 'manual' ? String(e.data.args.proposedBy) : null,
          proposalId: e.id,
          action: e.data.action,
        });
      } else if (e.type === 'ActionApproved') {
        const a = actions.get(e.data.actionId);
        if (a) {
          if (e.data.by.kind === 'human') a.approvers.push(e.data.by.id);
          if (e.data.final) a.status = 'approved';
        }
      } else if (e.type === 'ActionRejected' || e.type === 'ActionExpired') {
        const a = actions.get(e.data.actionId);
        if (a) a.status = e.type === 'ActionRejected' ? 'rejected' : 'expired';
      }
    }
    return { actions, openCase, cases, revision: events.length - 1 };
  }

  async submit(input: DeciderInput): Promise<{ events: NewEvent[] }> {
    this.inputs.push(input);
    if (input.type === 'detection' || input.type === 'tick') return { events: [] };
    const identity = input.identity;
    const stream = identityStream(identity);
    const st = await this.state(identity);
    const events: NewEvent[] = [];
    if (input.type === 'approve' || input.type === 'reject') {
      const a = st.actions.get(input.actionId);
      if (!a || a.caseId !== st.openCase) throw new NotFoundError('open action', input.actionId);
      if (a.status !== 'pending') throw new ApprovalError(`action ${a.actionId} is ${a.status}, not pending`);
      const by = {
        kind: 'human' as const,
        id: input.by.id,
        ...(input.by.role ? { role: input.by.role } : {}),
      };
      const ref = { actionId: a.actionId, caseId: a.caseId, identity };
      if (input.type === 'approve') {
        if (input.argsDigest !== undefined && input.argsDigest !== a.argsDigest) {
          throw new ApprovalError(
            `approval digest ${input.argsDigest} does not match the proposal's ${a.argsDigest}`,
          );
        }
        if (a.proposedBy === input.by.id)
          throw new ApprovalError(`${input.by.id} proposed ${a.actionId} and cannot approve it`);
        if (a.approvers.includes(input.by.id))
          throw new ApprovalError(`${input.by.id} already approved ${a.actionId}`);
        const final = a.mode !== 'two-person' || a.approvers.length + 1 >= 2;
        events.push(
          ev(
            `${a.actionId}-approved-${a.approvers.length + 1}`,
            'ActionApproved',
            stream,
            input.at,
            { ...ref, argsDigest: a.argsDigest, by, final },
            a.proposalId,
            a.caseId,
          ),
        );
      } else {
        events.push(
          ev(
            `${a.actionId}-rejected`,
            'ActionRejected',
            stream,
            input.at,
            { ...ref, by, reason: input.reason },
            a.proposalId,
            a.caseId,
          ),
        );
      }
    } else if (input.type === 'verdict') {
      if (st.openCase !== input.caseId) throw new NotFoundError('open case', input.caseId);
      const by = {
        kind: 'human' as const,
        id: input.by.id,
        ...(input.by.role ? { role: input.by.role } : {}),
      };
      events.push(
        ev(
          `${input.caseId}-resolved`,
          'CaseResolved',
          stream,
          input.at,
          { caseId: input.caseId, identity, verdict: input.verdict, by },
          null,
          input.caseId,
        ),
      );
      if (input.verdict === 'benign') {
        for (const a of st.actions.values()) {
          if (a.caseId === input.caseId && a.status === 'pending') {
            events.push(
              ev(
                `${a.actionId}-rejected`,
                'ActionRejected',
                stream,
                input.at,
                { actionId: a.actionId, caseId: a.caseId, identity, by, reason: 'case resolved benign' },
                `${input.caseId}-resolved`,
                input.caseId,
              ),
            );
          }
        }
      }
    } else if (input.type === 'propose') {
      let caseId = st.openCase;
      const n = st.cases + (caseId ? 0 : 1);
      const tag = identity.id.replace(/[^a-z0-9]/gi, '').slice(0, 12);
      if (!caseId) {
        caseId = `case-${tag}-${n}`;
        events.push(
          ev(
            `${caseId}-opened`,
            'CaseOpened',
            stream,
            input.at,
            { caseId, identity, detectionIds: [] },
            null,
            caseId,
          ),
        );
      }
      const existing = [...st.actions.values()].filter((a) => a.caseId === caseId);
      if (
        existing.some((a) => a.action === input.action && (a.status === 'pending' || a.status === 'approved'))
      ) {
        throw new ApprovalError(`${input.action} is already pending or approved in case ${caseId}`);
      }
      const actionId = `act-${tag}-${n}-${existing.length + 1}`;
      const p = proposal({
        actionId,
        caseId,
        identity,
        action: input.action,
        mode: 'analyst',
        ruleId: 'manual',
        args: { ...(input.args ?? {}), proposedBy: input.by.id, reason: input.reason },
      });
      events.push({ ...p, occurredAt: input.at });
    }
    if (events.length > 0)
      await this.store.append(stream, events, st.revision < 0 ? 'no_stream' : st.revision);
    return { events };
  }
}

/** Ingest: records DetectionReceived on the identity's stream, once per source+id. */
export class FakeIngest implements IngestGateway {
  private readonly store: EventStore;
  constructor(store: EventStore) {
    this.store = store;
  }
  async accept(detections: readonly NormalizedDetection[]): Promise<IngestReceipt[]> {
    const receipts: IngestReceipt[] = [];
    for (const d of detections) {
      const stream = identityStream(d.identity);
      const id = `det-${d.identity.provider}-${d.identity.id}-${d.source}:${d.id}`;
      const existing = await this.store.readStream(stream);
      if (existing.some((e) => e.id === id)) {
        receipts.push({ id: d.id, source: d.source, status: 'duplicate', eventId: id });
        continue;
      }
      await this.store.append(
        stream,
        [ev(id, 'DetectionReceived', stream, new Date().toISOString(), { detection: d })],
        'any',
      );
      receipts.push({ id: d.id, source: d.source, status: 'accepted', eventId: id });
    }
    return receipts;
  }
}

export class FakeAutomation implements AutomationGateway {
  private readonly store: EventStore;
  private state = false;
  private n = 0;
  constructor(store: EventStore) {
    this.store = store;
  }
  private async record(
    type: 'AutomationPaused' | 'AutomationResumed',
    by: string,
    reason: string,
  ): Promise<NewEvent> {
    this.n += 1;
    const e = ev(`control-${Date.now()}-${this.n}`, type, CONTROL_STREAM, new Date().toISOString(), {
      by: { kind: 'human', id: by },
      reason,
    });
    await this.store.append(CONTROL_STREAM, [e], 'any');
    this.state = type === 'AutomationPaused';
    return e;
  }
  pause(by: string, reason: string): Promise<NewEvent> {
    return this.record('AutomationPaused', by, reason);
  }
  async resolveStorm(stormId: string, ruleId: string, by: string, comment?: string): Promise<NewEvent> {
    this.n += 1;
    const e = ev(`${stormId}-resolved-${this.n}`, 'StormResolved', CONTROL_STREAM, new Date().toISOString(), {
      stormId,
      ruleId,
      reason: 'analyst',
      by: { kind: 'human', id: by },
      ...(comment ? { comment } : {}),
    });
    await this.store.append(CONTROL_STREAM, [e], 'any');
    return e;
  }
  resume(by: string, reason: string): Promise<NewEvent> {
    return this.record('AutomationResumed', by, reason);
  }
  paused(): boolean {
    return this.state;
  }
}
