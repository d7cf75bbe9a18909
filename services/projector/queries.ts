import type { EventStore } from '../../platform/eventstore/port.ts';
import { identityKey } from '../../schemas/detection.ts';
import type { ActionType, EventType, RecordedEvent } from '../../schemas/events.ts';
import type { Projector } from './projector.ts';
import {
  ACTION_STATUSES,
  type ActionStatusFilter,
  type ActionView,
  type AuditEvent,
  type AuditRow,
  type CaseDetail,
  type CaseStatus,
  type CaseView,
  type DetectionView,
  type IdentityView,
  type Page,
  type TimelineEntry,
} from './views.ts';

/**
 * The projector's query API: typed functions over its views. Lists are newest first (cases and
 * actions) or in global order (audit), paged by an opaque cursor (a position) that is stable while
 * new events arrive.
 */

const DEFAULT_PAGE = 50;
const MAX_PAGE = 1000;

export interface Paging {
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

function pageSize(limit: number | undefined): number {
  return Math.min(Math.max(Math.trunc(limit ?? DEFAULT_PAGE), 1), MAX_PAGE);
}

function cursorValue(cursor: string | undefined): number | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const n = Number(cursor);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function paged<R, T>(rows: R[], limit: number, key: (r: R) => number, map: (r: R) => T): Page<T> {
  const more = rows.length > limit;
  const items = (more ? rows.slice(0, limit) : rows).map(map);
  return { items, nextCursor: more ? String(key(rows[limit - 1]!)) : null };
}

// ------------------------------------------------------------------ cases

export interface CaseFilter extends Paging {
  status?: CaseStatus;
  /** `provider:id` */
  identity?: string;
}

export function listCases(p: Projector, f: CaseFilter = {}): Page<CaseView> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.status) {
    where.push('status = ?');
    params.push(f.status);
  }
  if (f.identity) {
    where.push('identity_key = ?');
    params.push(f.identity);
  }
  const c = cursorValue(f.cursor);
  if (c !== undefined) {
    where.push('opened_position < ?');
    params.push(c);
  }
  const limit = pageSize(f.limit);
  const rows = p.database
    .prepare<unknown[], { doc: string; opened_position: number }>(
      `SELECT doc, opened_position FROM cases ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY opened_position DESC LIMIT ?`,
    )
    .all(...params, limit + 1);
  return paged(
    rows,
    limit,
    (r) => r.opened_position,
    (r) => JSON.parse(r.doc) as CaseView,
  );
}

export function getCase(p: Projector, id: string): CaseDetail | undefined {
  const row = p.database
    .prepare<[string], { doc: string }>('SELECT doc FROM cases WHERE case_id = ?')
    .get(id);
  if (!row) return undefined;
  const c = JSON.parse(row.doc) as CaseView;
  const detections = p.database
    .prepare<[string], { event_id: string; position: number; doc: string; case_id: string | null }>(
      'SELECT event_id, position, doc, case_id FROM detections WHERE case_id = ? ORDER BY position',
    )
    .all(id)
    .map((r): DetectionView => {
      const d = JSON.parse(r.doc) as Omit<DetectionView, 'eventId' | 'position' | 'caseId'> & {
        stream?: string;
      };
      return {
        eventId: r.event_id,
        position: r.position,
        id: d.id,
        source: d.source,
        kind: d.kind,
        confidence: d.confidence,
        severity: d.severity,
        title: d.title,
        occurredAt: d.occurredAt,
        receivedAt: d.receivedAt,
        caseId: r.case_id,
      };
    });
  const actions = p.database
    .prepare<[string], { doc: string }>(
      'SELECT doc FROM actions WHERE case_id = ? ORDER BY proposed_position',
    )
    .all(id)
    .map((r) => JSON.parse(r.doc) as ActionView);
  const timeline = p.database
    .prepare<
      [string],
      { position: number; event_id: string; type: string; stream: string; at: string; summary: string }
    >(
      'SELECT position, event_id, type, stream, at, summary FROM case_timeline WHERE case_id = ? ORDER BY position',
    )
    .all(id)
    .map(
      (r): TimelineEntry => ({
        position: r.position,
        eventId: r.event_id,
        type: r.type,
        stream: r.stream,
        at: r.at,
        summary: r.summary,
      }),
    );
  return { ...c, detections, actions, timeline };
}

