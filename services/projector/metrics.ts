import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { EventStore } from '../../platform/eventstore/port.ts';
import type { RecordedEvent } from '../../schemas/events.ts';
import type { Projector } from './projector.ts';
import { actionCounts } from './queries.ts';
import { ACTION_STATUSES } from './views.ts';

/**
 * Prometheus metrics of the whole process (one registry, served at GET /metrics). Services record
 * through the helper functions below; the projector records what the event stream shows by itself
 * (decision latency, executor failures) for events it applies live, so every deployment mode gets
 * them without the deciding or executing process being scraped.
 */
export const metrics = new Registry();
collectDefaultMetrics({ register: metrics, prefix: 'tourniquet_' });

const detectionsIn = new Counter({
  name: 'tourniquet_detections_received_total',
  help: 'Normalized detections received, by outcome (accepted, duplicate, rejected as invalid).',
  labelNames: ['outcome', 'via'] as const,
  registers: [metrics],
});

const decisionLatency = new Histogram({
  name: 'tourniquet_decision_latency_seconds',
  help: 'Decision latency by stage: detection_to_proposal (detection time to the proposal being recorded), proposal_to_approval (recorded proposal to final approval), decide (decider core, when the decider reports it).',
  labelNames: ['stage'] as const,
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 14400],
  registers: [metrics],
});

const executorErrors = new Counter({
  name: 'tourniquet_executor_errors_total',
  help: 'Executor errors by provider, code and phase. final="true": recorded ActionFailed; final="false": a retried attempt.',
  labelNames: ['provider', 'code', 'phase', 'final'] as const,
  registers: [metrics],
});

const consumerLag = new Gauge({
  name: 'tourniquet_consumer_lag_messages',
  help: 'Kafka consumer lag (messages behind the partition head), per group, topic and partition.',
  labelNames: ['group', 'topic', 'partition'] as const,
  registers: [metrics],
});

const httpRequests = new Counter({
  name: 'tourniquet_http_requests_total',
  help: 'HTTP API requests by method, route and status code.',
  labelNames: ['method', 'route', 'status'] as const,
  registers: [metrics],
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

/** Count readers of the Kafka buses in this process, by service (see registerBusStats). */
const busStats = new Map<string, () => object>();

new Counter({
  name: 'tourniquet_kafka_bus_total',
  help: 'Kafka bus counts since the process started, by service and what was counted: published, handled, deadLettered, commits; handlerFailures (a chunk failed and is retried uncommitted), producersRetired (a send failed and its producer was replaced), consumerRestarts (a crashed group member was replaced). Alert on increases of the last three.',
  labelNames: ['service', 'what'] as const,
  registers: [metrics],
  collect() {
    this.reset();
    for (const [service, read] of busStats) {
      for (const [what, value] of Object.entries(read())) {
        if (typeof value === 'number' && value > 0) this.inc({ service, what }, value);
      }
    }
  },
});

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

// ------------------------------------------------------------------ helpers for every service

export function recordDetectionsIn(
  n: number,
  outcome: 'accepted' | 'duplicate' | 'invalid',
  via = 'http',
): void {
  if (n > 0) detectionsIn.inc({ outcome, via }, n);
}

export function observeDecisionLatency(seconds: number, stage = 'decide'): void {
  if (Number.isFinite(seconds) && seconds >= 0) decisionLatency.observe({ stage }, seconds);
}

/** For retried provider errors (the final failure is counted from its ActionFailed event). */
export function recordExecutorError(
  provider: string,
  code: string,
  phase: 'apply' | 'verify' | 'rollback',
): void {
  executorErrors.inc({ provider, code, phase, final: 'false' });
}

export function setConsumerLag(group: string, topic: string, partition: number, lag: number): void {
  consumerLag.set({ group, topic, partition: String(partition) }, lag);
}

/** Exposes a bus's counts (an object of numbers, read at each scrape) under `service`. */
export function registerBusStats(service: string, read: () => object): () => void {
  busStats.set(service, read);
  return () => {
    if (busStats.get(service) === read) busStats.delete(service);
  };
}

export function recordHttpRequest(method: string, route: string, status: number): void {
  httpRequests.inc({ method, route, status: String(status) });
}

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
      executorErrors.inc({
        provider: e.data.provider,
        code: e.data.error.code,
        phase: e.data.phase,
        final: 'true',
      });
    }
  });
  return () => {
    off();
    if (bound?.projector === projector) bound = undefined;
  };
}
