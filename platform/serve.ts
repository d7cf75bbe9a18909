/**
 * Distributed mode: one Tourniquet service per process (`tourniquet serve <service> [--config FILE]`),
 * Kafka between ingest and the decider, a shared event store behind decider, executor and projector.
 * Every setting comes from a YAML file and/or environment variables (env wins); docs/kafka.md lists
 * them all. The embedded stack (platform/embedded.ts) wires the same services in one process.
 *
 * The event store here is SQLite (one file; several processes can share it in WAL mode: appends are
 * IMMEDIATE transactions guarded by expected revisions). The distributed KurrentDB store is its own issue.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { NewEvent, RecordedEvent } from '../schemas/events.ts';
import { activatePolicy, recordCatalogue } from '../services/decider/activation.ts';
import { loadDefaultPolicy, loadPolicyFile } from '../services/decider/policy/load.ts';
import { DeciderService } from '../services/decider/service.ts';
import { Executor } from '../services/executor/executor.ts';
import { DryRunProvider } from '../services/executor/providers/dry-run.ts';
import { BusIngestGateway } from '../services/ingest/gateway.ts';
import { FORMATS, type FormatName } from '../services/ingest/normalizers/index.ts';
import { RawConsumer } from '../services/ingest/raw-consumer.ts';
import { type AuthConfig, generateAuthConfig, issueLocalAdminToken } from '../services/projector/api/auth.ts';
import { buildApi } from '../services/projector/api/server.ts';
import { Projector } from '../services/projector/projector.ts';
import { KafkaBus } from './bus/kafka.ts';
import { type Bus, type BusSubscription, TOPICS } from './bus/port.ts';
import { loadCatalogueFile } from './catalogue-file.ts';
import { issuesFromZod, TourniquetError, WrongExpectedRevisionError } from './errors.ts';
import type {
  AppendResult,
  EventHandler,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  SubscribeOptions,
  Subscription,
} from './eventstore/port.ts';
import { SqliteEventStore } from './eventstore/sqlite.ts';
import { createLogger } from './log.ts';

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
    })
    .prefault({}),
  store: z
    .object({
      dataDir: z.string().min(1).default('.tourniquet'),
      /** SQLite file shared by decider, executor and projector processes (default <dataDir>/events.db). */
      path: z.string().min(1).optional(),
      durability: z.enum(['full', 'normal']).default('full'),
      /** Group concurrent appends into one transaction (one fsync) — see CoalescingEventStore. */
      coalesceAppends: z.boolean().default(true),
    })
    .prefault({}),
  decider: z
    .object({
      policy: z.string().min(1).optional(),
      catalogue: z.string().min(1).optional(),
      tickMs: z.number().int().min(10).max(3_600_000).default(5000),
    })
    .prefault({}),
  executor: z
    .object({
      /** Stable across restarts: a restarted executor recognises its own unfinished claims. */
      id: z.string().min(1).default(`executor-${hostname()}`),
      leaseMs: z.number().int().min(1000).default(60_000),
    })
    .prefault({}),
  api: z
    .object({
      host: z.string().min(1).default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(7420),
    })
    .prefault({}),
});

export type ServeConfig = z.infer<typeof ServeConfigSchema>;
export type ServeConfigInput = z.input<typeof ServeConfigSchema>;

