/**
 * Distributed mode: one Tourniquet service per process (`tourniquet serve <service> [--config FILE]`),
 * Kafka between ingest and the decider, a shared event store behind decider, executor and projector.
 * Every setting comes from a YAML file and/or environment variables (env wins); docs/kafka.md lists
 * them all. The embedded stack (app/embedded.ts) wires the same services in one process.
 *
 * The event store (`store.kind`) is SQLite (one file; several processes on one host share it in WAL mode:
 * appends are IMMEDIATE transactions guarded by expected revisions) or KurrentDB (`store.kurrentdb.
 * connectionString`), opened by platform/eventstore/open.ts.
 */

import {
  appendFileSync,
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { createKafkaBus, DEFAULT_KAFKA_CLIENT, KAFKA_CLIENTS } from '../platform/bus/kafka-clients.ts';
import type { KafkaClientBus } from '../platform/bus/kafka-common.ts';
import { type Bus, type BusSubscription, TOPICS } from '../platform/bus/port.ts';
import { issuesFromZod, TourniquetError, WrongExpectedRevisionError } from '../platform/errors.ts';
import {
  EVENT_STORE_KINDS,
  type EventStoreConfig,
  type OpenedEventStore,
  openEventStore,
} from '../platform/eventstore/open.ts';
import { createLogger } from '../platform/log.ts';
import { registerBusStats, setConsumerLag } from '../platform/metrics.ts';
import type { Anchoring } from '../platform/witness/anchorer.ts';
import type { ProviderCapabilities } from '../schemas/capabilities.ts';
import { identityKey } from '../schemas/detection.ts';
import type { ActionType } from '../schemas/events.ts';
import { configureJsonLimits, DEFAULT_JSON_LIMITS } from '../schemas/text.ts';
import { loadOrCreateAuthConfig } from '../services/api/auth.ts';
import { authFileOf } from '../services/api/auth-file.ts';
import { writeAdminTokenFile } from '../services/api/console/admin-token-file.ts';
import { buildApi } from '../services/api/server.ts';
import { activatePolicy, recordCatalogue } from '../services/decider/activation.ts';
import { loadDefaultPolicy, loadPolicyFile } from '../services/decider/policy/load.ts';
import { DeciderService } from '../services/decider/service.ts';
import { type DryRunCall, DryRunProvider } from '../services/executor/providers/dry-run.ts';
import type {
  ApplyResult,
  IdentityProvider,
  PriorState,
  Probe,
  ProviderAction,
  RevertResult,
} from '../services/executor/providers/port.ts';
import { BusIngestGateway } from '../services/ingest/gateway.ts';
import { FORMATS, type FormatName } from '../services/ingest/normalizers/index.ts';
import { RawConsumer } from '../services/ingest/raw-consumer.ts';
import { Projector } from '../services/projector/projector.ts';
import { loadCatalogueFile } from './catalogue-file.ts';
import { consoleSessionsFromEnv } from './console-sessions.ts';
import { startConfiguredAnchoring } from './integrity.ts';
import { startMetricsServer } from './metrics-server.ts';
import {
  capabilitiesOf,
  defaultCapabilities,
  loadProvidersConfig,
  startConfiguredExecutor,
} from './providers-config.ts';

/** Moved to platform/eventstore/coalescing.ts; re-exported for existing imports. */

export const SERVICES = ['ingest', 'decider', 'executor', 'projector'] as const;
export type ServiceName = (typeof SERVICES)[number];

const RawTopic = z.object({
  topic: z.string().min(1),
  format: z.enum(['auto', ...FORMATS]).default('auto'),
  encoding: z.enum(['auto', 'json', 'avro']).default('auto'),
});

export const ServeConfigSchema = z.object({
  kafka: z
    .object({
      brokers: z.array(z.string().min(1)).min(1).default(['127.0.0.1:19092']),
      clientId: z.string().min(1).default('tourniquet'),
      /** The client library under the Kafka bus (both behave the same; see docs/kafka.md). */
      client: z.enum(KAFKA_CLIENTS).default(DEFAULT_KAFKA_CLIENT),
      /** Partitions of the topics Tourniquet creates (detections, DLQ). */
      partitions: z.number().int().min(1).max(1000).default(6),
      sessionTimeoutMs: z.number().int().min(1000).max(300_000).default(30_000),
      heartbeatIntervalMs: z.number().int().min(100).max(60_000).default(3000),
      /** Messages handed to the decider (or normalized by ingest) per call. */
      maxBatch: z.number().int().min(1).max(100_000).default(1000),
      partitionsConsumedConcurrently: z.number().int().min(1).max(64).default(2),
    })
    .prefault({}),
  schemaRegistry: z.object({ url: z.url().default('http://127.0.0.1:18081/apis/ccompat/v7') }).prefault({}),
  topics: z
    .object({
      detections: z.string().min(1).default(TOPICS.detections),
      deadLetters: z.string().min(1).default(TOPICS.deadLetters),
    })
    .prefault({}),
  groups: z
    .object({
      ingest: z.string().min(1).default('tourniquet.ingest'),
      decider: z.string().min(1).default('tourniquet.decider'),
    })
    .prefault({}),
  ingest: z
    .object({
      rawTopics: z.array(RawTopic).default([]),
      maxValueBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(1024 * 1024),
      /** Deepest nesting of a detection's `raw` and `evidence` (schemas/text.ts). */
      maxJsonDepth: z.number().int().min(1).max(1000).default(DEFAULT_JSON_LIMITS.maxDepth),
      /** Largest JSON of a detection's `raw` or `evidence`, bytes. */
      maxJsonBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(DEFAULT_JSON_LIMITS.maxBytes),
    })
    .prefault({}),
  store: z
    .object({
      /** Which event store: one SQLite file (one host) or a KurrentDB server/cluster. */
      kind: z.enum(EVENT_STORE_KINDS).default('sqlite'),
      /** Projections, auth settings and dry-run journals; with SQLite also the default store file. */
      dataDir: z.string().min(1).default('.tourniquet'),
      /** SQLite file shared by decider, executor and projector processes (default <dataDir>/events.db). */
      path: z.string().min(1).optional(),
      durability: z.enum(['full', 'normal']).default('full'),
      /** SQLite: group concurrent appends into one transaction (one fsync) — see CoalescingEventStore. */
      coalesceAppends: z.boolean().default(true),
      kurrentdb: z
        .object({
          /** e.g. kurrentdb://kurrentdb:2113?tls=false; required when kind is kurrentdb. */
          connectionString: z.string().min(1).optional(),
          /** Bytes per batch-append request (client default 3 MiB). */
          batchAppendSize: z
            .number()
            .int()
            .min(1024)
            .max(64 * 1024 * 1024)
            .optional(),
        })
        .prefault({}),
    })
    .superRefine((store, ctx) => {
      if (store.kind === 'kurrentdb' && !store.kurrentdb.connectionString) {
        ctx.addIssue({
          code: 'custom',
          path: ['kurrentdb', 'connectionString'],
          message:
            'required when store.kind is kurrentdb (TOURNIQUET_KURRENTDB_CONNECTION_STRING), e.g. kurrentdb://host:2113?tls=false',
        });
      }
    })
    .prefault({}),
  decider: z
    .object({
      policy: z.string().min(1).optional(),
      catalogue: z.string().min(1).optional(),
      tickMs: z.number().int().min(10).max(3_600_000).default(5000),
      /** Identity states kept in memory; the least recently used beyond it are re-read from their streams. */
      maxCachedIdentities: z.number().int().min(1).max(100_000_000).default(200_000),
    })
    .prefault({}),
  executor: z
    .object({
      /** Stable across restarts: a restarted executor recognises its own unfinished claims. */
      id: z.string().min(1).default(`executor-${hostname()}`),
      leaseMs: z.number().int().min(1000).default(60_000),
      /**
       * Dry-run provider journals shared by several executors: each writes <dir>/dry-run-<id>.jsonl and
       * they simulate ONE identity provider (an action applied by one is applied for all). Unset: the
       * journal is <dataDir>/dry-run-calls.jsonl and the simulated provider is this process's own.
       */
      dryRunJournalDir: z.string().min(1).optional(),
      /**
       * Provider configuration (YAML, see docs/executor.md): which identity provider is Keycloak, a
       * webhook or the dry-run. Unset: the dry-run provider for every identity.
       */
      providersFile: z.string().min(1).optional(),
    })
    .prefault({}),
  api: z
    .object({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(7420),
    })
    .prefault({}),
  /**
   * Tamper evidence (docs/audit.md): with SQLite every process checks the chain as it appends and
   * sweeps it; the projector publishes the head to `anchor` (file:<path>, http(s)://…, or
   * kafka:<topic>, a compacted topic on kafka.brokers) every `anchorIntervalMs`.
   */
  integrity: z
    .object({
      anchor: z.string().min(1).optional(),
      anchorIntervalMs: z.number().int().min(100).max(86_400_000).default(60_000),
      storeId: z.string().min(1).default('tourniquet'),
      sweepIntervalMs: z
        .number()
        .int()
        .min(0)
        .max(86_400_000)
        .default(15 * 60_000),
    })
    .prefault({}),
  /** Ingest, decider and executor have no API: with a port set they serve /metrics and /healthz. */
  metrics: z
    .object({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).optional(),
    })
    .prefault({}),
});

