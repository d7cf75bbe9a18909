import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { TourniquetError } from '../../platform/errors.ts';
import type { EventStore, Subscription } from '../../platform/eventstore/port.ts';
import { type IdentityRef, identityKey } from '../../schemas/detection.ts';
import type { Actor, EventType, RecordedEvent } from '../../schemas/events.ts';
import type { ActionView, AutomationView, CaseView, IdentityView } from './views.ts';

/**
 * The projector: folds the global event stream into query views (cases, identity state, actions,
 * audit index) in its own SQLite database. Every view update and the checkpoint are written in the
 * same transaction, so applying a position twice is a no-op and a crash never leaves a view ahead
 * of or behind its checkpoint. The views hold only what follows from events (event times, never the
 * wall clock), so `rebuild()` from position 0 reproduces them row for row.
 */

/** Bumped when the view tables change shape: a projector opening an older file rebuilds it. */
const PROJECTION_SCHEMA_VERSION = '1';

/** Every table the projector owns, in dump order. */
const PROJECTION_TABLES = [
  'meta',
  'cases',
  'actions',
  'identities',
  'detections',
  'case_timeline',
  'audit',
  'control',
] as const;

const DDL = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY,
    identity_key TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_position INTEGER NOT NULL,
    doc TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS cases_identity ON cases (identity_key, opened_position);
  CREATE INDEX IF NOT EXISTS cases_status ON cases (status, opened_position);
  CREATE TABLE IF NOT EXISTS actions (
    action_id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    status TEXT NOT NULL,
    verified INTEGER NOT NULL,
    action_type TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    proposed_position INTEGER NOT NULL,
    doc TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS actions_status ON actions (status, proposed_position);
  CREATE INDEX IF NOT EXISTS actions_identity ON actions (identity_key, proposed_position);
  CREATE INDEX IF NOT EXISTS actions_case ON actions (case_id, proposed_position);
  CREATE TABLE IF NOT EXISTS identities (identity_key TEXT PRIMARY KEY, doc TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS detections (
    event_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    detection_id TEXT NOT NULL,
    source TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    case_id TEXT,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    doc TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS detections_identity ON detections (identity_key, detection_id, position);
  CREATE INDEX IF NOT EXISTS detections_case ON detections (case_id, position);
  CREATE TABLE IF NOT EXISTS case_timeline (
    case_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    stream TEXT NOT NULL,
    at TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (case_id, position)
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS audit (
    position INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    stream TEXT NOT NULL,
    identity_key TEXT,
    case_id TEXT,
    action_id TEXT,
    actor TEXT,
    rule_id TEXT,
    policy_version TEXT,
    action_type TEXT,
    occurred_at TEXT NOT NULL,
    occurred_ms INTEGER NOT NULL,
    recorded_at TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS audit_identity ON audit (identity_key, position);
  CREATE INDEX IF NOT EXISTS audit_case ON audit (case_id, position);
  CREATE INDEX IF NOT EXISTS audit_action ON audit (action_id, position);
  CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, position);
  CREATE INDEX IF NOT EXISTS audit_type ON audit (type, position);
  CREATE INDEX IF NOT EXISTS audit_rule ON audit (rule_id, position);
  CREATE INDEX IF NOT EXISTS audit_policy ON audit (policy_version, position);
  CREATE INDEX IF NOT EXISTS audit_action_type ON audit (action_type, position);
  CREATE INDEX IF NOT EXISTS audit_time ON audit (occurred_ms, position);
  CREATE TABLE IF NOT EXISTS control (key TEXT PRIMARY KEY, doc TEXT NOT NULL);
`;

export interface ProjectorOptions {
  store: EventStore;
  /** Its own SQLite file (created if missing), or ':memory:'. */
  path: string;
  log?: Logger;
  /** Events per transaction while catching up or rebuilding (default 1000). */
  pageSize?: number;
}

/** Called for each event applied while live (not during catch-up or rebuild): metrics hang here. */
export type LiveEventListener = (event: RecordedEvent, projector: Projector) => void;

interface Waiter {
  position: number;
  resolve: () => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

type IdentityLike = Pick<IdentityRef, 'provider' | 'id'> & Partial<IdentityRef>;

/** Display name of an actor in views and the audit index. */
export function actorName(by: Actor | undefined | null): string | null {
  if (!by) return null;
  switch (by.kind) {
    case 'human':
      return by.id;
    case 'policy':
      return `policy:${by.ruleId}@${by.policyVersion}`;
    case 'system':
      return by.id;
  }
}

function later(a: string, b: string): string {
  return Date.parse(b) > Date.parse(a) ? b : a;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** A view stored as JSON in a `doc` column, when the row exists. */
function parseDoc<T>(row: { doc: string } | undefined): T | undefined {
  return row ? (JSON.parse(row.doc) as T) : undefined;
}

/** What the audit index extracts from an event's payload (all null when nothing could be). */
interface AuditFields {
  identityKey: string | null;
  caseId: string | null;
  actionId: string | null;
  actor: string | null;
  ruleId: string | null;
  policyVersion: string | null;
  actionType: string | null;
}

const NO_AUDIT_FIELDS: Readonly<AuditFields> = {
  identityKey: null,
  caseId: null,
  actionId: null,
  actor: null,
  ruleId: null,
  policyVersion: null,
  actionType: null,
};

export class Projector {
  readonly store: EventStore;
  readonly path: string;
  private readonly db: Database.Database;
  private readonly log: Logger | undefined;
  private readonly pageSize: number;
  private checkpoint = 0;
  private sub: Subscription | undefined;
  private starting: Promise<void> | undefined;
  private failure: unknown;
  /** Live events not yet applied: applied together, one transaction per turn of the event loop. */
  private liveEvents: RecordedEvent[] = [];
  private liveFlush: NodeJS.Immediate | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly liveListeners = new Set<LiveEventListener>();
  private appliedErrors = 0;
  private readonly s;
  private readonly txApply: (events: readonly RecordedEvent[]) => RecordedEvent[];
  private readonly txOne: (event: RecordedEvent) => void;

  constructor(opts: ProjectorOptions) {
    this.store = opts.store;
    this.path = opts.path;
    this.log = opts.log;
    this.pageSize = opts.pageSize ?? 1000;
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new Database(opts.path);
    this.db.pragma('journal_mode = WAL');
    // The views are derived data: a lost tail after an OS crash is re-projected from the checkpoint,
    // which is committed in the same transaction as the views it describes.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const version = this.db
      .prepare<[], { value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")
      .get();
    if (version && version.value !== PROJECTION_SCHEMA_VERSION) this.dropViews();
    this.db.exec(DDL);
    this.db
      .prepare(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(PROJECTION_SCHEMA_VERSION);
    this.s = this.prepare();
    this.checkpoint = Number(this.s.getMeta.get('checkpoint')?.value ?? 0);
    this.txOne = this.db.transaction((e: RecordedEvent) => this.applyOne(e));
    this.txApply = this.db.transaction((events: readonly RecordedEvent[]) => {
      const applied: RecordedEvent[] = [];
      let position = this.checkpoint;
      for (const e of events) {
        if (e.position <= position) continue; // already applied: idempotent by position
        try {
          this.txOne(e);
        } catch (err) {
          // A malformed or unexpected event must not stall every view behind it: it is logged,
          // counted (projector_errors) and skipped; the audit index still records its position.
          this.appliedErrors += 1;
          this.log?.error(
            { err, position: e.position, eventId: e.id, type: e.type },
            'projector: event could not be applied',
          );
          this.s.putMeta.run(
            'last_error',
            JSON.stringify({ position: e.position, id: e.id, message: String(err) }),
          );
          this.indexOnly(e);
        }
        position = e.position;
        applied.push(e);
      }
      if (applied.length > 0) this.s.putMeta.run('checkpoint', String(position));
      this.checkpoint = position;
      return applied;
    });
  }

  private prepare() {
    const db = this.db;
    return {
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      putMeta: db.prepare(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
      ),
      getCase: db.prepare<[string], { doc: string }>('SELECT doc FROM cases WHERE case_id = ?'),
      putCase: db.prepare(
        `INSERT INTO cases (case_id, identity_key, status, opened_position, doc) VALUES (@id, @identityKey, @status, @openedPosition, @doc)
         ON CONFLICT(case_id) DO UPDATE SET status = excluded.status, doc = excluded.doc`,
      ),
      getAction: db.prepare<[string], { doc: string }>('SELECT doc FROM actions WHERE action_id = ?'),
      putAction: db.prepare(
        `INSERT INTO actions (action_id, case_id, identity_key, status, verified, action_type, rule_id, policy_version, proposed_position, doc)
         VALUES (@id, @caseId, @identityKey, @status, @verified, @type, @ruleId, @policyVersion, @proposedPosition, @doc)
         ON CONFLICT(action_id) DO UPDATE SET status = excluded.status, verified = excluded.verified, doc = excluded.doc`,
      ),
      actionsOfIdentity: db.prepare<[string], { doc: string }>(
        'SELECT doc FROM actions WHERE identity_key = ? ORDER BY proposed_position',
      ),
      getIdentity: db.prepare<[string], { doc: string }>('SELECT doc FROM identities WHERE identity_key = ?'),
      putIdentity: db.prepare(
        'INSERT INTO identities (identity_key, doc) VALUES (?, ?) ON CONFLICT(identity_key) DO UPDATE SET doc = excluded.doc',
      ),
      insertDetection: db.prepare(
        `INSERT OR IGNORE INTO detections (event_id, position, detection_id, source, identity_key, case_id, occurred_at, recorded_at, doc)
         VALUES (@eventId, @position, @detectionId, @source, @identityKey, @caseId, @occurredAt, @recordedAt, @doc)`,
      ),
      unlinkedDetection: db.prepare<
        [string, string],
        { event_id: string; position: number; doc: string; occurred_at: string; recorded_at: string }
      >(
        `SELECT event_id, position, doc, occurred_at, recorded_at FROM detections
         WHERE identity_key = ? AND detection_id = ? AND case_id IS NULL ORDER BY position DESC LIMIT 1`,
      ),
      linkDetection: db.prepare('UPDATE detections SET case_id = ? WHERE event_id = ?'),
      linkAudit: db.prepare('UPDATE audit SET case_id = ? WHERE event_id = ? AND case_id IS NULL'),
      detectionTimes: db.prepare<[string, string], { occurred_at: string; recorded_at: string }>(
        'SELECT occurred_at, recorded_at FROM detections WHERE identity_key = ? AND detection_id = ? ORDER BY position DESC LIMIT 1',
      ),
      insertTimeline: db.prepare(
        `INSERT OR IGNORE INTO case_timeline (case_id, position, event_id, type, stream, at, summary)
         VALUES (@caseId, @position, @eventId, @type, @stream, @at, @summary)`,
      ),
      insertAudit: db.prepare(
        `INSERT OR IGNORE INTO audit (position, event_id, type, stream, identity_key, case_id, action_id, actor, rule_id, policy_version, action_type, occurred_at, occurred_ms, recorded_at)
         VALUES (@position, @eventId, @type, @stream, @identityKey, @caseId, @actionId, @actor, @ruleId, @policyVersion, @actionType, @occurredAt, @occurredMs, @recordedAt)`,
      ),
      getControl: db.prepare<[string], { doc: string }>('SELECT doc FROM control WHERE key = ?'),
      putControl: db.prepare(
        'INSERT INTO control (key, doc) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET doc = excluded.doc',
      ),
    };
  }

  /** Position of the last event folded into the views (the checkpoint). */
  get position(): number {
    return this.checkpoint;
  }

  /** The views' database, read-only by convention: the query functions (queries.ts) read it. */
  get database(): Database.Database {
    return this.db;
  }

  /** Whether a live subscription is running. */
  get live(): boolean {
    return this.sub !== undefined;
  }

  /** The error that stopped the live subscription, if any. */
  get error(): unknown {
    return this.failure;
  }

  /** Events that could not be applied (logged and skipped) since this process started. */
  get errorCount(): number {
    return this.appliedErrors;
  }

  onLiveEvent(listener: LiveEventListener): () => void {
    this.liveListeners.add(listener);
    return () => this.liveListeners.delete(listener);
  }

  /** Catches up from the checkpoint (one transaction per page), then follows the store live. */
  async start(): Promise<void> {
    if (this.sub) return;
    if (this.starting) return this.starting;
    this.starting = (async () => {
      this.failure = undefined;
      await this.catchUp();
      this.sub = this.store.subscribeAll(
        {
          after: this.checkpoint,
          pageSize: this.pageSize,
          onError: (err) => this.failed(err),
        },
        (e) => {
          // One transaction per event costs a commit per event: under ingest load the views' commits
          // would take more time than the appends. Events that arrive together are applied together.
          this.liveEvents.push(e);
          if (this.liveEvents.length >= this.pageSize) this.flushLive();
          else this.liveFlush ??= setImmediate(() => this.flushLive());
        },
      );
    })().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const sub = this.sub;
    this.sub = undefined;
    await sub?.stop();
    this.flushLive();
  }

  /** Applies the live events received so far (see start). */
  private flushLive(): void {
    if (this.liveFlush) clearImmediate(this.liveFlush);
    this.liveFlush = undefined;
    const events = this.liveEvents;
    this.liveEvents = [];
    if (events.length === 0 || !this.db.open) return;
    try {
      this.applyEvents(events, { live: true });
    } catch (err) {
      this.liveEvents = [];
      const sub = this.sub;
      this.failed(err);
      void sub?.stop();
    }
  }

  /** The live subscription stopped on an error: the projector is not live until started again. */
  private failed(err: unknown): void {
    this.failure = err;
    this.sub = undefined;
    this.log?.error({ err }, 'projector subscription stopped');
  }

  /** Stops, closes the views' database and fails pending waiters. */
  async close(): Promise<void> {
    await this.stop();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new TourniquetError('STORE_UNAVAILABLE', 'projector closed', { status: 503 }));
    }
    this.waiters.clear();
    if (this.db.open) this.db.close();
  }

  /**
   * Drops every view and replays the store from position 0. When the projector was live it is live
   * again afterwards; either way this resolves once the views include the head at the time of the call.
   */
  async rebuild(): Promise<void> {
    const wasLive = this.sub !== undefined || this.starting !== undefined;
    await this.stop();
    this.db.transaction(() => {
      for (const t of PROJECTION_TABLES) if (t !== 'meta') this.db.prepare(`DELETE FROM ${t}`).run();
      this.db.prepare("DELETE FROM meta WHERE key IN ('checkpoint', 'last_error')").run();
    })();
    this.checkpoint = 0;
    if (wasLive) await this.start();
    else await this.catchUp();
  }

  private async catchUp(): Promise<void> {
    for (;;) {
      const page = await this.store.readAll({ after: this.checkpoint, limit: this.pageSize });
      if (page.length > 0) this.applyEvents(page);
      if (page.length < this.pageSize) return;
    }
  }

  /**
   * Applies events in one transaction, skipping positions already applied (idempotent), and returns
   * the ones it applied. Used by the subscription; public so tests can re-deliver events.
   */
  applyEvents(events: readonly RecordedEvent[], opts: { live?: boolean } = {}): RecordedEvent[] {
    if (events.length === 0) return [];
    const applied = this.txApply(events);
    if (applied.length === 0) return applied;
    if (opts.live) {
      for (const e of applied) {
        for (const l of this.liveListeners) {
          try {
            l(e, this);
          } catch (err) {
            this.log?.warn({ err }, 'projector live listener failed');
          }
        }
      }
    }
    for (const w of this.waiters) {
      if (w.position <= this.checkpoint) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.resolve();
      }
    }
    return applied;
  }

  /**
   * Resolves once the views include `position` (read-your-writes after an append). Rejects with a
   * retriable 503 error when they do not within `timeoutMs`.
   */
  waitFor(position: number, timeoutMs = 10_000): Promise<void> {
    if (position <= this.checkpoint) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        position,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          reject(
            new TourniquetError(
              'STORE_UNAVAILABLE',
              `projector did not reach position ${position} within ${timeoutMs} ms`,
              {
                status: 503,
                retriable: true,
                details: { position: this.checkpoint, wanted: position },
              },
            ),
          );
        }, timeoutMs),
      };
      this.waiters.add(w);
    });
  }

  /** Every projection table, rows in primary-key order: what `rebuild` must reproduce exactly. */
  dump(): Record<string, unknown[]> {
    const out: Record<string, unknown[]> = {};
    for (const t of PROJECTION_TABLES) {
      const where = t === 'meta' ? " WHERE key <> 'last_error'" : '';
      out[t] = this.db.prepare(`SELECT * FROM ${t}${where} ORDER BY 1, 2`).all();
    }
    return out;
  }

  private dropViews(): void {
    for (const t of PROJECTION_TABLES) if (t !== 'meta') this.db.exec(`DROP TABLE IF EXISTS ${t}`);
    this.db.exec("DELETE FROM meta WHERE key IN ('checkpoint', 'last_error')");
  }

  // ---------------------------------------------------------------- folding

  private readAction(id: string): ActionView | undefined {
    return parseDoc<ActionView>(this.s.getAction.get(id));
  }

  private writeAction(a: ActionView, proposedPosition?: number): void {
    this.s.putAction.run({
      id: a.id,
      caseId: a.caseId,
      identityKey: a.identityKey,
      status: a.status,
      verified: a.verified ? 1 : 0,
      type: a.type,
      ruleId: a.ruleId,
      policyVersion: a.policyVersion,
      proposedPosition: proposedPosition ?? a.updatedPosition,
      doc: JSON.stringify(a),
    });
  }

  private readCase(id: string): CaseView | undefined {
    return parseDoc<CaseView>(this.s.getCase.get(id));
  }

  private writeCase(c: CaseView, openedPosition?: number): void {
    this.s.putCase.run({
      id: c.id,
      identityKey: c.identityKey,
      status: c.status,
      openedPosition: openedPosition ?? c.updatedPosition,
      doc: JSON.stringify(c),
    });
  }

  private readIdentity(key: string): IdentityView | undefined {
    return parseDoc<IdentityView>(this.s.getIdentity.get(key));
  }

  private touchIdentity(identity: IdentityLike, e: RecordedEvent, change?: (v: IdentityView) => void): void {
    const key = identityKey(identity);
    let v = this.readIdentity(key);
    if (!v) {
      v = {
        identity: {
          provider: identity.provider,
          id: identity.id,
          type: identity.type ?? 'human',
          ...(identity.tenant ? { tenant: identity.tenant } : {}),
          ...(identity.displayName ? { displayName: identity.displayName } : {}),
        },
        identityKey: key,
        openCaseId: null,
        caseIds: [],
        detectionCount: 0,
        firstSeenAt: e.occurredAt,
        lastEventAt: e.occurredAt,
        contained: false,
        containment: [],
        pendingApprovals: [],
        residue: [],
        updatedPosition: e.position,
      };
    } else if (identity.type && v.identity.type !== identity.type && e.type === 'DetectionReceived') {
      v.identity = { ...v.identity, type: identity.type };
    }
    v.lastEventAt = later(v.lastEventAt, e.occurredAt);
    v.updatedPosition = e.position;
    change?.(v);
    this.s.putIdentity.run(key, JSON.stringify(v));
  }

  /** Recomputes an identity's containment, pending approvals and residue from its actions. */
  private refreshIdentityActions(identity: IdentityLike, e: RecordedEvent): void {
    const key = identityKey(identity);
    const actions = this.s.actionsOfIdentity.all(key).map((r) => JSON.parse(r.doc) as ActionView);
    this.touchIdentity(identity, e, (v) => {
      v.containment = actions
        .filter((a) => a.executedAt !== null && a.status !== 'rolled_back')
        .map((a) => ({
          actionId: a.id,
          type: a.type,
          caseId: a.caseId,
          executedAt: a.executedAt!,
          verified: a.verified,
          status: a.status,
        }));
      v.contained = v.containment.length > 0;
      v.pendingApprovals = actions
        .filter((a) => a.status === 'proposed')
        .map((a) => ({
          actionId: a.id,
          type: a.type,
          caseId: a.caseId,
          approvalMode: a.approvalMode,
          approvers: a.approvers,
          expiresAt: a.expiresAt,
        }));
      v.residue = actions
        .filter((a) => a.status === 'rolled_back' && a.rollback)
        .map((a) => ({
          actionId: a.id,
          type: a.type,
          caseId: a.caseId,
          rolledBackAt: a.rollback!.at,
          complete: a.rollback!.complete,
          residue: a.rollback!.residue,
        }));
    });
  }

  private timeline(
    caseId: string | null,
    e: { position: number; id: string; type: string; stream: string; occurredAt: string },
    summary: string,
  ): void {
    if (!caseId || !this.s.getCase.get(caseId)) return;
    this.s.insertTimeline.run({
      caseId,
      position: e.position,
      eventId: e.id,
      type: e.type,
      stream: e.stream,
      at: e.occurredAt,
      summary,
    });
  }

  /** Links the latest unlinked detection events with these ids to a case (and its timeline). */
  private linkDetections(caseId: string, key: string, detectionIds: readonly string[]): void {
    for (const detectionId of detectionIds) {
      const row = this.s.unlinkedDetection.get(key, detectionId);
      if (!row) continue;
      this.s.linkDetection.run(caseId, row.event_id);
      this.s.linkAudit.run(caseId, row.event_id);
      const d = JSON.parse(row.doc) as {
        stream: string;
        kind: string;
        confidence: number;
        source: string;
        receivedAt: string;
      };
      this.timeline(
        caseId,
        {
          position: row.position,
          id: row.event_id,
          type: 'DetectionReceived',
          stream: d.stream,
          occurredAt: d.receivedAt,
        },
        `detection ${detectionId} (${d.kind}, confidence ${d.confidence}) from ${d.source}`,
      );
    }
  }

  /** Applies `change` to a case and writes it back at this event's position; undefined when the case is unknown. */
  private updateCase(e: RecordedEvent, caseId: string, change: (c: CaseView) => void): CaseView | undefined {
    const c = this.readCase(caseId);
    if (!c) return undefined;
    change(c);
    c.updatedPosition = e.position;
    this.writeCase(c);
    return c;
  }

  private updateAction(
    e: RecordedEvent,
    actionId: string,
    change: (a: ActionView) => void,
  ): ActionView | undefined {
    const a = this.readAction(actionId);
    if (!a) {
      this.log?.warn(
        { position: e.position, actionId, type: e.type },
        'projector: event for an unknown action',
      );
      return undefined;
    }
    change(a);
    a.updatedPosition = e.position;
    this.writeAction(a);
    this.refreshIdentityActions(a.identity, e);
    return a;
  }

  private applyOne(e: RecordedEvent): void {
    const audit = this.auditFieldsOf(e);
    const handle = this.handlers[e.type] as ((e: RecordedEvent, audit: AuditFields) => void) | undefined;
    handle?.(e, audit);
    this.writeAudit(e, audit);
  }

  /** What the audit index records of an event besides its envelope: identity, case, action, rule. */
  private auditFieldsOf(e: RecordedEvent): AuditFields {
    const audit: AuditFields = {
      ...NO_AUDIT_FIELDS,
      caseId: e.correlationId && this.s.getCase.get(e.correlationId) ? e.correlationId : null,
    };
    const data = e.data as Record<string, unknown>;
    if (data && typeof data === 'object') {
      const identity = data.identity as IdentityLike | undefined;
      if (identity && typeof identity.provider === 'string' && typeof identity.id === 'string') {
        audit.identityKey = identityKey(identity);
      }
      audit.caseId = str(data.caseId) ?? audit.caseId;
      audit.actionId = str(data.actionId);
      if (audit.actionId) {
        const a = this.readAction(audit.actionId);
        if (a) {
          audit.ruleId = a.ruleId;
          audit.policyVersion = a.policyVersion;
          audit.actionType = a.type;
          audit.caseId = audit.caseId ?? a.caseId;
        }
      }
    }
    return audit;
  }

  /**
   * One handler per event type, each writing the views that event changes (detections, cases,
   * actions, identities, the timeline, the automation view); the audit index row is written for every
   * event after its handler. An event type without a handler is indexed only.
   */
  private readonly handlers: { [T in EventType]?: (e: RecordedEvent<T>, audit: AuditFields) => void } = {
    DetectionReceived: (e, audit) => this.onDetectionReceived(e, audit),
    CaseOpened: (e, audit) => this.onCaseOpened(e, audit),
    ActionProposed: (e, audit) => this.onActionProposed(e, audit),
    ActionApproved: (e, audit) => this.onActionApproved(e, audit),
    ActionRejected: (e, audit) => this.onActionRejected(e, audit),
    ActionExpired: (e, audit) => this.onActionExpired(e, audit),
    CoordinationRequested: (e, audit) => this.onCoordinationRequested(e, audit),
    ExecutionClaimed: (e, audit) => this.onExecutionClaimed(e, audit),
    ActionExecuted: (e, audit) => this.onActionExecuted(e, audit),
    ActionFailed: (e, audit) => this.onActionFailed(e, audit),
    ActionVerified: (e, audit) => this.onActionVerified(e, audit),
    ActionRolledBack: (e, audit) => this.onActionRolledBack(e, audit),
    CaseResolved: (e, audit) => this.onCaseResolved(e, audit),
    GuardTripped: (e, audit) => this.onGuardTripped(e, audit),
    NoActionTaken: (e, audit) => this.onNoActionTaken(e, audit),
    ActionShadowed: (e, audit) => this.onActionShadowed(e, audit),
    StormDetected: (e, audit) => this.onStormDetected(e, audit),
    StormResolved: (e, audit) => this.onStormResolved(e, audit),
    AutomationPaused: (e, audit) => this.onAutomationSwitched(e, audit),
    AutomationResumed: (e, audit) => this.onAutomationSwitched(e, audit),
    PolicyActivated: (e, audit) => this.onPolicyActivated(e, audit),
    IdentityCatalogued: (e, audit) => this.onIdentityCatalogued(e, audit),
  };

  private onDetectionReceived(e: RecordedEvent<'DetectionReceived'>, audit: AuditFields): void {
    const d = e.data.detection;
    const key = identityKey(d.identity);
    audit.identityKey = key;
    audit.actor = d.source;
    const caseId = e.correlationId && this.s.getCase.get(e.correlationId) ? e.correlationId : null;
    this.s.insertDetection.run({
      eventId: e.id,
      position: e.position,
      detectionId: d.id,
      source: d.source,
      identityKey: key,
      caseId,
      occurredAt: d.occurredAt,
      recordedAt: e.recordedAt,
      doc: JSON.stringify({
        stream: e.stream,
        id: d.id,
        source: d.source,
        kind: d.kind,
        confidence: d.confidence,
        severity: d.severity,
        title: d.title ?? null,
        occurredAt: d.occurredAt,
        receivedAt: e.occurredAt,
      }),
    });
    this.touchIdentity(d.identity, e, (v) => {
      v.detectionCount += 1;
    });
    if (caseId) {
      // Why it led to no automatic action, when it says (a detection joining its case carries it).
      const reasons = e.data.noAction;
      this.updateCase(e, caseId, (c) => {
        if (!c.detectionIds.includes(d.id)) c.detectionIds.push(d.id);
        if (reasons) {
          c.noActions ??= [];
          c.noActions.push({ detectionId: d.id, at: e.occurredAt, reasons });
        }
      });
      const why = reasons ? `; no automatic action: ${reasons.map((r) => r.detail).join('; ')}` : '';
      this.timeline(
        caseId,
        e,
        `detection ${d.id} (${d.kind}, confidence ${d.confidence}) from ${d.source}${why}`,
      );
    }
  }

  private onCaseOpened(e: RecordedEvent<'CaseOpened'>, audit: AuditFields): void {
    const { caseId, identity, detectionIds } = e.data;
    const key = identityKey(identity);
    audit.caseId = caseId;
    if (this.readCase(caseId)) return;
    const c: CaseView = {
      id: caseId,
      identity,
      identityKey: key,
      status: 'open',
      verdict: null,
      resolvedBy: null,
      openedAt: e.occurredAt,
      resolvedAt: null,
      detectionIds: [...detectionIds],
      actionIds: [],
      noActions: [],
      shadowed: 0,
      updatedPosition: e.position,
    };
    this.writeCase(c, e.position);
    this.linkDetections(caseId, key, detectionIds);
    this.timeline(
      caseId,
      e,
      `case opened on ${key}${detectionIds.length ? ` from ${detectionIds.join(', ')}` : ' by an analyst proposal'}`,
    );
    this.touchIdentity(identity, e, (v) => {
      v.openCaseId = caseId;
      if (!v.caseIds.includes(caseId)) v.caseIds.push(caseId);
    });
  }

  private onActionProposed(e: RecordedEvent<'ActionProposed'>, audit: AuditFields): void {
    const d = e.data;
    const key = identityKey(d.identity);
    audit.ruleId = d.ruleId;
    audit.policyVersion = d.policyVersion;
    audit.actionType = d.action;
    const proposedBy = d.ruleId === 'manual' ? str(d.args.proposedBy) : null;
    audit.actor = proposedBy ?? `policy:${d.ruleId}@${d.policyVersion}`;
    if (this.readAction(d.actionId)) return;
    const a: ActionView = {
      id: d.actionId,
      caseId: d.caseId,
      identity: d.identity,
      identityKey: key,
      type: d.action,
      stage: d.stage,
      ruleId: d.ruleId,
      policyId: d.policyId,
      policyVersion: d.policyVersion,
      proposedBy,
      approvalMode: d.approval.mode,
      approvalReason: d.approval.reason,
      group: d.group ?? null,
      expiresAt: d.approval.expiresAt,
      status: 'proposed',
      verified: false,
      approvers: [],
      approvals: [],
      argsDigest: d.argsDigest,
      args: d.args,
      detectionIds: [...d.detectionIds],
      guards: d.guards,
      blastRadius: d.blastRadius,
      rollbackPlan: d.rollback,
      reversibility: d.reversibility ?? null,
      coordination: null,
      rejection: null,
      claims: [],
      execution: null,
      probes: null,
      failure: null,
      rollback: null,
      residue: [],
      proposedAt: e.occurredAt,
      approvedAt: null,
      rejectedAt: null,
      expiredAt: null,
      executedAt: null,
      verifiedAt: null,
      failedAt: null,
      rolledBackAt: null,
      updatedPosition: e.position,
    };
    this.writeAction(a, e.position);
    const linked = this.updateCase(e, d.caseId, (c) => {
      if (!c.actionIds.includes(d.actionId)) c.actionIds.push(d.actionId);
      for (const id of d.detectionIds) if (!c.detectionIds.includes(id)) c.detectionIds.push(id);
    });
    if (linked) this.linkDetections(d.caseId, key, d.detectionIds);
    const guards = d.guards.length ? `; guards: ${d.guards.map((g) => g.guard).join(', ')}` : '';
    this.timeline(
      d.caseId,
      e,
      `${d.action} proposed (${d.actionId}) by ${proposedBy ?? `rule ${d.ruleId}`}, policy ${d.policyId}@${d.policyVersion}, stage ${d.stage}, approval ${d.approval.mode}${guards}`,
    );
    this.refreshIdentityActions(d.identity, e);
  }

  private onActionApproved(e: RecordedEvent<'ActionApproved'>, audit: AuditFields): void {
    const d = e.data;
    const approver = actorName(d.by)!;
    audit.actor = approver;
    const a = this.updateAction(e, d.actionId, (a) => {
      a.approvals.push({
        by: d.by,
        approver,
        final: d.final,
        argsDigest: d.argsDigest,
        at: e.occurredAt,
        eventId: e.id,
      });
      if (!a.approvers.includes(approver)) a.approvers.push(approver);
      if (d.final && a.status === 'proposed') {
        a.status = 'approved';
        a.approvedAt = e.occurredAt;
      }
    });
    const of = a && a.approvalMode === 'two-person' ? ` (${a.approvals.length} of 2)` : '';
    this.timeline(
      d.caseId,
      e,
      `${d.actionId} approved by ${approver}${of}${d.final ? '' : ', awaiting a second approver'}`,
    );
  }

  private onActionRejected(e: RecordedEvent<'ActionRejected'>, audit: AuditFields): void {
    const d = e.data;
    audit.actor = actorName(d.by);
    this.updateAction(e, d.actionId, (a) => {
      a.status = 'rejected';
      a.rejectedAt = e.occurredAt;
      a.rejection = { by: d.by, reason: d.reason, at: e.occurredAt };
    });
    this.timeline(d.caseId, e, `${d.actionId} rejected by ${actorName(d.by)}: ${d.reason}`);
  }

  private onActionExpired(e: RecordedEvent<'ActionExpired'>, audit: AuditFields): void {
    const d = e.data;
    audit.actor = 'system:expiry';
    this.updateAction(e, d.actionId, (a) => {
      a.status = 'expired';
      a.expiredAt = d.expiredAt;
    });
    this.timeline(d.caseId, e, `${d.actionId} expired unapproved at ${d.expiredAt}`);
  }

  private onCoordinationRequested(e: RecordedEvent<'CoordinationRequested'>, _audit: AuditFields): void {
    const d = e.data;
    this.updateAction(e, d.actionId, (a) => {
      a.coordination = { partner: d.partner, grant: d.grant, reason: d.reason, at: e.occurredAt };
    });
    this.timeline(d.caseId, e, `coordination requested with ${d.partner} for grant ${d.grant}`);
  }

  private onExecutionClaimed(e: RecordedEvent<'ExecutionClaimed'>, audit: AuditFields): void {
    const d = e.data;
    audit.actor = d.executor;
    this.updateAction(e, d.actionId, (a) => {
      a.claims.push({ executor: d.executor, attempt: d.attempt, at: e.occurredAt });
    });
    this.timeline(d.caseId, e, `${d.actionId} claimed by executor ${d.executor} (attempt ${d.attempt})`);
  }

  private onActionExecuted(e: RecordedEvent<'ActionExecuted'>, audit: AuditFields): void {
    const d = e.data;
    audit.actor = `provider:${d.provider}`;
    this.updateAction(e, d.actionId, (a) => {
      a.status = 'executed';
      a.executedAt = e.occurredAt;
      a.execution = {
        provider: d.provider,
        idempotencyKey: d.idempotencyKey,
        result: d.result,
        reconciled: d.reconciled ?? false,
      };
    });
    this.timeline(
      d.caseId,
      e,
      `${d.action} executed on ${d.provider}${d.reconciled ? ' (reconciled after restart)' : ''}`,
    );
  }

  private onActionFailed(e: RecordedEvent<'ActionFailed'>, audit: AuditFields): void {
    const d = e.data;
    audit.actor = `provider:${d.provider}`;
    this.updateAction(e, d.actionId, (a) => {
      a.failure = {
        phase: d.phase,
        provider: d.provider,
        ...d.error,
        attempts: d.attempts,
        at: e.occurredAt,
      };
      a.failedAt = e.occurredAt;
      // A failed rollback leaves the action in effect: its status stays what it was.
      if (d.phase !== 'rollback') a.status = 'failed';
    });
    this.timeline(
      d.caseId,
      e,
      `${d.action} failed during ${d.phase} on ${d.provider}: ${d.error.code} ${d.error.message}`,
    );
  }

  private onActionVerified(e: RecordedEvent<'ActionVerified'>, _audit: AuditFields): void {
    const d = e.data;
    this.updateAction(e, d.actionId, (a) => {
      a.probes = d.probes;
      a.verified = d.probes.every((p) => p.ok);
      a.verifiedAt = e.occurredAt;
    });
    const failed = d.probes.filter((p) => !p.ok).length;
    this.timeline(
      d.caseId,
      e,
      `${d.actionId} verified: ${d.probes.length - failed}/${d.probes.length} probes hold`,
    );
  }

  private onActionRolledBack(e: RecordedEvent<'ActionRolledBack'>, audit: AuditFields): void {
    const d = e.data;
    audit.actor = 'executor';
    this.updateAction(e, d.actionId, (a) => {
      a.status = 'rolled_back';
      a.rolledBackAt = e.occurredAt;
      a.rollback = { restored: d.restored, residue: d.residue, complete: d.complete, at: e.occurredAt };
      a.residue = d.residue;
    });
    this.timeline(
      d.caseId,
      e,
      `${d.action} rolled back${d.complete ? '' : ' incompletely'}${d.residue.length ? `; residue: ${d.residue.join('; ')}` : ''}`,
    );
  }

  private onCaseResolved(e: RecordedEvent<'CaseResolved'>, audit: AuditFields): void {
    const d = e.data;
    audit.actor = actorName(d.by);
    this.updateCase(e, d.caseId, (c) => {
      c.status = 'resolved';
      c.verdict = d.verdict;
      c.resolvedBy = d.by;
      c.resolvedAt = e.occurredAt;
    });
    this.timeline(d.caseId, e, `case resolved ${d.verdict} by ${actorName(d.by)}`);
    this.touchIdentity(d.identity, e, (v) => {
      if (v.openCaseId === d.caseId) v.openCaseId = null;
    });
  }

  /**
   * Why a detection led to no automatic action: listed on its case and in the timeline. Recorded for
   * a detection that opens a case (one joining a case carries its reasons, see onDetectionReceived),
   * and for every such detection in stores written before that.
   */
  private onNoActionTaken(e: RecordedEvent<'NoActionTaken'>, audit: AuditFields): void {
    const d = e.data;
    audit.caseId = d.caseId;
    audit.identityKey = identityKey(d.identity);
    this.updateCase(e, d.caseId, (c) => {
      c.noActions ??= [];
      c.noActions.push({ detectionId: d.detectionId, at: e.occurredAt, reasons: d.reasons });
    });
    this.timeline(
      d.caseId,
      e,
      `no automatic action on ${d.detectionId}: ${d.reasons.map((r) => r.detail).join('; ')}`,
    );
  }

  /** What a rule in monitor mode would have proposed: counted on its case. */
  private onActionShadowed(e: RecordedEvent<'ActionShadowed'>, audit: AuditFields): void {
    const d = e.data;
    audit.caseId = d.caseId;
    audit.ruleId = d.ruleId;
    audit.actionType = d.action;
    audit.identityKey = identityKey(d.identity);
    this.updateCase(e, d.caseId, (c) => {
      c.shadowed = (c.shadowed ?? 0) + 1;
    });
    this.timeline(
      d.caseId,
      e,
      `monitor mode: rule ${d.ruleId} would have proposed ${d.action} (stage ${d.stage}, ${d.wouldNeed})`,
    );
  }

  private onStormDetected(e: RecordedEvent<'StormDetected'>, audit: AuditFields): void {
    const d = e.data;
    audit.ruleId = d.ruleId;
    this.timeline(
      audit.caseId,
      e,
      `storm ${d.stormId}: rule ${d.ruleId} fired on ${d.identityCount} identities within ${d.windowSeconds}s (threshold ${d.threshold}, baseline ${d.baseline}); its automatic actions are held`,
    );
  }

  private onStormResolved(e: RecordedEvent<'StormResolved'>, audit: AuditFields): void {
    const d = e.data;
    audit.ruleId = d.ruleId;
    audit.actor = actorName(d.by);
    this.timeline(audit.caseId, e, `storm ${d.stormId} of rule ${d.ruleId} resolved (${d.reason})`);
  }

  private onGuardTripped(e: RecordedEvent<'GuardTripped'>, audit: AuditFields): void {
    const d = e.data;
    audit.actionType = d.actionType;
    this.timeline(
      audit.caseId,
      e,
      `guard ${d.guard} tripped: limit ${d.limit} per ${d.windowSeconds}s (${d.scope})`,
    );
  }

  private onAutomationSwitched(
    e: RecordedEvent<'AutomationPaused' | 'AutomationResumed'>,
    audit: AuditFields,
  ): void {
    const d = e.data;
    audit.actor = actorName(d.by);
    const prev = this.automation();
    const next: AutomationView = {
      ...prev,
      paused: e.type === 'AutomationPaused',
      by: d.by,
      reason: d.reason,
      at: e.occurredAt,
    };
    this.s.putControl.run('automation', JSON.stringify(next));
  }

  private onPolicyActivated(e: RecordedEvent<'PolicyActivated'>, audit: AuditFields): void {
    const d = e.data;
    audit.actor = d.author;
    audit.policyVersion = d.version;
    const next: AutomationView = {
      ...this.automation(),
      policy: {
        policyId: d.policyId,
        version: d.version,
        digest: d.digest,
        author: d.author,
        at: e.occurredAt,
      },
    };
    this.s.putControl.run('automation', JSON.stringify(next));
  }

  private onIdentityCatalogued(e: RecordedEvent<'IdentityCatalogued'>, audit: AuditFields): void {
    audit.actor = actorName(e.data.by);
    audit.identityKey = identityKey(e.data.entry);
  }

  /** An audit row without anything extracted from the payload (for events that failed to apply). */
  private indexOnly(e: RecordedEvent): void {
    this.writeAudit(e, NO_AUDIT_FIELDS);
  }

  /** The audit row of an event: its envelope and what was extracted from its payload. */
  private writeAudit(e: RecordedEvent, audit: AuditFields): void {
    const occurredMs = Date.parse(e.occurredAt);
    this.s.insertAudit.run({
      position: e.position,
      eventId: e.id,
      type: e.type,
      stream: e.stream,
      ...audit,
      occurredAt: e.occurredAt,
      occurredMs: Number.isFinite(occurredMs) ? occurredMs : 0,
      recordedAt: e.recordedAt,
    });
  }

  /** The kill-switch and active-policy view. */
  automation(): AutomationView {
    const row = this.s.getControl.get('automation');
    return row
      ? (JSON.parse(row.doc) as AutomationView)
      : { paused: false, by: null, reason: null, at: null, policy: null };
  }

  /** occurredAt and recordedAt of the latest detection event with this id on an identity. */
  detectionTimes(key: string, detectionId: string): { occurredAt: string; recordedAt: string } | undefined {
    const r = this.s.detectionTimes.get(key, detectionId);
    return r ? { occurredAt: r.occurred_at, recordedAt: r.recorded_at } : undefined;
  }
}
