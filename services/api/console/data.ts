import type { EventStore } from '../../../platform/eventstore/port.ts';
import type { CatalogueEntry } from '../../../schemas/catalogue.ts';
import type { Projector } from '../../projector/projector.ts';
import { eventAt, queryAuditEvents } from '../../projector/queries.ts';
import type { ActionView } from '../../projector/views.ts';

/**
 * What the console pages read beyond the JSON API's queries: the detections behind many actions at
 * once (the queue shows confidence and kinds on every row), the evidence of one action, the
 * catalogue entry of an identity, and the budgets and guard trips of the last day.
 */

export interface DetectionBrief {
  id: string;
  source: string;
  kind: string;
  confidence: number;
  severity: string;
  title: string | null;
  position: number;
}

/** Detections of these cases, by case id (one query per 500 cases, whatever the queue length). */
export function detectionsOfCases(p: Projector, caseIds: readonly string[]): Map<string, DetectionBrief[]> {
  const out = new Map<string, DetectionBrief[]>();
  const unique = [...new Set(caseIds)];
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = unique.slice(i, i + 500);
    const rows = p.database
      .prepare<string[], { case_id: string; position: number; doc: string }>(
        `SELECT case_id, position, doc FROM detections WHERE case_id IN (${chunk.map(() => '?').join(',')}) ORDER BY position`,
      )
      .all(...chunk);
    for (const r of rows) {
      const d = JSON.parse(r.doc) as Omit<DetectionBrief, 'position'>;
      const list = out.get(r.case_id) ?? [];
      list.push({
        id: d.id,
        source: d.source,
        kind: d.kind,
        confidence: d.confidence,
        severity: d.severity,
        title: d.title ?? null,
        position: r.position,
      });
      out.set(r.case_id, list);
    }
  }
  return out;
}

/** The detections that triggered an action, with their evidence as recorded in the event store. */
export async function evidenceOf(
  p: Projector,
  store: EventStore,
  action: ActionView,
): Promise<Array<DetectionBrief & { evidence: unknown; occurredAt: string }>> {
  const briefs = (detectionsOfCases(p, [action.caseId]).get(action.caseId) ?? []).filter((d) =>
    action.detectionIds.includes(d.id),
  );
  const out: Array<DetectionBrief & { evidence: unknown; occurredAt: string }> = [];
  for (const d of briefs) {
    const e = await eventAt(store, d.position);
    const detection = e?.type === 'DetectionReceived' ? e.data.detection : undefined;
    out.push({ ...d, evidence: detection?.evidence ?? null, occurredAt: detection?.occurredAt ?? '' });
  }
  return out;
}

/** The identity's latest catalogue entry (from IdentityCatalogued events), if it was ever catalogued. */
export async function catalogueEntryOf(
  p: Projector,
  store: EventStore,
  identityKey: string,
): Promise<CatalogueEntry | undefined> {
  let latest: CatalogueEntry | undefined;
  let cursor: string | undefined;
  do {
    const page = await queryAuditEvents(
      p,
      store,
      { identity: identityKey, type: 'IdentityCatalogued' },
      { limit: 1000, ...(cursor ? { cursor } : {}) },
    );
    for (const e of page.items) {
      const entry = (e.data as { entry?: CatalogueEntry } | null)?.entry;
      if (entry) latest = entry;
    }
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return latest;
}

export interface GuardTrip {
  at: string;
  guard: string;
  scope: string;
  limit: number;
  windowSeconds: number;
  identity: string | null;
  actionId: string | null;
}

/** GuardTripped events since `from` (newest first, at most 200). */
export async function guardTripsSince(p: Projector, store: EventStore, from: string): Promise<GuardTrip[]> {
  const page = await queryAuditEvents(p, store, { type: 'GuardTripped', from }, { limit: 1000 });
  return page.items
    .map((e) => {
      const d = (e.data ?? {}) as Partial<{
        guard: string;
        scope: string;
        limit: number;
        windowSeconds: number;
      }>;
      return {
        at: e.occurredAt,
        guard: d.guard ?? 'unknown',
        scope: d.scope ?? '',
        limit: d.limit ?? 0,
        windowSeconds: d.windowSeconds ?? 0,
        identity: e.index.identity,
        actionId: e.index.actionId,
      };
    })
    .reverse()
    .slice(0, 200);
}

export interface BudgetUse {
  key: string;
  used: number;
  limit: number;
  lastAt: string;
}

/** Blast-radius budgets as the latest automatic proposals of the period saw them (per budget key). */
export function budgetsFrom(actions: readonly ActionView[], from: string): BudgetUse[] {
  const byKey = new Map<string, BudgetUse>();
  for (const a of actions) {
    if (a.proposedAt < from || a.blastRadius.budgetLimit < 0) continue;
    for (const key of a.blastRadius.budgetKeys.length ? a.blastRadius.budgetKeys : [a.type]) {
      const seen = byKey.get(key);
      if (!seen || seen.lastAt < a.proposedAt)
        byKey.set(key, {
          key,
          used: a.blastRadius.budgetUsed,
          limit: a.blastRadius.budgetLimit,
          lastAt: a.proposedAt,
        });
    }
  }
  return [...byKey.values()].sort((x, y) => x.key.localeCompare(y.key));
}

/** Pending approvals per case (one grouped query). */
export function pendingByCase(p: Projector): Map<string, number> {
  const rows = p.database
    .prepare<[], { case_id: string; n: number }>(
      "SELECT case_id, COUNT(*) AS n FROM actions WHERE status = 'proposed' GROUP BY case_id",
    )
    .all();
  return new Map(rows.map((r) => [r.case_id, r.n]));
}

/** Number of actions waiting for approval (the count in the navigation). */
export function pendingCount(p: Projector): number {
  return (
    p.database.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM actions WHERE status = 'proposed'").get()
      ?.n ?? 0
  );
}