export type ServeConfig = z.infer<typeof ServeConfigSchema>;
export type ServeConfigInput = z.input<typeof ServeConfigSchema>;

/** Environment variable → config path; a value is parsed by the path's type. */
export const SERVE_ENV: ReadonlyArray<[string, string, 'string' | 'int' | 'list' | 'bool' | 'rawTopics']> = [
  ['TOURNIQUET_KAFKA_BROKERS', 'kafka.brokers', 'list'],
  ['TOURNIQUET_KAFKA_CLIENT_ID', 'kafka.clientId', 'string'],
  ['TOURNIQUET_KAFKA_CLIENT', 'kafka.client', 'string'],
  ['TOURNIQUET_KAFKA_PARTITIONS', 'kafka.partitions', 'int'],
  ['TOURNIQUET_KAFKA_SESSION_TIMEOUT_MS', 'kafka.sessionTimeoutMs', 'int'],
  ['TOURNIQUET_KAFKA_HEARTBEAT_INTERVAL_MS', 'kafka.heartbeatIntervalMs', 'int'],
  ['TOURNIQUET_KAFKA_MAX_BATCH', 'kafka.maxBatch', 'int'],
  ['TOURNIQUET_KAFKA_PARTITIONS_CONCURRENTLY', 'kafka.partitionsConsumedConcurrently', 'int'],
  ['TOURNIQUET_SCHEMA_REGISTRY_URL', 'schemaRegistry.url', 'string'],
  ['TOURNIQUET_DETECTIONS_TOPIC', 'topics.detections', 'string'],
  ['TOURNIQUET_DLQ_TOPIC', 'topics.deadLetters', 'string'],
  ['TOURNIQUET_INGEST_GROUP', 'groups.ingest', 'string'],
  ['TOURNIQUET_DECIDER_GROUP', 'groups.decider', 'string'],
  ['TOURNIQUET_RAW_TOPICS', 'ingest.rawTopics', 'rawTopics'],
  ['TOURNIQUET_MAX_VALUE_BYTES', 'ingest.maxValueBytes', 'int'],
  ['TOURNIQUET_MAX_JSON_DEPTH', 'ingest.maxJsonDepth', 'int'],
  ['TOURNIQUET_MAX_JSON_BYTES', 'ingest.maxJsonBytes', 'int'],
  ['TOURNIQUET_EVENT_STORE', 'store.kind', 'string'],
  ['TOURNIQUET_DATA_DIR', 'store.dataDir', 'string'],
  ['TOURNIQUET_STORE_PATH', 'store.path', 'string'],
  ['TOURNIQUET_DURABILITY', 'store.durability', 'string'],
  ['TOURNIQUET_COALESCE_APPENDS', 'store.coalesceAppends', 'bool'],
  ['TOURNIQUET_KURRENTDB_CONNECTION_STRING', 'store.kurrentdb.connectionString', 'string'],
  ['TOURNIQUET_KURRENTDB_BATCH_APPEND_SIZE', 'store.kurrentdb.batchAppendSize', 'int'],
  ['TOURNIQUET_POLICY', 'decider.policy', 'string'],
  ['TOURNIQUET_CATALOGUE', 'decider.catalogue', 'string'],
  ['TOURNIQUET_TICK_MS', 'decider.tickMs', 'int'],
  ['TOURNIQUET_DECIDER_MAX_IDENTITIES', 'decider.maxCachedIdentities', 'int'],
  ['TOURNIQUET_EXECUTOR_ID', 'executor.id', 'string'],
  ['TOURNIQUET_EXECUTOR_LEASE_MS', 'executor.leaseMs', 'int'],
  ['TOURNIQUET_DRY_RUN_JOURNAL_DIR', 'executor.dryRunJournalDir', 'string'],
  ['TOURNIQUET_PROVIDERS_FILE', 'executor.providersFile', 'string'],
  ['TOURNIQUET_METRICS_HOST', 'metrics.host', 'string'],
  ['TOURNIQUET_METRICS_PORT', 'metrics.port', 'int'],
  ['TOURNIQUET_API_HOST', 'api.host', 'string'],
  ['TOURNIQUET_API_PORT', 'api.port', 'int'],
  ['TOURNIQUET_ANCHOR', 'integrity.anchor', 'string'],
  ['TOURNIQUET_ANCHOR_INTERVAL_MS', 'integrity.anchorIntervalMs', 'int'],
  ['TOURNIQUET_ANCHOR_STORE_ID', 'integrity.storeId', 'string'],
  ['TOURNIQUET_CHAIN_SWEEP_MS', 'integrity.sweepIntervalMs', 'int'],
];

