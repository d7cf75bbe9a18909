import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics of the whole process (one registry, served at GET /metrics). Services record
 * through the helper functions below and may register their own collectors on `metrics` (the
 * projector's view gauges live in services/projector/metrics.ts).
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
  help: 'Decision latency by stage: detection_to_proposal (detection time to the proposal being recorded), proposal_to_approval (recorded proposal to final approval).',
  labelNames: ['stage'] as const,
  buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900, 3600, 14400],
  registers: [metrics],
});

const decisionsHeld = new Counter({
  name: 'tourniquet_decisions_without_action_total',
  help: 'Decisions that took no automatic action, by what happened: shadowed (a rule in monitor mode, label rule), storm (StormDetected, label rule), or no_action (a detection without an automatic action: a NoActionTaken, or the reasons carried on DetectionReceived; label = the first reason code).',
  labelNames: ['kind', 'label'] as const,
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

const authFailures = new Counter({
  name: 'tourniquet_auth_failures_total',
  help: 'Failed authentications of the HTTP API (401), by reason: invalid (bad key, signature, claims) or expired.',
  labelNames: ['reason'] as const,
  registers: [metrics],
});

const authThrottled = new Counter({
  name: 'tourniquet_auth_throttled_total',
  help: 'Requests refused with 429 because their source address or key id had too many failed authentications in the window.',
  labelNames: ['scope'] as const,
  registers: [metrics],
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

// ------------------------------------------------------------------ helpers for every service

export function recordDetectionsIn(
  n: number,
  outcome: 'accepted' | 'duplicate' | 'invalid',
  via = 'http',
): void {
  if (n > 0) detectionsIn.inc({ outcome, via }, n);
}

export function observeDecisionLatency(
  seconds: number,
  stage: 'detection_to_proposal' | 'proposal_to_approval',
): void {
  if (Number.isFinite(seconds) && seconds >= 0) decisionLatency.observe({ stage }, seconds);
}

/** For retried provider errors (the final failure is counted from its ActionFailed event). */
export function recordExecutorError(
  provider: string,
  code: string,
  phase: 'apply' | 'verify' | 'rollback' | 'feedback',
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

/** A failure the executor recorded as ActionFailed (counted by the projector from the event). */
export function recordExecutorFailure(
  provider: string,
  code: string,
  phase: 'apply' | 'verify' | 'rollback',
): void {
  executorErrors.inc({ provider, code, phase, final: 'true' });
}

export function recordHttpRequest(method: string, route: string, status: number): void {
  httpRequests.inc({ method, route, status: String(status) });
}

export function recordAuthFailure(reason: 'invalid' | 'expired'): void {
  authFailures.inc({ reason });
}

export function recordAuthThrottled(scope: 'address' | 'key'): void {
  authThrottled.inc({ scope });
}

/** Counted by the projector from the decider's events (ActionShadowed, StormDetected, NoActionTaken, DetectionReceived.noAction). */
export function recordDecisionWithoutAction(kind: 'shadowed' | 'storm' | 'no_action', label: string): void {
  decisionsHeld.inc({ kind, label });
}
