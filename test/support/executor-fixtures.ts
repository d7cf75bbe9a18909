/**
 * Test support for the executor: approved actions in the exact shape the decider produces
 * (ActionProposed + a final ActionApproved bound to the proposal's digest), verdicts, outcome tallies,
 * a provider journal that survives SIGKILL, and Keycloak admin-event counting.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { digestOf } from '../../platform/digest.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import {
  type ActionType,
  actionStream,
  identityStream,
  type NewEvent,
  type RecordedEvent,
  SCHEMA_VERSION,
} from '../../schemas/events.ts';
import type {
  ApplyResult,
  IdentityProvider,
  PriorState,
  Probe,
  ProviderAction,
  RevertResult,
} from '../../services/executor/providers/port.ts';

export interface ApprovedSpec {
  identity: IdentityRef;
  action: ActionType;
  actionId: string;
  caseId: string;
  args?: Record<string, unknown>;
  /** Decision time (default now). */
  at?: string;
  /** The proposal's rollback notes (what the decider already knows cannot be restored). */
  rollbackNotes?: string[];
  /** Append a final approval (default true). */
  approved?: boolean;
}

function envelope(
  stream: string,
  at: string,
  e: Omit<NewEvent, 'stream' | 'occurredAt' | 'schemaVersion'>,
): NewEvent {
  return { ...e, stream, occurredAt: at, schemaVersion: SCHEMA_VERSION } as NewEvent;
}

/** CaseOpened (first action of a case), ActionProposed and ActionApproved, as decide() emits them. */
export function approvedActionEvents(spec: ApprovedSpec, openCase = true): NewEvent[] {
  const at = spec.at ?? new Date().toISOString();
  const stream = identityStream(spec.identity);
  const args = spec.args ?? {};
  const argsDigest = digestOf({
    actionId: spec.actionId,
    action: spec.action,
    identity: { provider: spec.identity.provider, id: spec.identity.id },
    args,
    stage: 1,
    ruleId: 'test',
    policyVersion: 'test',
  });
  const ref = { actionId: spec.actionId, caseId: spec.caseId, identity: spec.identity };
  const out: NewEvent[] = [];
  if (openCase) {
    out.push(
      envelope(stream, at, {
        id: `${spec.caseId}-opened`,
        type: 'CaseOpened',
        causationId: null,
        correlationId: spec.caseId,
        data: { caseId: spec.caseId, identity: spec.identity, detectionIds: [] },
      }),
    );
  }
  out.push(
    envelope(stream, at, {
      id: `${spec.actionId}-proposed`,
      type: 'ActionProposed',
      causationId: null,
      correlationId: spec.caseId,
      data: {
        ...ref,
        action: spec.action,
        stage: 1,
        ruleId: 'test',
        policyId: 'test',
        policyVersion: 'test',
        detectionIds: [],
        args,
        argsDigest,
        blastRadius: {
          consumers: 1,
          tier: 'production',
          shared: false,
          thirdParty: false,
          reversible: (spec.rollbackNotes ?? []).length === 0,
          budgetUsed: 0,
          budgetLimit: -1,
          budgetKeys: [],
        },
        approval: {
          mode: 'auto',
          ttlSeconds: 3600,
          expiresAt: new Date(Date.parse(at) + 3_600_000).toISOString(),
          reason: 'pre-authorised by policy',
        },
        guards: [],
        rollback: { complete: (spec.rollbackNotes ?? []).length === 0, notes: spec.rollbackNotes ?? [] },
      },
    }),
  );
  if (spec.approved !== false) {
    out.push(
      envelope(stream, at, {
        id: `${spec.actionId}-approved-1`,
        type: 'ActionApproved',
        causationId: `${spec.actionId}-proposed`,
        correlationId: spec.caseId,
        data: {
          ...ref,
          argsDigest,
          by: { kind: 'policy', ruleId: 'test', policyId: 'test', policyVersion: 'test' },
          final: true,
        },
      }),
    );
  }
  return out;
}

/** Appends approved actions; actions sharing a caseId share one CaseOpened. */
export async function appendApproved(store: EventStore, specs: readonly ApprovedSpec[]): Promise<void> {
  const opened = new Set<string>();
  for (const spec of specs) {
    const events = approvedActionEvents(spec, !opened.has(spec.caseId));
    opened.add(spec.caseId);
    await store.append(identityStream(spec.identity), events, 'any');
  }
}