/** Fallbacks the test scripts print (`scripts/kafka.sh up` → KAFKA_BOOTSTRAP=…). */
const ENV_FALLBACKS: Record<string, string> = {
  TOURNIQUET_KAFKA_BROKERS: 'KAFKA_BOOTSTRAP',
  TOURNIQUET_SCHEMA_REGISTRY_URL: 'SCHEMA_REGISTRY_URL',
};

/** "topic[:format[:encoding]],…" → raw topic entries. */
export function parseRawTopicsEnv(
  value: string,
): Array<{ topic: string; format?: string; encoding?: string }> {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => {
      const [topic, format, encoding] = s.split(':');
      return { topic: topic!, ...(format ? { format } : {}), ...(encoding ? { encoding } : {}) };
    });
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = target;
  for (const p of parts.slice(0, -1)) {
    const next = cur[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}

function configInvalid(
  message: string,
  issues: Array<{ path: string; message: string }> = [],
): TourniquetError {
  return new TourniquetError('CONFIG_INVALID', message, { status: 500, details: { issues } });
}

/**
 * The serve configuration: defaults, then the YAML file (if any), then environment variables;
 * validated by zod. Relative paths in the file are resolved against the file's directory.
 */
export function loadServeConfig(opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): ServeConfig {
  const env = opts.env ?? process.env;
  let raw: Record<string, unknown> = {};
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (e) {
      throw configInvalid(`cannot read config file ${opts.file}: ${(e as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = parseYaml(text);
    } catch (e) {
      throw configInvalid(`config file ${opts.file} is not valid YAML: ${(e as Error).message}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc))
        throw configInvalid(`config file ${opts.file} must hold a mapping`);
      raw = doc as Record<string, unknown>;
    }
    const base = dirname(resolve(opts.file));
    for (const path of [
      'store.dataDir',
      'store.path',
      'decider.policy',
      'decider.catalogue',
      'executor.dryRunJournalDir',
      'executor.providersFile',
    ]) {
      const [a, b] = path.split('.') as [string, string];
      const section = raw[a] as Record<string, unknown> | undefined;
      const v = section?.[b];
      if (typeof v === 'string' && v.length > 0) section![b] = resolve(base, v);
    }
  }
  const issues: Array<{ path: string; message: string }> = [];
  for (const [name, path, kind] of SERVE_ENV) {
    const value = env[name] ?? (ENV_FALLBACKS[name] ? env[ENV_FALLBACKS[name]!] : undefined);
    if (value === undefined || value === '') continue;
    switch (kind) {
      case 'string':
        setPath(raw, path, value);
        break;
      case 'int': {
        const n = Number(value);
        if (!Number.isInteger(n)) issues.push({ path: name, message: `not an integer: ${value}` });
        else setPath(raw, path, n);
        break;
      }
      case 'bool':
        if (!/^(true|false|1|0|yes|no)$/i.test(value))
          issues.push({ path: name, message: `not a boolean: ${value}` });
        else setPath(raw, path, /^(true|1|yes)$/i.test(value));
        break;
      case 'list':
        setPath(
          raw,
          path,
          value
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s.length > 0),
        );
        break;
      case 'rawTopics':
        setPath(raw, path, parseRawTopicsEnv(value));
        break;
    }
  }
  if (issues.length > 0)
    throw configInvalid(
      `serve configuration is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  const parsed = ServeConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const zi = issuesFromZod(parsed.error.issues);
    throw configInvalid(
      `serve configuration is invalid: ${zi.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      zi,
    );
  }
  return parsed.data;
}