/** Environment variable → config path; a value is parsed by the path's type. */
export const SERVE_ENV: ReadonlyArray<[string, string, 'string' | 'int' | 'list' | 'bool' | 'rawTopics']> = [
  ['TOURNIQUET_KAFKA_BROKERS', 'kafka.brokers', 'list'],
  ['TOURNIQUET_KAFKA_CLIENT_ID', 'kafka.clientId', 'string'],
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
  ['TOURNIQUET_DATA_DIR', 'store.dataDir', 'string'],
  ['TOURNIQUET_STORE_PATH', 'store.path', 'string'],
  ['TOURNIQUET_DURABILITY', 'store.durability', 'string'],
  ['TOURNIQUET_COALESCE_APPENDS', 'store.coalesceAppends', 'bool'],
  ['TOURNIQUET_POLICY', 'decider.policy', 'string'],
  ['TOURNIQUET_CATALOGUE', 'decider.catalogue', 'string'],
  ['TOURNIQUET_TICK_MS', 'decider.tickMs', 'int'],
  ['TOURNIQUET_EXECUTOR_ID', 'executor.id', 'string'],
  ['TOURNIQUET_EXECUTOR_LEASE_MS', 'executor.leaseMs', 'int'],
  ['TOURNIQUET_API_HOST', 'api.host', 'string'],
  ['TOURNIQUET_API_PORT', 'api.port', 'int'],
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
    for (const path of ['store.dataDir', 'store.path', 'decider.policy', 'decider.catalogue']) {
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

// ---------------------------------------------------------------------------------------------------

interface PendingAppend {
  stream: string;
  events: readonly NewEvent[];
  expected: ExpectedRevision;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/**
 * Groups the appends issued in the same turn of the event loop into one `appendMany` (SQLite: one
 * transaction, one fsync). The decider appends once per decision and decides many identities
 * concurrently, so under load this turns hundreds of fsyncs into one. Semantics do not change: if the
 * combined transaction fails (one stream's expected revision no longer holds), it rolled back as a
 * whole and every append is retried alone, each getting its own result or error.
 */
export class CoalescingEventStore implements EventStore {
  readonly name: string;
  readonly inner: EventStore;
  private queue: PendingAppend[] = [];
  private scheduled = false;
  private readonly maxBatch: number;

  constructor(inner: EventStore, opts: { maxBatch?: number } = {}) {
    this.inner = inner;
    this.name = inner.name;
    this.maxBatch = opts.maxBatch ?? 2000;
  }

  append(stream: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ stream, events, expected, resolve, reject });
      if (this.queue.length >= this.maxBatch) {
        void this.flush();
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    if (batch.length > 1) {
      let results: AppendResult[] | undefined;
      try {
        results = await this.inner.appendMany(
          batch.map((p) => ({ stream: p.stream, events: p.events, expected: p.expected })),
        );
      } catch {
        results = undefined; // rolled back as a whole: each append again, alone
      }
      if (results) {
        for (const [i, p] of batch.entries()) p.resolve(results[i]!);
        return;
      }
    }
    for (const p of batch) {
      try {
        p.resolve(await this.inner.append(p.stream, p.events, p.expected));
      } catch (e) {
        p.reject(e);
      }
    }
  }

  appendMany(
    batches: ReadonlyArray<{ stream: string; events: readonly NewEvent[]; expected: ExpectedRevision }>,
  ): Promise<AppendResult[]> {
    return this.inner.appendMany(batches);
  }
  readStream(stream: string, opts?: { fromRevision?: number; limit?: number }): Promise<RecordedEvent[]> {
    return this.inner.readStream(stream, opts);
  }
  streamRevision(stream: string): Promise<number | 'no_stream'> {
    return this.inner.streamRevision(stream);
  }
  readAll(opts?: ReadAllOptions): Promise<RecordedEvent[]> {
    return this.inner.readAll(opts);
  }
  headPosition(): Promise<number> {
    return this.inner.headPosition();
  }
  subscribeAll(opts: SubscribeOptions, handler: EventHandler): Subscription {
    return this.inner.subscribeAll(opts, handler);
  }
  getCheckpoint(name: string): Promise<number | undefined> {
    return this.inner.getCheckpoint(name);
  }
  saveCheckpoint(name: string, position: number): Promise<void> {
    return this.inner.saveCheckpoint(name, position);
  }
  async close(): Promise<void> {
    while (this.queue.length > 0 || this.scheduled) await new Promise((r) => setImmediate(r));
    await this.inner.close();
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
  /** projector: a local admin token for the API. */
  adminToken?: string;
  stop(): Promise<void>;
}

function kafkaBus(config: ServeConfig, log: Logger): KafkaBus {
  return new KafkaBus({
    brokers: config.kafka.brokers,
    clientId: config.kafka.clientId,
    registryUrl: config.schemaRegistry.url,
    topics: {
      [TOPICS.detections]: config.topics.detections,
      [TOPICS.deadLetters]: config.topics.deadLetters,
    },
    groupIds: { decider: config.groups.decider, ingest: config.groups.ingest },
    partitions: config.kafka.partitions,
    consumer: {
      sessionTimeoutMs: config.kafka.sessionTimeoutMs,
      heartbeatIntervalMs: config.kafka.heartbeatIntervalMs,
      maxHandlerBatch: config.kafka.maxBatch,
      partitionsConsumedConcurrently: config.kafka.partitionsConsumedConcurrently,
    },
    log,
  });
}

function openStore(config: ServeConfig): { store: EventStore; sqlite: SqliteEventStore } {
  const sqlite = new SqliteEventStore({ path: storePathOf(config), durability: config.store.durability });
  return { sqlite, store: config.store.coalesceAppends ? new CoalescingEventStore(sqlite) : sqlite };
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

function loadOrCreateAuth(dataDir: string): AuthConfig {
  const path = join(dataDir, 'auth.json');
  if (existsSync(path)) return JSON.parse(readFileSync(path, 'utf8')) as AuthConfig;
  const config = generateAuthConfig();
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return config;
}

/** Runs one service until `stop()`; resolves once it is serving. */
export async function runServe(service: ServiceName, config: ServeConfig, log: Logger): Promise<ServeHandle> {
  mkdirSync(config.store.dataDir, { recursive: true });
  const slog = log.child({ service });
  switch (service) {
    case 'ingest': {
      if (config.ingest.rawTopics.length === 0) {
        throw configInvalid(
          'ingest needs raw topics: set ingest.rawTopics in the config file or TOURNIQUET_RAW_TOPICS',
        );
      }
      const bus = kafkaBus(config, slog);
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
        slog.info(
          { rawTopics: config.ingest.rawTopics, detections: config.topics.detections },
          'ingest serving',
        );
        return {
          service,
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
    case 'decider': {
      const { store } = openStore(config);
      const bus = kafkaBus(config, slog);
      try {
        const policy = config.decider.policy ? loadPolicyFile(config.decider.policy) : loadDefaultPolicy();
        const now = new Date();
        await activateOnce(() =>
          activatePolicy(store, policy, `tourniquet serve decider (${hostname()})`, now),
        );
        const cataloguePath = config.decider.catalogue;
        if (cataloguePath) {
          await activateOnce(() =>
            recordCatalogue(store, loadCatalogueFile(cataloguePath), cataloguePath, now),
          );
        }
        await bus.start();
        const decider = new DeciderService({ store, bus, policy, log: slog, tickMs: config.decider.tickMs });
        await decider.start();
        slog.info(
          { store: storePathOf(config), group: config.groups.decider, topic: config.topics.detections },
          'decider serving',
        );
        return {
          service,
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
    case 'executor': {
      const { store } = openStore(config);
      const dryRun = new DryRunProvider({ journalPath: join(config.store.dataDir, 'dry-run-calls.jsonl') });
      const executor = new Executor({
        store,
        providers: { '*': dryRun },
        executorId: config.executor.id,
        leaseMs: config.executor.leaseMs,
        log: slog,
      });
      await executor.start((err) => slog.fatal({ err }, 'executor stopped; restart the service'));
      slog.info(
        { store: storePathOf(config), executorId: config.executor.id, provider: 'dry-run' },
        'executor serving',
      );
      return {
        service,
        async stop() {
          await executor.stop();
          await store.close();
        },
      };
    }
    case 'projector': {
      const { store } = openStore(config);
      const projector = new Projector({
        store,
        path: join(config.store.dataDir, 'projections.db'),
        log: slog,
      });
      const bus = kafkaBus(config, slog);
      let api: FastifyInstance | undefined;
      let commands: DeciderService | undefined;
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
        });
        await commands.start();
        const auth = loadOrCreateAuth(config.store.dataDir);
        api = await buildApi({
          store,
          projector,
          ingest: new BusIngestGateway(bus),
          decider: commands,
          automation: commands,
          auth,
          log: slog,
        });
        const url = await api.listen({ port: config.api.port, host: config.api.host });
        const adminToken = await issueLocalAdminToken(auth);
        slog.info({ url, store: storePathOf(config) }, 'projector and API serving');
        const started = { api, commands };
        return {
          service,
          url,
          adminToken,
          async stop() {
            await started.api.close();
            await started.commands.stop();
            await projector.stop();
            await bus.close();
            await store.close();
          },
        };
      } catch (e) {
        await api?.close();
        await commands?.stop();
        await projector.stop();
        await bus.close();
        await store.close();
        throw e;
      }
    }
  }
}

/**
 * `node --import tsx platform/serve.ts <service> [--config FILE]`: the same as `tourniquet serve`,
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
  const handle = await runServe(service, config, log);
  if (handle.url)
    process.stdout.write(
      `tourniquet ${service} listening on ${handle.url}\nlocal admin token (keep it secret): ${handle.adminToken}\n`,
    );
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', () => resolveStop());
    process.once('SIGTERM', () => resolveStop());
  });
  await handle.stop();
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main(process.argv.slice(2));
}