export function verdictEvent(
  identity: IdentityRef,
  caseId: string,
  verdict: 'benign' | 'malicious' = 'benign',
): NewEvent {
  return envelope(identityStream(identity), new Date().toISOString(), {
    id: `${caseId}-resolved`,
    type: 'CaseResolved',
    causationId: null,
    correlationId: caseId,
    data: { caseId, identity, verdict, by: { kind: 'human', id: 'analyst-ana' } },
  });
}

export async function resolveCase(
  store: EventStore,
  identity: IdentityRef,
  caseId: string,
  verdict: 'benign' | 'malicious' = 'benign',
): Promise<void> {
  await store.append(identityStream(identity), [verdictEvent(identity, caseId, verdict)], 'any');
}

export interface Outcome {
  claims: number;
  executed: number;
  reconciled: number;
  verified: number;
  failed: RecordedEvent<'ActionFailed'>[];
  rolledBack: RecordedEvent<'ActionRolledBack'>[];
  events: RecordedEvent[];
}

export async function outcomeOf(store: EventStore, actionId: string): Promise<Outcome> {
  const events = await store.readStream(actionStream(actionId));
  return {
    claims: events.filter((e) => e.type === 'ExecutionClaimed').length,
    executed: events.filter((e) => e.type === 'ActionExecuted').length,
    reconciled: events.filter((e) => e.type === 'ActionExecuted' && e.data.reconciled).length,
    verified: events.filter((e) => e.type === 'ActionVerified').length,
    failed: events.filter((e): e is RecordedEvent<'ActionFailed'> => e.type === 'ActionFailed'),
    rolledBack: events.filter((e): e is RecordedEvent<'ActionRolledBack'> => e.type === 'ActionRolledBack'),
    events,
  };
}

/** Whether an action has reached an outcome: executed (and verified or verify-failed), failed, or rolled back. */
export function settled(o: Outcome, needsRollback = false): boolean {
  if (needsRollback && o.executed > 0)
    return o.rolledBack.length > 0 || o.failed.some((f) => f.data.phase === 'rollback');
  if (o.failed.some((f) => f.data.phase === 'apply')) return true;
  return o.executed > 0 && (o.verified > 0 || o.failed.some((f) => f.data.phase === 'verify'));
}

export async function waitFor(
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  pollMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

// ---------------------------------------------------------------------------- provider journal

export interface JournalLine {
  phase: 'capture' | 'apply-start' | 'apply-end' | 'isApplied' | 'verify' | 'revert-start' | 'revert-end';
  actionId: string;
  pid: number;
  executor: string;
  at: number;
  applied?: boolean;
}

/**
 * Wraps a provider and appends one JSON line per call phase to a file, synchronously, before and after
 * the effectful calls: what a process did before it was SIGKILLed stays on disk. `hooks` run at the
 * same points (the crash tests use them to kill the process at a chosen point).
 */
export class JournalingProvider implements IdentityProvider {
  readonly name: string;
  private readonly inner: IdentityProvider;
  private readonly path: string;
  private readonly executor: string;
  private readonly hook: ((point: JournalLine['phase'], a: ProviderAction) => void) | undefined;

  constructor(
    inner: IdentityProvider,
    path: string,
    executor: string,
    hook?: (point: JournalLine['phase'], a: ProviderAction) => void,
  ) {
    this.inner = inner;
    this.name = inner.name;
    this.path = path;
    this.executor = executor;
    this.hook = hook;
  }

  private note(phase: JournalLine['phase'], a: ProviderAction, extra: Partial<JournalLine> = {}): void {
    const line: JournalLine = {
      phase,
      actionId: a.actionId,
      pid: process.pid,
      executor: this.executor,
      at: Date.now(),
      ...extra,
    };
    appendFileSync(this.path, `${JSON.stringify(line)}\n`);
    this.hook?.(phase, a);
  }

  supports(action: ActionType): boolean {
    return this.inner.supports(action);
  }
  async capture(a: ProviderAction): Promise<PriorState> {
    const p = await this.inner.capture(a);
    this.note('capture', a);
    return p;
  }
  async apply(a: ProviderAction, prior: PriorState): Promise<ApplyResult> {
    this.note('apply-start', a);
    const r = await this.inner.apply(a, prior);
    this.note('apply-end', a);
    return r;
  }
  async isApplied(a: ProviderAction, prior: PriorState): Promise<boolean> {
    const r = await this.inner.isApplied(a, prior);
    this.note('isApplied', a, { applied: r });
    return r;
  }
  async verify(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<Probe[]> {
    const r = await this.inner.verify(a, prior, result);
    this.note('verify', a);
    return r;
  }
  async revert(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<RevertResult> {
    this.note('revert-start', a);
    const r = await this.inner.revert(a, prior, result);
    this.note('revert-end', a);
    return r;
  }
}

export function readJournal(path: string): JournalLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as JournalLine];
      } catch {
        return []; // a line cut by SIGKILL mid-write
      }
    });
}