export function storePathOf(config: ServeConfig): string {
  return config.store.path ?? join(config.store.dataDir, 'events.db');
}

/** The event store settings of a serve configuration, for openEventStore. */
export function eventStoreConfigOf(config: ServeConfig): EventStoreConfig {
  if (config.store.kind === 'kurrentdb') {
    const { connectionString, batchAppendSize } = config.store.kurrentdb;
    if (!connectionString) throw configInvalid('store.kurrentdb.connectionString is required for KurrentDB');
    return { kind: 'kurrentdb', connectionString, ...(batchAppendSize ? { batchAppendSize } : {}) };
  }
  return {
    kind: 'sqlite',
    path: storePathOf(config),
    durability: config.store.durability,
    coalesceAppends: config.store.coalesceAppends,
    integrity: { sweepIntervalMs: config.integrity.sweepIntervalMs },
  };
}

// ---------------------------------------------------------------------------------------------------

/**
 * The dry-run provider of one executor among several that share `executor.dryRunJournalDir`: together
 * they simulate ONE identity provider, as a real one would be shared. Calls go to this executor's own
 * DryRunProvider (journal `<dir>/dry-run-<executorId>.jsonl`); the other executors' journals in the
 * directory are tailed so that an action another executor applied counts as applied here too: `apply`
 * of such an action is an idempotent no-op (no effect), `isApplied` says yes (the takeover of a dead
 * executor's claim reconciles instead of applying again), `verify` sees the effect. Without this a
 * takeover would double an effect in the simulation that a real provider would have recognised.
 */
