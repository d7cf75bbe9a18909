import { Counter, Gauge } from 'prom-client';
import type { EventStore } from '../../platform/eventstore/port.ts';
import {
  metrics,
  observeDecisionLatency,
  recordDecisionWithoutAction,
  recordExecutorFailure,
} from '../../platform/metrics.ts';
import type { RecordedEvent } from '../../schemas/events.ts';
import type { Projector } from './projector.ts';
import { actionCounts } from './queries.ts';
import { ACTION_STATUSES } from './views.ts';

/**
 * The projector's gauges (what the views hold) and the latencies and failures it reads from the
 * event stream for events it applies live, so every deployment mode gets them without the deciding
 * or executing process being scraped. All on the process registry of platform/metrics.ts.
 */
let bound: { projector: Projector; store: EventStore } | undefined;

new Gauge({
  name: 'tourniquet_actions',
  help: 'Actions in the projection by status (verified: executed actions whose probes held).',
  labelNames: ['status'] as const,
  registers: [metrics],
  collect() {
    if (!bound?.projector.database.open) return;
    const counts = actionCounts(bound.projector);
    for (const s of ACTION_STATUSES) this.set({ status: s }, counts[s]);
  },
});

new Gauge({
  name: 'tourniquet_projection_lag_events',
  help: 'Events in the store not yet in the projections (head position minus projector checkpoint).',
  registers: [metrics],
  async collect() {
    if (!bound) return;
    try {
      const head = await bound.store.headPosition();
      this.set(Math.max(0, head - bound.projector.position));
    } catch {
      // store closed: leave the last value
    }
  },
});

new Gauge({
  name: 'tourniquet_projection_position',
  help: 'Global position of the last event applied to the projections.',
  registers: [metrics],
  collect() {
    if (bound) this.set(bound.projector.position);
  },
});

new Gauge({
  name: 'tourniquet_projection_errors',
  help: 'Events the projector could not apply (logged and skipped) since start.',
  registers: [metrics],
  collect() {
    if (bound) this.set(bound.projector.errorCount);
  },
});

new Gauge({
  name: 'tourniquet_projection_live',
  help: '1 while the projector follows the store live.',
  registers: [metrics],
  collect() {
    if (bound) this.set(bound.projector.live ? 1 : 0);
  },
});

// Storage faults of the event store this process writes to (read from the bound store at scrape time).
new Gauge({
  name: 'tourniquet_store_writable',
  help: 'Whether the event store accepts writes: 0 from a storage fault (disk full, read-only file system, locked or corrupt database, I/O error) until a write succeeds again.',
  registers: [metrics],
  collect() {
    const h = bound?.store.health?.();
    this.set(h && !h.writable ? 0 : 1);
  },
});

new Counter({
  name: 'tourniquet_store_faults_total',
  help: 'Storage faults of the event store since the process started, by code (SQLITE_FULL, SQLITE_READONLY, SQLITE_BUSY, SQLITE_CORRUPT, SQLITE_IOERR_*, ...). Each is answered 503 STORE_UNAVAILABLE.',
  labelNames: ['code'] as const,
  registers: [metrics],
  collect() {
    this.reset();
    for (const [code, n] of Object.entries(bound?.store.health?.().faults ?? {})) this.inc({ code }, n);
  },
});

/**
 * Makes the view-derived gauges read this projector and store, and records decision latency and
 * executor failures from the events it applies live. Returns an unbind function.
 */
export function bindProjectorMetrics(projector: Projector, store: EventStore): () => void {
  bound = { projector, store };
  const off = projector.onLiveEvent((e: RecordedEvent, p: Projector) => {
    if (e.type === 'ActionProposed') {
      let newest: number | undefined;
      for (const id of e.data.detectionIds) {
        const t = p.detectionTimes(`${e.data.identity.provider}:${e.data.identity.id}`, id);
        const ms = t ? Date.parse(t.occurredAt) : Number.NaN;
        if (Number.isFinite(ms) && (newest === undefined || ms > newest)) newest = ms;
      }
      if (newest !== undefined)
        observeDecisionLatency((Date.parse(e.recordedAt) - newest) / 1000, 'detection_to_proposal');
    } else if (e.type === 'ActionApproved' && e.data.final && e.data.by.kind === 'human') {
      const proposedAt = p.database
        .prepare<[string], { doc: string }>('SELECT doc FROM actions WHERE action_id = ?')
        .get(e.data.actionId);
      if (proposedAt) {
        const a = JSON.parse(proposedAt.doc) as { proposedAt: string };
        observeDecisionLatency(
          (Date.parse(e.occurredAt) - Date.parse(a.proposedAt)) / 1000,
          'proposal_to_approval',
        );
      }
    } else if (e.type === 'ActionFailed') {
      recordExecutorFailure(e.data.provider, e.data.error.code, e.data.phase);
    } else if (e.type === 'ActionShadowed') {
      recordDecisionWithoutAction('shadowed', e.data.ruleId);
    } else if (e.type === 'StormDetected') {
      recordDecisionWithoutAction('storm', e.data.ruleId);
    } else if (e.type === 'NoActionTaken') {
      recordDecisionWithoutAction('no_action', e.data.reasons[0]!.code);
    } else if (e.type === 'DetectionReceived' && e.data.noAction) {
      // a detection that joined a case carries its reasons instead of a NoActionTaken
      recordDecisionWithoutAction('no_action', e.data.noAction[0]!.code);
    }
  });
  return () => {
    off();
    if (bound?.projector === projector) bound = undefined;
  };
}