// ---------------------------------------------------------------------------- Keycloak admin events

export interface AdminEvent {
  time: number;
  operationType: string;
  resourceType: string;
  resourcePath: string;
  representation?: string;
}

type AdminCall = <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>;

/** Turns on admin events with representations for a realm: Keycloak's own record of every change. */
export async function enableAdminEvents(admin: AdminCall, realm: string): Promise<void> {
  await admin('PUT', `/realms/${realm}`, { adminEventsEnabled: true, adminEventsDetailsEnabled: true });
}

export async function adminEvents(admin: AdminCall, realm: string): Promise<AdminEvent[]> {
  const out: AdminEvent[] = [];
  for (let first = 0; ; first += 1000) {
    const page = await admin<AdminEvent[]>('GET', `/realms/${realm}/admin-events?first=${first}&max=1000`);
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

export interface UserEffects {
  logouts: number;
  /** PUT users/{id} whose representation sets enabled=false / enabled=true. */
  disables: number;
  enables: number;
  /** DELETE users/{id}/role-mappings/realm. */
  roleRemovals: number;
  roleGrants: number;
}

/** Keycloak's admin events per user id: what really happened to each user, however often we asked. */
export function effectsByUser(events: readonly AdminEvent[]): Map<string, UserEffects> {
  const out = new Map<string, UserEffects>();
  const of = (id: string) => {
    let e = out.get(id);
    if (!e) {
      e = { logouts: 0, disables: 0, enables: 0, roleRemovals: 0, roleGrants: 0 };
      out.set(id, e);
    }
    return e;
  };
  for (const e of events) {
    const m = /^users\/([^/]+)(\/.*)?$/.exec(e.resourcePath);
    if (!m) continue;
    const id = m[1]!;
    const rest = m[2] ?? '';
    if (e.operationType === 'ACTION' && rest === '/logout') of(id).logouts += 1;
    else if (e.operationType === 'UPDATE' && rest === '' && e.representation) {
      const rep = JSON.parse(e.representation) as { enabled?: boolean };
      if (rep.enabled === false) of(id).disables += 1;
      if (rep.enabled === true) of(id).enables += 1;
    } else if (rest === '/role-mappings/realm' && e.operationType === 'DELETE') of(id).roleRemovals += 1;
    else if (rest === '/role-mappings/realm' && e.operationType === 'CREATE') of(id).roleGrants += 1;
  }
  return out;
}

/** Creates `n` users (username prefix + 3 digits) with a password and, optionally, a realm role. */
export async function createUsers(
  admin: AdminCall,
  realm: string,
  n: number,
  opts: { prefix?: string; role?: string; parallel?: number } = {},
): Promise<Array<{ id: string; username: string }>> {
  const prefix = opts.prefix ?? 'u';
  const role = opts.role
    ? await admin<Record<string, unknown>>('GET', `/realms/${realm}/roles/${opts.role}`)
    : undefined;
  const users: Array<{ id: string; username: string }> = new Array(n);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const username = `${prefix}${String(i).padStart(3, '0')}`;
      const id = await admin<string>('POST', `/realms/${realm}/users`, {
        username,
        enabled: true,
        email: `${username}@example.test`,
        emailVerified: true,
        firstName: 'Test',
        lastName: username,
        credentials: [{ type: 'password', value: 'correct-horse-battery', temporary: false }],
      });
      if (role) await admin('POST', `/realms/${realm}/users/${id}/role-mappings/realm`, [role]);
      users[i] = { id, username };
    }
  };
  await Promise.all(Array.from({ length: opts.parallel ?? 8 }, worker));
  return users;
}