export class SharedDryRunProvider implements IdentityProvider {
  readonly name: string;
  readonly inner: DryRunProvider;
  /** The same provider, called through the port. */
  private readonly port: IdentityProvider;
  private readonly dir: string;
  private readonly own: string;
  private readonly journalPath: string;
  /** Per peer journal: bytes consumed so far. */
  private readonly offsets = new Map<string, number>();
  /** Per action id: the peer journal whose latest line left it applied (deleted when reverted). */
  private readonly peerApplied = new Map<string, string>();
  private readonly log: Logger | undefined;

  constructor(opts: { dir: string; executorId: string; name?: string; log?: Logger }) {
    this.dir = opts.dir;
    this.log = opts.log;
    mkdirSync(this.dir, { recursive: true });
    this.own = `dry-run-${opts.executorId.replace(/[^A-Za-z0-9._-]/g, '_')}.jsonl`;
    this.journalPath = join(this.dir, this.own);
    this.inner = new DryRunProvider({
      journalPath: this.journalPath,
      ...(opts.name ? { name: opts.name } : {}),
    });
    this.port = this.inner;
    this.name = this.inner.name;
  }

  /** Reads what the other executors appended to their journals since the last look. */
  private refresh(): void {
    let files: string[];
    try {
      files = readdirSync(this.dir).filter((f) => /^dry-run-.*\.jsonl$/.test(f) && f !== this.own);
    } catch (err) {
      this.log?.warn({ err, dir: this.dir }, 'dry-run journal directory unreadable: peers not seen');
      return;
    }
    for (const f of files) {
      const path = join(this.dir, f);
      const from = this.offsets.get(f) ?? 0;
      let size: number;
      try {
        size = statSync(path).size;
      } catch {
        continue; // removed since it was listed
      }
      if (size <= from) continue;
      const buf = Buffer.alloc(size - from);
      const fd = openSync(path, 'r');
      try {
        readSync(fd, buf, 0, buf.length, from);
      } finally {
        closeSync(fd);
      }
      const end = buf.lastIndexOf(0x0a); // a line being written is read next time, whole
      if (end < 0) continue;
      this.offsets.set(f, from + end + 1);
      for (const line of buf.subarray(0, end).toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        let call: DryRunCall;
        try {
          call = JSON.parse(line) as DryRunCall;
        } catch (err) {
          this.log?.warn(
            { err, journal: f, line: line.slice(0, 200) },
            'dry-run peer journal line is not JSON: skipped',
          );
          continue;
        }
        if (call.phase === 'apply' && call.effect) this.peerApplied.set(call.actionId, f);
        else if (call.phase === 'revert') this.peerApplied.delete(call.actionId);
      }
    }
  }