// ------------------------------------------------------------------ identities

export function getIdentity(p: Projector, provider: string, id: string): IdentityView | undefined {
  const row = p.database
    .prepare<[string], { doc: string }>('SELECT doc FROM identities WHERE identity_key = ?')
    .get(identityKey({ provider, id }));
  return row ? (JSON.parse(row.doc) as IdentityView) : undefined;
}

// ------------------------------------------------------------------ actions

export interface ActionFilter extends Paging {
  status?: ActionStatusFilter;
  identity?: string;
  caseId?: string;
  type?: ActionType;
}

export function listActions(p: Projector, f: ActionFilter = {}): Page<ActionView> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.status === 'verified') {
    where.push("status = 'executed' AND verified = 1");
  } else if (f.status) {
    where.push('status = ?');
    params.push(f.status);
  }
  if (f.identity) {
    where.push('identity_key = ?');
    params.push(f.identity);
  }
  if (f.caseId) {
    where.push('case_id = ?');
    params.push(f.caseId);
  }
  if (f.type) {
    where.push('action_type = ?');
    params.push(f.type);
  }
  const c = cursorValue(f.cursor);
  if (c !== undefined) {
    where.push('proposed_position < ?');
    params.push(c);
  }
  const limit = pageSize(f.limit);
  const rows = p.database
    .prepare<unknown[], { doc: string; proposed_position: number }>(
      `SELECT doc, proposed_position FROM actions ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY proposed_position DESC LIMIT ?`,
    )
    .all(...params, limit + 1);
  return paged(
    rows,
    limit,
    (r) => r.proposed_position,
    (r) => JSON.parse(r.doc) as ActionView,
  );
}

export function getAction(p: Projector, id: string): ActionView | undefined {
  const row = p.database
    .prepare<[string], { doc: string }>('SELECT doc FROM actions WHERE action_id = ?')
    .get(id);
  return row ? (JSON.parse(row.doc) as ActionView) : undefined;
}

/** Number of actions per status (`verified` counts executed actions whose probes held). */
export function actionCounts(p: Projector): Record<ActionStatusFilter, number> {
  const out = Object.fromEntries(ACTION_STATUSES.map((s) => [s, 0])) as Record<ActionStatusFilter, number>;
  const rows = p.database
    .prepare<[], { status: string; n: number; v: number }>(
      'SELECT status, COUNT(*) AS n, SUM(verified) AS v FROM actions GROUP BY status',
    )
    .all();
  for (const r of rows) {
    if (r.status in out) out[r.status as ActionStatusFilter] = r.n;
    if (r.status === 'executed') out.verified = r.v ?? 0;
  }
  return out;
}

// ------------------------------------------------------------------ audit

export interface AuditFilter {
  /** `provider:id` */
  identity?: string;
  caseId?: string;
  actionId?: string;
  actor?: string;
  actionType?: string;
  ruleId?: string;
  policyVersion?: string;
  type?: EventType;
  /** Inclusive bounds on the event's occurredAt (RFC 3339). */
  from?: string;
  to?: string;
}

const AUDIT_COLUMNS: Array<[keyof AuditFilter, string]> = [
  ['identity', 'identity_key'],
  ['caseId', 'case_id'],
  ['actionId', 'action_id'],
  ['actor', 'actor'],
  ['actionType', 'action_type'],
  ['ruleId', 'rule_id'],
  ['policyVersion', 'policy_version'],
  ['type', 'type'],
];

interface AuditDbRow {
  position: number;
  event_id: string;
  type: string;
  stream: string;
  identity_key: string | null;
  case_id: string | null;
  action_id: string | null;
  actor: string | null;
  rule_id: string | null;
  policy_version: string | null;
  action_type: string | null;
  occurred_at: string;
  recorded_at: string;
}