  private appliedByPeer(actionId: string): string | undefined {
    this.refresh();
    return this.peerApplied.get(actionId);
  }

  supports(action: ActionType): boolean {
    return this.port.supports(action);
  }

  capture(a: ProviderAction): Promise<PriorState> {
    return this.port.capture(a);
  }

  async apply(a: ProviderAction, prior: PriorState): Promise<ApplyResult> {
    const peer = this.appliedByPeer(a.actionId);
    if (peer === undefined) return this.port.apply(a, prior);
    const key = identityKey(a.identity);
    const call: DryRunCall = {
      phase: 'apply',
      actionId: a.actionId,
      action: a.action,
      identity: key,
      effect: false,
    };
    appendFileSync(this.journalPath, `${JSON.stringify(call)}\n`);
    return { dryRun: true, wouldCall: `${a.action}(${key})`, idempotentReplay: true, appliedBy: peer };
  }

  async isApplied(a: ProviderAction, prior: PriorState): Promise<boolean> {
    const mine = await this.port.isApplied(a, prior);
    return mine || this.appliedByPeer(a.actionId) !== undefined;
  }

  async verify(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<Probe[]> {
    const probes = await this.port.verify(a, prior, result);
    if (probes.every((p) => p.ok)) return probes;
    const peer = this.appliedByPeer(a.actionId);
    if (peer === undefined) return probes;
    // the effect is in the shared simulated provider, applied through another executor's journal
    return probes.map((p) => ({ ...p, ok: true, detail: `applied by the executor of ${peer} (simulated)` }));
  }

  revert(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<RevertResult> {
    return this.port.revert(a, prior, result);
  }
}

/** For the projector process: human commands are decided here, detections come from Kafka to the deciders. */
class NoDetectionsBus implements Bus {
  readonly name = 'none';
  async publish(): Promise<never> {
    throw new TourniquetError('BUS_UNAVAILABLE', 'this process does not publish detections', { status: 503 });
  }
  async subscribe(): Promise<BusSubscription> {
    return { stop: async () => undefined };
  }
  async close(): Promise<void> {}
}

export interface ServeHandle {
  service: ServiceName;
  /** projector: the API's URL. */
  url?: string;
  /** projector: a local admin token for the API (kept in adminTokenFile, never printed). */
  adminToken?: string;
  adminTokenFile?: string;
  stop(): Promise<void>;
}

function kafkaBus(config: ServeConfig, log: Logger, service: ServiceName): KafkaClientBus {
  const bus = createKafkaBus(config.kafka.client, {
    brokers: config.kafka.brokers,
    clientId: config.kafka.clientId,
    registryUrl: config.schemaRegistry.url,
    topics: {
      [TOPICS.detections]: config.topics.detections,
      [TOPICS.deadLetters]: config.topics.deadLetters,
    },
    groupIds: { decider: config.groups.decider, ingest: config.groups.ingest },
    partitions: config.kafka.partitions,
    onConsumerLag: setConsumerLag,
    consumer: {
      sessionTimeoutMs: config.kafka.sessionTimeoutMs,
      heartbeatIntervalMs: config.kafka.heartbeatIntervalMs,
      maxHandlerBatch: config.kafka.maxBatch,
      partitionsConsumedConcurrently: config.kafka.partitionsConsumedConcurrently,
    },
    log,
  });
  registerBusStats(service, () => bus.stats);
  log.info({ kafkaClient: config.kafka.client }, 'Kafka bus client');
  return bus;
}

function openStore(config: ServeConfig, log: Logger): Promise<OpenedEventStore> {
  return openEventStore(eventStoreConfigOf(config), { log });
}

/** Several deciders may start at once: the loser of the activation race finds the policy active. */
async function activateOnce(run: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run();
      return;
    } catch (e) {
      if (!(e instanceof WrongExpectedRevisionError) || attempt >= 5) throw e;
    }
  }
}

/** Runs one service until `stop()`; resolves once it is serving. */
export async function runServe(service: ServiceName, config: ServeConfig, log: Logger): Promise<ServeHandle> {
  mkdirSync(config.store.dataDir, { recursive: true });
  const slog = log.child({ service });
  switch (service) {
    case 'ingest':
      return serveIngest(config, slog);
    case 'decider':
      return serveDecider(config, slog);
    case 'executor':
      return serveExecutor(config, slog);
    case 'projector':
      return serveProjector(config, slog);
  }
}

/** Reads the raw topics and publishes normalised detections. */
async function serveIngest(config: ServeConfig, slog: Logger): Promise<ServeHandle> {
  if (config.ingest.rawTopics.length === 0) {
    throw configInvalid(
      'ingest needs raw topics: set ingest.rawTopics in the config file or TOURNIQUET_RAW_TOPICS',
    );
  }
  const bus = kafkaBus(config, slog, 'ingest');
  try {
    await bus.start();
    const raw = new RawConsumer({
      bus,
      topics: config.ingest.rawTopics.map((t) => ({
        topic: t.topic,
        format: t.format as FormatName | 'auto',
        encoding: t.encoding,
      })),
      groupId: config.groups.ingest,
      maxValueBytes: config.ingest.maxValueBytes,
      log: slog,
    });
    await raw.start();
    slog.info({ rawTopics: config.ingest.rawTopics, detections: config.topics.detections }, 'ingest serving');
    return {
      service: 'ingest',
      async stop() {
        await raw.stop();
        await bus.close();
      },
    };
  } catch (e) {
    await bus.close();
    throw e;
  }
}

/** Activates the policy (and catalogue), then decides detections from the bus. */
async function serveDecider(config: ServeConfig, slog: Logger): Promise<ServeHandle> {
  const { store, kind, where } = await openStore(config, slog);
  const bus = kafkaBus(config, slog, 'decider');
  try {
    const policy = config.decider.policy ? loadPolicyFile(config.decider.policy) : loadDefaultPolicy();
    const now = new Date();
    await activateOnce(() => activatePolicy(store, policy, `tourniquet serve decider (${hostname()})`, now));
    const cataloguePath = config.decider.catalogue;
    if (cataloguePath) {
      await activateOnce(() => recordCatalogue(store, loadCatalogueFile(cataloguePath), cataloguePath, now));
    }
    await bus.start();
    const decider = new DeciderService({
      store,
      bus,
      policy,
      log: slog,
      tickMs: config.decider.tickMs,
      maxCachedIdentities: config.decider.maxCachedIdentities,
      capabilities: providerCapabilities(config.executor.providersFile),
    });
    await decider.start();
    slog.info(
      { store: kind, at: where, group: config.groups.decider, topic: config.topics.detections },
      'decider serving',
    );
    return {
      service: 'decider',
      async stop() {
        await decider.stop();
        await bus.close();
        await store.close();
      },
    };
  } catch (e) {
    await bus.close();
    await store.close();
    throw e;
  }
}

/** Runs approved actions against the configured providers. */
async function serveExecutor(config: ServeConfig, slog: Logger): Promise<ServeHandle> {
  const { store, kind, where } = await openStore(config, slog);
  const journalDir = config.executor.dryRunJournalDir;
  const { executor, providersFrom, signals } = await startConfiguredExecutor({
    store,
    dataDir: config.store.dataDir,
    providersFile: config.executor.providersFile,
    dryRun: () =>
      journalDir
        ? new SharedDryRunProvider({ dir: journalDir, executorId: config.executor.id, log: slog })
        : new DryRunProvider({ journalPath: join(config.store.dataDir, 'dry-run-calls.jsonl') }),
    executorId: config.executor.id,
    leaseMs: config.executor.leaseMs,
    log: slog,
    onStop: 'restart the service',
  });
  slog.info(
    {
      store: kind,
      at: where,
      executorId: config.executor.id,
      provider: providersFrom,
      ...(journalDir ? { dryRunJournalDir: journalDir } : {}),
    },
    'executor serving',
  );
  return {
    service: 'executor',
    async stop() {
      await executor.stop();
      await signals?.stop();
      await store.close();
    },
  };
}