function toAuditRow(r: AuditDbRow): AuditRow {
  return {
    position: r.position,
    eventId: r.event_id,
    type: r.type,
    stream: r.stream,
    occurredAt: r.occurred_at,
    recordedAt: r.recorded_at,
    identity: r.identity_key,
    caseId: r.case_id,
    actionId: r.action_id,
    actor: r.actor,
    ruleId: r.rule_id,
    policyVersion: r.policy_version,
    actionType: r.action_type,
  };
}

/** Audit index rows matching a filter, in global order, after the cursor position. */
export function queryAuditIndex(p: Projector, f: AuditFilter, paging: Paging = {}): Page<AuditRow> {
  const where: string[] = [];
  const params: unknown[] = [];
  for (const [k, col] of AUDIT_COLUMNS) {
    const v = f[k];
    if (v !== undefined && v !== '') {
      where.push(`${col} = ?`);
      params.push(v);
    }
  }
  if (f.from) {
    where.push('occurred_ms >= ?');
    params.push(Date.parse(f.from));
  }
  if (f.to) {
    where.push('occurred_ms <= ?');
    params.push(Date.parse(f.to));
  }
  const c = cursorValue(paging.cursor);
  if (c !== undefined) {
    where.push('position > ?');
    params.push(c);
  }
  const limit = pageSize(paging.limit);
  const rows = p.database
    .prepare<unknown[], AuditDbRow>(
      `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY position LIMIT ?`,
    )
    .all(...params, limit + 1);
  return paged(rows, limit, (r) => r.position, toAuditRow);
}

/** @public Reads one event by global position from the store (undefined if it is not there). */
export async function eventAt(store: EventStore, position: number): Promise<RecordedEvent | undefined> {
  const [e] = await store.readAll({ after: position - 1, limit: 1 });
  return e && e.position === position ? e : undefined;
}

function withPayload(row: AuditRow, e: RecordedEvent | undefined): AuditEvent {
  const index = {
    identity: row.identity,
    caseId: row.caseId,
    actionId: row.actionId,
    actor: row.actor,
    ruleId: row.ruleId,
    policyVersion: row.policyVersion,
    actionType: row.actionType,
  };
  if (!e || e.id !== row.eventId) {
    return {
      position: row.position,
      id: row.eventId,
      type: row.type,
      stream: row.stream,
      revision: null,
      occurredAt: row.occurredAt,
      recordedAt: row.recordedAt,
      causationId: null,
      correlationId: null,
      schemaVersion: null,
      data: null,
      missingFromStore: true,
      index,
    };
  }
  return {
    position: e.position,
    id: e.id,
    type: e.type,
    stream: e.stream,
    revision: e.revision,
    occurredAt: e.occurredAt,
    recordedAt: e.recordedAt,
    causationId: e.causationId,
    correlationId: e.correlationId,
    schemaVersion: e.schemaVersion,
    data: e.data,
    missingFromStore: false,
    index,
  };
}

/**
 * Audit query: the index finds the events, their payloads come from the event store itself (the
 * record of truth), so an answer never shows a projection's copy of an event.
 */
export async function queryAuditEvents(
  p: Projector,
  store: EventStore,
  f: AuditFilter,
  paging: Paging = {},
): Promise<Page<AuditEvent>> {
  const rows = queryAuditIndex(p, f, paging);
  const items: AuditEvent[] = [];
  for (const r of rows.items) items.push(withPayload(r, await eventAt(store, r.position)));
  return { items, nextCursor: rows.nextCursor };
}

/** Every matching audit event, in global order, page by page (for streamed exports). */
export async function* streamAuditEvents(
  p: Projector,
  store: EventStore,
  f: AuditFilter,
): AsyncGenerator<AuditEvent> {
  let cursor: string | undefined;
  for (;;) {
    const page = await queryAuditEvents(p, store, f, { limit: 500, ...(cursor ? { cursor } : {}) });
    yield* page.items;
    if (!page.nextCursor) return;
    cursor = page.nextCursor;
  }
}