/** Builds the views and serves the API; human commands are decided here. */
async function serveProjector(config: ServeConfig, slog: Logger): Promise<ServeHandle> {
  const { store, kind, where, integrity } = await openStore(config, slog);
  const projector = new Projector({
    store,
    path: join(config.store.dataDir, 'projections.db'),
    log: slog,
  });
  const bus = kafkaBus(config, slog, 'projector');
  let api: FastifyInstance | undefined;
  let commands: DeciderService | undefined;
  let anchoring: Anchoring | undefined;
  try {
    await projector.start();
    const policy = config.decider.policy ? loadPolicyFile(config.decider.policy) : loadDefaultPolicy();
    // Human commands (approve, reject, verdict, pause) are decided in this process against the shared
    // store; expected revisions keep it and the Kafka deciders from overwriting each other.
    commands = new DeciderService({
      store,
      bus: new NoDetectionsBus(),
      policy,
      log: slog,
      tickMs: config.decider.tickMs,
      capabilities: providerCapabilities(config.executor.providersFile),
    });
    await commands.start();
    const auth = loadOrCreateAuthConfig(config.store.dataDir);
    api = await buildApi({
      store,
      projector,
      ingest: new BusIngestGateway(bus),
      decider: commands,
      automation: commands,
      auth,
      authFile: authFileOf(config.store.dataDir),
      log: slog,
      consoleSessions: consoleSessionsFromEnv(),
      ...(integrity ? { integrity: () => integrity.status() } : {}),
    });
    anchoring = await startConfiguredAnchoring(
      integrity,
      { ...config.integrity, brokers: config.kafka.brokers },
      slog,
    );
    const url = await api.listen({ port: config.api.port, host: config.api.host });
    const { token: adminToken, path: adminTokenFile } = await writeAdminTokenFile(config.store.dataDir, auth);
    slog.info({ url, store: kind, at: where }, 'projector and API serving');
    const started = { api, commands };
    return {
      service: 'projector',
      url,
      adminToken,
      adminTokenFile,
      async stop() {
        await started.api.close();
        await started.commands.stop();
        await projector.stop();
        await bus.close();
        await anchoring?.stop();
        await store.close();
      },
    };
  } catch (e) {
    await api?.close();
    await commands?.stop();
    await projector.stop();
    await bus.close();
    await anchoring?.stop();
    await store.close();
    throw e;
  }
}

/**
 * `node --import tsx app/serve.ts <service> [--config FILE]`: the same as `tourniquet serve`,
 * for running a service before/without the CLI. Stops gracefully on SIGTERM/SIGINT.
 */
export async function main(argv: string[]): Promise<void> {
  const service = argv[0] as ServiceName;
  if (!SERVICES.includes(service)) {
    process.stderr.write(`usage: tourniquet serve ${SERVICES.join('|')} [--config FILE]\n`);
    process.exitCode = 2;
    return;
  }
  const i = argv.indexOf('--config');
  const file = i >= 0 ? argv[i + 1] : undefined;
  const log = createLogger(process.env.TOURNIQUET_LOG_LEVEL ?? 'info', `tourniquet-${service}`);
  const config = loadServeConfig(file ? { file } : {});
  // Every entry point of this process validates detections against these (schemas/text.ts).
  configureJsonLimits({ maxDepth: config.ingest.maxJsonDepth, maxBytes: config.ingest.maxJsonBytes });
  const handle = await runServe(service, config, log);
  const metricsServer =
    service !== 'projector' && config.metrics.port !== undefined
      ? await startMetricsServer(config.metrics.host, config.metrics.port)
      : undefined;
  if (metricsServer) process.stdout.write(`tourniquet ${service} metrics on ${metricsServer.url}/metrics\n`);
  if (handle.url)
    process.stdout.write(
      `tourniquet ${service} listening on ${handle.url}\nadmin token file (valid 24 h, mode 0600): ${handle.adminTokenFile}\n`,
    );
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', () => resolveStop());
    process.once('SIGTERM', () => resolveStop());
  });
  await metricsServer?.close();
  await handle.stop();
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main(process.argv.slice(2));
}

/** What the executors' providers can undo (their providers file; the dry run without one), for the decider. */
function providerCapabilities(providersFile: string | undefined): ProviderCapabilities {
  return providersFile ? capabilitiesOf(loadProvidersConfig(providersFile)) : defaultCapabilities();
}
