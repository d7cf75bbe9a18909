/**
 * The Kafka adapter of the bus port (kafkajs). Semantics, topics, headers and the dead-letter format
 * are documented in docs/kafka.md; test/contract/bus.contract.ts holds it to the same contract as the
 * in-process bus.
 *
 * - publish: one idempotent producer, acks -1 (all in-sync replicas), message key = the bus key
 *   (identity → partition with Kafka's Java-compatible murmur2 partitioner), headers as given.
 * - subscribe: one consumer per (topic, group) in a consumer group; `eachBatch` with autoCommit off
 *   and auto-resolve off. For each chunk of a batch: decode (a message that cannot be decoded goes to
 *   the dead-letter topic), call the handler, and only after it resolved resolve and commit the chunk's
 *   offsets. A failing handler (store unavailable, …) is retried with backoff while the partition is
 *   still ours, heartbeating meanwhile; nothing is committed, so if the partition moves on the new
 *   owner gets the messages again (at least once; consumers dedupe by id).
 * - per-topic codecs: `tourniquet.detections` is Avro through the schema registry (Confluent wire
 *   format, subject `<topic>-value`, BACKWARD), everything else JSON.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import avro from 'avsc';
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  Kafka,
  type KafkaMessage,
  type LogEntry,
  logLevel,
  Partitioners,
  type Producer,
  type ProducerRecord,
} from 'kafkajs';
import type { Logger } from 'pino';
import type { ZodType } from 'zod';
import type { DetectionMessage } from '../../schemas/messages.ts';
import { issuesFromZod, TourniquetError } from '../errors.ts';
import { DETECTION_AVSC_TEXT, decodeDetectionAvro, detectionAvroType, toAvro } from './avro.ts';
import type { Bus, BusHandler, BusMessage, BusSubscription, PublishReceipt } from './port.ts';
import { TOPICS } from './port.ts';
import './kafkajs-patches.ts'; // before any client exists: see the file

// ---------------------------------------------------------------------------------------------------
// Dead letters

/** Headers every dead letter carries (the original message's headers are kept next to them). */
export const DLQ_HEADERS = {
  /** Stable reason code: bad_magic_byte, unknown_schema_id, invalid_json, normalize_failed, … */
  reason: 'x-dlq-reason',
  /** Human-readable detail (the decoder's or normalizer's message), at most 2000 characters. */
  error: 'x-dlq-error',
  sourceTopic: 'x-dlq-source-topic',
  partition: 'x-dlq-partition',
  offset: 'x-dlq-offset',
  /** Original message timestamp (ms since epoch, as Kafka gives it). */
  timestamp: 'x-dlq-timestamp',
  /** Who dead-lettered it: the consumer group id. */
  group: 'x-dlq-group',
  /** For a raw message holding several records (array, NDJSON): which one (0-based). */
  recordIndex: 'x-dlq-record-index',
  /** Set when the value was cut to fit the DLQ topic: the original size in bytes. */
  truncated: 'x-dlq-value-truncated',
  /** When the dead letter was written (ISO 8601). */
  at: 'x-dlq-at',
} as const;

export interface DeadLetter {
  sourceTopic: string;
  partition: number;
  offset: string;
  /** The original key and value bytes. */
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
  timestamp?: string;
  reason: string;
  error: string;
  group?: string;
  recordIndex?: number;
}

/** The reason code of a decode failure (TourniquetError DECODE_FAILED / NORMALIZE_FAILED), else undefined. */
export function deadLetterReason(err: unknown): string | undefined {
  if (!(err instanceof TourniquetError)) return undefined;
  if (err.code === 'DECODE_FAILED') return String(err.details?.reason ?? 'decode_failed');
  if (err.code === 'NORMALIZE_FAILED') return 'normalize_failed';
  if (err.code === 'PAYLOAD_TOO_LARGE') return 'too_large';
  return undefined;
}

export function decodeFailed(
  reason: string,
  message: string,
  details: Record<string, unknown> = {},
): TourniquetError {
  return new TourniquetError('DECODE_FAILED', message, { status: 400, details: { reason, ...details } });
}

// ---------------------------------------------------------------------------------------------------
// Schema registry (Confluent API; Apicurio's /apis/ccompat/v7 speaks it)

export type Compatibility =
  | 'NONE'
  | 'BACKWARD'
  | 'BACKWARD_TRANSITIVE'
  | 'FORWARD'
  | 'FORWARD_TRANSITIVE'
  | 'FULL'
  | 'FULL_TRANSITIVE';

const REGISTRY_CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/**
 * A small client for the Confluent schema registry API: register, compatibility, schema by id.
 * Schemas by id are cached forever (ids are immutable); an unknown id (404) is a DECODE_FAILED
 * `unknown_schema_id` (remembered for `negativeTtlMs`), any other failure is retriable BUS_UNAVAILABLE.
 */
export class SchemaRegistryClient {
  readonly url: string;
  private readonly timeoutMs: number;
  private readonly negativeTtlMs: number;
  private readonly byId = new Map<number, Promise<string>>();
  private readonly unknown = new Map<number, number>();

  constructor(url: string, opts: { timeoutMs?: number; negativeTtlMs?: number } = {}) {
    this.url = url.replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.negativeTtlMs = opts.negativeTtlMs ?? 10_000;
  }

  private async request(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown }> {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          accept: REGISTRY_CONTENT_TYPE,
          ...(body !== undefined ? { 'content-type': REGISTRY_CONTENT_TYPE } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw new TourniquetError(
        'BUS_UNAVAILABLE',
        `schema registry ${this.url} unreachable: ${(e as Error).message}`,
        {
          retriable: true,
          status: 503,
          cause: e,
        },
      );
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: res.status, json };
  }

  private fail(what: string, r: { status: number; json: unknown }): TourniquetError {
    return new TourniquetError(
      'BUS_UNAVAILABLE',
      `schema registry: ${what} failed with ${r.status}: ${JSON.stringify(r.json)}`,
      {
        retriable: r.status >= 500 || r.status === 429,
        status: 503,
        details: { status: r.status, body: r.json },
      },
    );
  }

  /** Registers (or finds) an Avro schema under a subject; returns its global id. */
  async register(subject: string, schema: string): Promise<number> {
    const r = await this.request('POST', `/subjects/${encodeURIComponent(subject)}/versions`, {
      schema,
      schemaType: 'AVRO',
    });
    const id = (r.json as { id?: unknown } | null)?.id;
    if (r.status !== 200 || typeof id !== 'number') {
      if (r.status === 409) {
        throw new TourniquetError(
          'CONFLICT',
          `schema registry refused the schema for ${subject}: incompatible (${JSON.stringify(r.json)})`,
          {
            status: 409,
            details: { subject, body: r.json },
          },
        );
      }
      throw this.fail(`registering a schema under ${subject}`, r);
    }
    return id;
  }

  async setCompatibility(subject: string, compatibility: Compatibility): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.request('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility });
      if (r.status === 200) return;
      // Two processes starting at once both create the subject's rule: Apicurio answers the loser
      // 409 "already exists". Fine if the level in force is the one we want; otherwise set it again.
      if (r.status === 409 && attempt < 5) {
        if ((await this.getCompatibility(subject)) === compatibility) return;
        await sleep(50 * attempt);
        continue;
      }
      throw this.fail(`setting compatibility of ${subject}`, r);
    }
  }

  /** The subject's compatibility level, or undefined when none is set on the subject. */
  async getCompatibility(subject: string): Promise<string | undefined> {
    const r = await this.request('GET', `/config/${encodeURIComponent(subject)}`);
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw this.fail(`reading compatibility of ${subject}`, r);
    const j = r.json as { compatibilityLevel?: string; compatibility?: string };
    return j.compatibilityLevel ?? j.compatibility;
  }

  /** Whether `schema` could be registered next under the subject (per its compatibility level). */
  async isCompatible(subject: string, schema: string): Promise<boolean> {
    const r = await this.request(
      'POST',
      `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest`,
      {
        schema,
        schemaType: 'AVRO',
      },
    );
    if (r.status === 404) return true;
    if (r.status === 409 || r.status === 422) return false;
    if (r.status !== 200) throw this.fail(`checking compatibility for ${subject}`, r);
    return (r.json as { is_compatible?: boolean }).is_compatible === true;
  }

  /** The schema text registered under a global id. */
  schemaById(id: number): Promise<string> {
    const until = this.unknown.get(id);
    if (until !== undefined) {
      if (Date.now() < until) return Promise.reject(unknownSchema(id));
      this.unknown.delete(id);
    }
    let p = this.byId.get(id);
    if (!p) {
      p = (async () => {
        const r = await this.request('GET', `/schemas/ids/${id}`);
        if (r.status === 404) {
          this.unknown.set(id, Date.now() + this.negativeTtlMs);
          throw unknownSchema(id);
        }
        const schema = (r.json as { schema?: unknown } | null)?.schema;
        if (r.status !== 200 || typeof schema !== 'string') throw this.fail(`fetching schema id ${id}`, r);
        return schema;
      })();
      this.byId.set(id, p);
      p.catch(() => this.byId.delete(id));
    }
    return p;
  }
}

function unknownSchema(id: number): TourniquetError {
  return decodeFailed('unknown_schema_id', `schema id ${id} is not in the schema registry`, { schemaId: id });
}

// ---------------------------------------------------------------------------------------------------
// Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary

function writeConfluentHeader(out: Buffer, schemaId: number): Buffer {
  out[0] = 0;
  out.writeUInt32BE(schemaId, 1);
  return out;
}

export function frameConfluent(schemaId: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  payload.copy(out, 5);
  return writeConfluentHeader(out, schemaId);
}

/**
 * Encodes straight into one reusable buffer after the 5 framing bytes, then copies the message out once
 * at its exact size (small ones come from Node's buffer pool). Same bytes as
 * frameConfluent(id, type.toBuffer(value)), without its zero-filled intermediate buffer and second copy.
 */
let scratch = Buffer.allocUnsafe(64 * 1024);
export function encodeFramed(schemaId: number, type: avro.Type, value: unknown): Buffer {
  let end = type.encode(value, scratch, 5);
  if (end < 0) {
    // too small by -end bytes: grow (kept for the next message) and encode again
    scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
    end = type.encode(value, scratch, 5);
  }
  const out = Buffer.allocUnsafe(end);
  scratch.copy(out, 0, 0, end);
  return writeConfluentHeader(out, schemaId);
}

export function unframeConfluent(value: Buffer): { schemaId: number; payload: Buffer } {
  if (value.length < 5)
    throw decodeFailed(
      'bad_magic_byte',
      `value of ${value.length} bytes is too short for the Confluent wire format`,
    );
  if (value[0] !== 0) {
    throw decodeFailed(
      'bad_magic_byte',
      `magic byte is 0x${value[0]!.toString(16).padStart(2, '0')}, expected 0x00 (Confluent wire format)`,
    );
  }
  return { schemaId: value.readUInt32BE(1), payload: value.subarray(5) };
}

// ---------------------------------------------------------------------------------------------------
// Codecs

export interface MessageContext {
  topic: string;
  partition: number;
  offset: string;
  /** Kafka message timestamp (ms since epoch, string). */
  timestamp: string;
}

/**
 * How a topic's values become bytes and back. `decode` throws TourniquetError DECODE_FAILED (with
 * `details.reason`) for a value that can never be decoded — it is dead-lettered; any other error
 * (registry unreachable) is retried.
 */
export interface MessageCodec<T = unknown> {
  readonly name: string;
  /** Runs once before first use (register a schema, …). */
  init?(topic: string): Promise<void>;
  encode(value: T, topic: string): Promise<Buffer> | Buffer;
  decode(value: Buffer, ctx: MessageContext): Promise<T> | T;
}

export class JsonCodec<T = unknown> implements MessageCodec<T> {
  readonly name = 'json';
  private readonly schema: ZodType<T> | undefined;

  constructor(schema?: ZodType<T>) {
    this.schema = schema;
  }

  encode(value: T): Buffer {
    return Buffer.from(JSON.stringify(value));
  }

  decode(value: Buffer): T {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value.toString('utf8'));
    } catch (e) {
      throw decodeFailed('invalid_json', `value is not valid JSON: ${(e as Error).message}`);
    }
    if (!this.schema) return parsed as T;
    const r = this.schema.safeParse(parsed);
    if (!r.success) {
      const issues = issuesFromZod(r.error.issues);
      throw decodeFailed(
        'schema_validation',
        `value fails its schema: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
        {
          issues,
        },
      );
    }
    return r.data;
  }
}

/**
 * Avro codec of `tourniquet.detections` through the schema registry. `init` registers
 * schemas/detection.avsc under `<topic>-value` and sets that subject to BACKWARD. Values written with
 * another registered schema are read through an avsc resolver into the current one (BACKWARD: older
 * writers are readable); a schema id that is unknown or not resolvable is a dead letter.
 */
export class DetectionAvroCodec implements MessageCodec<DetectionMessage> {
  readonly name = 'avro';
  readonly registry: SchemaRegistryClient;
  private readonly subjectOverride: string | undefined;
  private readonly compatibility: Compatibility;
  private schemaId: number | undefined;
  private readonly resolvers = new Map<number, Promise<avro.Resolver>>();

  constructor(
    registry: SchemaRegistryClient,
    opts: { subject?: string; compatibility?: Compatibility } = {},
  ) {
    this.registry = registry;
    this.subjectOverride = opts.subject;
    this.compatibility = opts.compatibility ?? 'BACKWARD';
  }

  get id(): number | undefined {
    return this.schemaId;
  }

  static subjectFor(topic: string): string {
    return `${topic}-value`;
  }

  async init(topic: string): Promise<void> {
    const subject = this.subjectOverride ?? DetectionAvroCodec.subjectFor(topic);
    this.schemaId = await this.registry.register(subject, DETECTION_AVSC_TEXT);
    await this.registry.setCompatibility(subject, this.compatibility);
  }

  encode(value: DetectionMessage): Buffer {
    if (this.schemaId === undefined) throw new Error('DetectionAvroCodec used before init()');
    return encodeFramed(this.schemaId, detectionAvroType, toAvro(value.detection, value.at));
  }

  private resolver(id: number): Promise<avro.Resolver> {
    let p = this.resolvers.get(id);
    if (!p) {
      p = (async () => {
        const text = await this.registry.schemaById(id);
        let writer: avro.Type;
        try {
          writer = avro.Type.forSchema(JSON.parse(text) as avro.Schema);
        } catch (e) {
          throw decodeFailed(
            'incompatible_schema',
            `schema id ${id} is not an Avro schema: ${(e as Error).message}`,
            { schemaId: id },
          );
        }
        try {
          return detectionAvroType.createResolver(writer);
        } catch (e) {
          throw decodeFailed(
            'incompatible_schema',
            `schema id ${id} cannot be read as NormalizedDetection: ${(e as Error).message}`,
            {
              schemaId: id,
            },
          );
        }
      })();
      this.resolvers.set(id, p);
      // keep permanent verdicts (incompatible), forget transient failures (registry down)
      p.catch((e: unknown) => {
        if (
          !(e instanceof TourniquetError) ||
          e.code !== 'DECODE_FAILED' ||
          e.details?.reason === 'unknown_schema_id'
        ) {
          this.resolvers.delete(id);
        }
      });
    }
    return p;
  }

  async decode(value: Buffer, ctx: MessageContext): Promise<DetectionMessage> {
    const { schemaId, payload } = unframeConfluent(value);
    const resolver = schemaId === this.schemaId ? undefined : await this.resolver(schemaId);
    // `raw` is passed through unread (the decider never looks at it): checked as JSON text, not parsed
    const { detection, receivedAt } = decodeDetectionAvro(payload, resolver, { rawAsText: true });
    const ts = Number(ctx.timestamp);
    return {
      at: receivedAt ?? (Number.isFinite(ts) ? new Date(ts).toISOString() : detection.occurredAt),
      detection,
    };
  }
}

// ---------------------------------------------------------------------------------------------------
// Kafka client plumbing

/** kafkajs logs into pino (kafkajs is chatty at INFO: its INFO becomes debug). */
function kafkaLogCreator(log: Logger | undefined) {
  return (_level: logLevel) =>
    ({ level, log: entry, namespace }: LogEntry) => {
      if (!log) return;
      const { message, ...extra } = entry;
      const obj = { kafkajs: namespace, ...extra };
      if (level === logLevel.ERROR) log.warn(obj, message);
      else if (level === logLevel.WARN) log.info(obj, message);
      else log.debug(obj, message);
    };
}

export function createKafka(opts: {
  brokers: string[];
  clientId?: string;
  log?: Logger;
  connectionTimeoutMs?: number;
}): Kafka {
  return new Kafka({
    clientId: opts.clientId ?? 'tourniquet',
    brokers: opts.brokers,
    connectionTimeout: opts.connectionTimeoutMs ?? 3000,
    requestTimeout: 30_000,
    logLevel: logLevel.INFO,
    logCreator: kafkaLogCreator(opts.log),
    retry: { initialRetryTime: 300, retries: 12, maxRetryTime: 5000 },
  });
}

export interface TopicSpec {
  topic: string;
  /** Default: the `partitions` argument (6). */
  numPartitions?: number;
  configEntries?: Array<{ name: string; value: string }>;
}

/** Creates the topics that do not exist yet (replication 1 on the single dev broker unless given). */
export async function ensureTopics(
  kafkaOrAdmin: Kafka | Admin,
  topics: ReadonlyArray<TopicSpec | string>,
  opts: { partitions?: number; replicationFactor?: number } = {},
): Promise<string[]> {
  const admin = 'admin' in kafkaOrAdmin ? kafkaOrAdmin.admin() : kafkaOrAdmin;
  const own = admin !== kafkaOrAdmin;
  if (own) await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = topics
      .map((t) => (typeof t === 'string' ? { topic: t } : t))
      .filter((t) => !existing.has(t.topic))
      .map((t) => ({
        topic: t.topic,
        numPartitions: t.numPartitions ?? opts.partitions ?? 6,
        replicationFactor: opts.replicationFactor ?? -1,
        ...(t.configEntries ? { configEntries: t.configEntries } : {}),
      }));
    if (wanted.length === 0) return [];
    try {
      await admin.createTopics({ topics: wanted, waitForLeaders: true });
    } catch (e) {
      // another process created some of them first
      if (
        !/already exists/i.test(String((e as Error).message)) &&
        (e as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS'
      ) {
        const errs = (e as { errors?: Array<{ type?: string }> }).errors;
        if (!errs?.every((x) => x.type === 'TOPIC_ALREADY_EXISTS')) throw e;
      }
    }
    return wanted.map((t) => t.topic);
  } finally {
    if (own) await admin.disconnect();
  }
}

export function headerString(v: IHeaders[string]): string | undefined {
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
}

export function stringHeaders(h: IHeaders | undefined): Record<string, string> | undefined {
  if (!h) return undefined;
  const out: Record<string, string> = {};
  let any = false;
  for (const [k, v] of Object.entries(h)) {
    const s = headerString(v);
    if (s !== undefined) {
      out[k] = s;
      any = true;
    }
  }
  return any ? out : undefined;
}

/** A dead letter for a consumed message. */
export function deadLetterOf(
  m: KafkaMessage,
  ctx: { topic: string; partition: number; groupId?: string },
  reason: string,
  error: string,
  recordIndex?: number,
): DeadLetter {
  return {
    sourceTopic: ctx.topic,
    partition: ctx.partition,
    offset: m.offset,
    key: m.key,
    value: m.value,
    ...(m.headers ? { headers: m.headers } : {}),
    timestamp: m.timestamp,
    reason,
    error,
    ...(ctx.groupId !== undefined ? { group: ctx.groupId } : {}),
    ...(recordIndex !== undefined ? { recordIndex } : {}),
  };
}

/** Offset arithmetic on Kafka's string offsets. */
function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

// ---------------------------------------------------------------------------------------------------
// The bus

export interface KafkaConsumerTuning {
  /** Session timeout: how long the group waits for a silent member before rebalancing (default 30 s). */
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  rebalanceTimeoutMs?: number;
  /** Handler is called with at most this many messages (default 1000). */
  maxHandlerBatch?: number;
  /** Partitions processed at the same time by one consumer (default 2; per-key order holds either way). */
  partitionsConsumedConcurrently?: number;
  maxBytesPerPartition?: number;
  maxWaitTimeMs?: number;
  /** Backoff between attempts of a failing handler (default 200 ms, doubling, up to 5 s). */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

export interface KafkaBusOptions {
  brokers: string[];
  clientId?: string;
  /** A kafkajs client to share; default: one built from brokers/clientId. */
  kafka?: Kafka;
  /** Confluent-compatible registry (…/apis/ccompat/v7 for Apicurio); needed for the detections topic. */
  registryUrl?: string;
  /** Logical topic name → physical name (default identical), e.g. for per-run topics in tests. */
  topics?: Record<string, string>;
  /** Bus group → Kafka group id; groups not named here get `groupIdPrefix + group`. */
  groupIds?: Record<string, string>;
  /** Default 'tourniquet.'. */
  groupIdPrefix?: string;
  /** Partitions of topics this bus creates (default 6). */
  partitions?: number;
  /** Codecs by logical topic; default: Avro for TOPICS.detections, JSON otherwise. */
  codecs?: Record<string, MessageCodec<unknown>>;
  consumer?: KafkaConsumerTuning;
  /** Largest value copied into a dead letter; longer values are truncated (default 8 MiB). */
  dlqMaxValueBytes?: number;
  log?: Logger;
  /** Told after each batch how far the group is behind the partition's end (for a lag gauge). */
  onConsumerLag?: (groupId: string, topic: string, partition: number, lag: number) => void;
}

export interface KafkaBusStats {
  published: number;
  handled: number;
  deadLettered: number;
  handlerFailures: number;
  commits: number;
  /** Producers discarded after a failed send (see KafkaBus.send). */
  producersRetired: number;
  /** Group members replaced after a crash kafkajs would not restart. */
  consumerRestarts: number;
}

export interface KafkaSubscription extends BusSubscription {
  /** Physical topics consumed. */
  readonly topics: readonly string[];
  readonly groupId: string;
  /** Partitions of a topic (default: the first) currently assigned to this member. */
  assignment(topic?: string): number[];
  /** Resolves once the member has joined the group the first time. */
  readonly joined: Promise<void>;
  readonly consumer: Consumer;
}

/** What a chunk processor learns about where its messages come from. */
export interface ChunkContext {
  topic: string;
  partition: number;
  groupId: string;
  /**
   * Runs `fn` until it succeeds (backoff, heartbeats meanwhile). Resolves false when the partition
   * was given up (stop, rebalance): the processor must then return false without side effects
   * that assume success.
   */
  attempt(what: string, fn: () => Promise<void>): Promise<boolean>;
}

/**
 * Processes one chunk of a partition's batch. Resolves true when everything in the chunk is done
 * (its offsets are then resolved and committed), false to give the chunk up uncommitted.
 */
type ChunkProcessor = (messages: readonly KafkaMessage[], ctx: ChunkContext) => Promise<boolean>;

export interface ConsumeOptions {
  /** Physical topic names. */
  topics: readonly string[];
  groupId: string;
  process: ChunkProcessor;
  /** Overrides of the bus's consumer tuning for this consumer. */
  tuning?: KafkaConsumerTuning;
}

interface SubState {
  topics: readonly string[];
  groupId: string;
  process: ChunkProcessor;
  consumer: Consumer;
  tuning: Required<KafkaConsumerTuning>;
  assignment: Record<string, number[]>;
  stopped: boolean;
  onJoin: () => void;
}

export class KafkaBus implements Bus {
  readonly name = 'kafka';
  readonly kafka: Kafka;
  readonly registry: SchemaRegistryClient | undefined;
  readonly stats: KafkaBusStats = {
    published: 0,
    handled: 0,
    deadLettered: 0,
    handlerFailures: 0,
    commits: 0,
    producersRetired: 0,
    consumerRestarts: 0,
  };
  private readonly opts: KafkaBusOptions;
  private readonly log: Logger | undefined;
  private readonly codecs = new Map<string, MessageCodec<unknown>>();
  private readonly codecReady = new Map<string, Promise<void>>();
  private readonly topicReady = new Map<string, Promise<void>>();
  private readonly subs = new Set<SubState>();
  private producerPromise: Promise<Producer> | undefined;
  private closed = false;
  private readonly tuning: Required<KafkaConsumerTuning>;

  constructor(opts: KafkaBusOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.kafka =
      opts.kafka ??
      createKafka({
        brokers: opts.brokers,
        ...(opts.clientId ? { clientId: opts.clientId } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      });
    this.registry = opts.registryUrl ? new SchemaRegistryClient(opts.registryUrl) : undefined;
    for (const [topic, codec] of Object.entries(opts.codecs ?? {})) this.codecs.set(topic, codec);
    this.tuning = {
      sessionTimeoutMs: 30_000,
      heartbeatIntervalMs: 3000,
      rebalanceTimeoutMs: 60_000,
      maxHandlerBatch: 1000,
      partitionsConsumedConcurrently: 2,
      maxBytesPerPartition: 1024 * 1024,
      maxWaitTimeMs: 500,
      retryInitialMs: 200,
      retryMaxMs: 5000,
      ...opts.consumer,
    };
    if (this.tuning.heartbeatIntervalMs * 3 > this.tuning.sessionTimeoutMs) {
      this.tuning.heartbeatIntervalMs = Math.max(100, Math.floor(this.tuning.sessionTimeoutMs / 3));
    }
  }

  /** Physical topic name of a logical one. */
  topic(logical: string): string {
    return this.opts.topics?.[logical] ?? logical;
  }

  get deadLetterTopic(): string {
    return this.topic(TOPICS.deadLetters);
  }

  groupId(group: string): string {
    return this.opts.groupIds?.[group] ?? `${this.opts.groupIdPrefix ?? 'tourniquet.'}${group}`;
  }

  /** The codec of a logical topic, initialised (schema registered) on first use. */
  async codec<T = unknown>(logical: string): Promise<MessageCodec<T>> {
    let codec = this.codecs.get(logical);
    if (!codec) {
      if (logical === TOPICS.detections) {
        if (!this.registry) {
          throw new TourniquetError(
            'CONFIG_INVALID',
            `the ${TOPICS.detections} topic is Avro through a schema registry: set a registry URL`,
            {
              status: 500,
            },
          );
        }
        codec = new DetectionAvroCodec(this.registry) as MessageCodec<unknown>;
      } else {
        codec = new JsonCodec();
      }
      this.codecs.set(logical, codec);
    }
    let ready = this.codecReady.get(logical);
    if (!ready) {
      const c = codec;
      ready = c.init ? c.init(this.topic(logical)) : Promise.resolve();
      this.codecReady.set(logical, ready);
      ready.catch(() => this.codecReady.delete(logical));
    }
    await ready;
    return codec as MessageCodec<T>;
  }

  /** Creates a physical topic once (partitions from the options); idempotent across processes. */
  ensureTopic(physical: string, spec: Omit<TopicSpec, 'topic'> = {}): Promise<void> {
    let p = this.topicReady.get(physical);
    if (!p) {
      p = ensureTopics(this.kafka, [{ topic: physical, ...spec }], {
        partitions: this.opts.partitions ?? 6,
      }).then(() => undefined);
      this.topicReady.set(physical, p);
      p.catch(() => this.topicReady.delete(physical));
    }
    return p;
  }

  /** Creates the detections and dead-letter topics and registers the detections schema. */
  async start(): Promise<void> {
    await this.ensureTopic(this.topic(TOPICS.detections));
    await this.ensureDeadLetterTopic();
    if (this.registry || this.codecs.has(TOPICS.detections)) await this.codec(TOPICS.detections);
    await this.producer();
  }

  private ensureDeadLetterTopic(): Promise<void> {
    const max = this.opts.dlqMaxValueBytes ?? 8 * 1024 * 1024;
    return this.ensureTopic(this.deadLetterTopic, {
      configEntries: [{ name: 'max.message.bytes', value: String(max + 256 * 1024) }],
    });
  }

  /** The shared idempotent producer (connected on first use). */
  producer(): Promise<Producer> {
    if (this.closed)
      return Promise.reject(
        new TourniquetError('BUS_UNAVAILABLE', 'bus is closed', { retriable: false, status: 503 }),
      );
    if (!this.producerPromise) {
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        // idempotence needs unbounded retries; a publish waits out a broker outage instead of failing
        retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 5000 },
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: true,
      });
      this.producerPromise = producer.connect().then(() => producer);
      this.producerPromise.catch(() => {
        this.producerPromise = undefined;
      });
    }
    return this.producerPromise;
  }

  /**
   * Sends on the shared producer. A send that fails after the producer's own unbounded retries leaves its
   * idempotence state (per-partition sequence numbers) in doubt: kafkajs rolls a sequence back when a
   * request's response is lost even though the broker may have written it, and after a broker restart
   * every later batch on that partition then fails with OUT_OF_ORDER_SEQUENCE_NUMBER, for ever. So a
   * failed send retires the producer; the caller's retry gets a new one (a new producer id). A batch
   * written twice that way is a redelivery, which consumers deduplicate by detection id.
   */
  private async send(record: ProducerRecord): Promise<void> {
    const producer = await this.producer();
    try {
      await producer.send(record);
    } catch (e) {
      this.retireProducer(producer, e);
      throw e;
    }
  }

  private retireProducer(producer: Producer, cause: unknown): void {
    const current = this.producerPromise;
    if (!current) return;
    void current.then(
      (p) => {
        if (p !== producer || this.producerPromise !== current) return;
        this.producerPromise = undefined;
        this.stats.producersRetired += 1;
        this.log?.warn({ err: cause }, 'send failed; producer retired, the next send starts a new one');
        producer.disconnect().catch((err: unknown) => {
          this.log?.warn({ err }, 'disconnecting a retired producer failed');
        });
      },
      () => undefined, // a failed connect already cleared producerPromise (see producer())
    );
  }

  async publish<T>(topic: string, messages: ReadonlyArray<BusMessage<T>>): Promise<PublishReceipt[]> {
    if (this.closed)
      throw new TourniquetError('BUS_UNAVAILABLE', 'bus is closed', { retriable: false, status: 503 });
    if (messages.length === 0) return [];
    const physical = this.topic(topic);
    const codec = await this.codec<T>(topic);
    await this.ensureTopic(physical);
    const encoded = await Promise.all(
      messages.map(async (m) => ({
        key: m.key,
        value: await codec.encode(m.value, physical),
        ...(m.headers ? { headers: m.headers } : {}),
      })),
    );
    try {
      await this.send({ topic: physical, acks: -1, messages: encoded });
    } catch (e) {
      throw new TourniquetError(
        'BUS_UNAVAILABLE',
        `publishing to ${physical} failed: ${(e as Error).message}`,
        {
          retriable: true,
          status: 503,
          cause: e,
        },
      );
    }
    this.stats.published += messages.length;
    return messages.map(() => ({ delivered: 'queued' }));
  }

  /** Writes dead letters to the DLQ topic (acks -1). Resolves once the broker has them. */
  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.ensureDeadLetterTopic();
    const max = this.opts.dlqMaxValueBytes ?? 8 * 1024 * 1024;
    const at = new Date().toISOString();
    const messages = letters.map((l) => {
      const headers: IHeaders = { ...(l.headers ?? {}) };
      headers[DLQ_HEADERS.reason] = l.reason;
      headers[DLQ_HEADERS.error] = l.error.slice(0, 2000);
      headers[DLQ_HEADERS.sourceTopic] = l.sourceTopic;
      headers[DLQ_HEADERS.partition] = String(l.partition);
      headers[DLQ_HEADERS.offset] = l.offset;
      headers[DLQ_HEADERS.at] = at;
      if (l.timestamp !== undefined) headers[DLQ_HEADERS.timestamp] = l.timestamp;
      if (l.group !== undefined) headers[DLQ_HEADERS.group] = l.group;
      if (l.recordIndex !== undefined) headers[DLQ_HEADERS.recordIndex] = String(l.recordIndex);
      let value = l.value;
      if (value && value.length > max) {
        headers[DLQ_HEADERS.truncated] = String(value.length);
        value = value.subarray(0, max);
      }
      return { key: l.key, value, headers };
    });
    await this.send({ topic: this.deadLetterTopic, acks: -1, messages });
    this.stats.deadLettered += letters.length;
    for (const l of letters) {
      this.log?.warn(
        {
          reason: l.reason,
          sourceTopic: l.sourceTopic,
          partition: l.partition,
          offset: l.offset,
          error: l.error.slice(0, 300),
        },
        'message dead-lettered',
      );
    }
  }

  async subscribe<T>(topic: string, group: string, handler: BusHandler<T>): Promise<KafkaSubscription> {
    if (this.closed)
      throw new TourniquetError('BUS_UNAVAILABLE', 'bus is closed', { retriable: false, status: 503 });
    const physical = this.topic(topic);
    const groupId = this.groupId(group);
    const codec = await this.codec(topic);
    await this.ensureTopic(physical);
    return this.consume({
      topics: [physical],
      groupId,
      process: async (chunk, ctx) => {
        let good: BusMessage[] = [];
        let dead: DeadLetter[] = [];
        const decoded = await ctx.attempt('decoding', async () => {
          const r = await this.decodeChunk(codec, ctx, chunk);
          good = r.good;
          dead = r.dead;
        });
        if (!decoded) return false;
        if (dead.length > 0 && !(await ctx.attempt('dead-lettering', () => this.deadLetter(dead))))
          return false;
        if (good.length === 0) return true;
        const handled = await ctx.attempt('handler', async () => {
          const results = await (handler as BusHandler)(good);
          if (!Array.isArray(results)) throw new Error('bus handler must return one result per message');
        });
        if (handled) this.stats.handled += good.length;
        return handled;
      },
    });
  }

  /**
   * A consumer-group member over physical topics with the bus's commit discipline: per partition
   * batch, chunk by chunk, `process` runs and only once it resolved true are the chunk's offsets
   * resolved and committed. Failures inside `ctx.attempt` are retried while the partition is ours.
   * The ingest raw consumer and `subscribe` are both built on it.
   */
  async consume(opts: ConsumeOptions): Promise<KafkaSubscription> {
    if (this.closed)
      throw new TourniquetError('BUS_UNAVAILABLE', 'bus is closed', { retriable: false, status: 503 });
    await this.ensureDeadLetterTopic();
    await this.producer(); // dead letters need it; fail early when the broker is unreachable
    const t: Required<KafkaConsumerTuning> = { ...this.tuning, ...opts.tuning };
    if (t.heartbeatIntervalMs * 3 > t.sessionTimeoutMs)
      t.heartbeatIntervalMs = Math.max(100, Math.floor(t.sessionTimeoutMs / 3));
    const { groupId } = opts;
    let markJoined: () => void = () => undefined;
    const joined = new Promise<void>((resolve) => {
      markJoined = resolve;
    });
    const state: SubState = {
      topics: opts.topics,
      groupId,
      process: opts.process,
      consumer: this.newConsumer(groupId, t),
      tuning: t,
      assignment: {},
      stopped: false,
      onJoin: () => markJoined(),
    };
    await this.runConsumer(state);
    this.subs.add(state);
    // A member is useful once it has joined; do not hang forever if the broker is slow.
    await Promise.race([joined, sleep(30_000, undefined, { ref: false })]);
    return {
      topics: opts.topics,
      groupId,
      joined,
      get consumer() {
        return state.consumer;
      },
      assignment: (topic?: string) => [...(state.assignment[topic ?? opts.topics[0]!] ?? [])],
      stop: () => this.stopSub(state),
    };
  }

  private newConsumer(groupId: string, t: Required<KafkaConsumerTuning>): Consumer {
    return this.kafka.consumer({
      groupId,
      sessionTimeout: t.sessionTimeoutMs,
      heartbeatInterval: t.heartbeatIntervalMs,
      rebalanceTimeout: t.rebalanceTimeoutMs,
      maxBytesPerPartition: t.maxBytesPerPartition,
      maxWaitTimeInMs: t.maxWaitTimeMs,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 300, retries: 12, maxRetryTime: 5000 },
    });
  }

  /** Connects and runs `state.consumer`, the group member of a subscription (a new one after a crash kafkajs gave up on). */
  private async runConsumer(state: SubState): Promise<void> {
    const t = state.tuning;
    const { groupId, topics, consumer } = state;
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const assignment: Record<string, number[]> = {};
      for (const topic of topics)
        assignment[topic] = [...(e.payload.memberAssignment[topic] ?? [])].sort((a, b) => a - b);
      state.assignment = assignment;
      this.log?.info({ topics, groupId, memberId: e.payload.memberId, assignment }, 'partitions assigned');
      state.onJoin();
    });
    consumer.on(consumer.events.CRASH, (e) => {
      const { error, restart } = e.payload;
      this.log?.error({ topics, groupId, err: error, restart }, 'consumer crashed');
      // kafkajs restarts the member itself when `restart` is true; otherwise the member is dead and
      // its partitions would sit unconsumed until the process restarts. Replace it: nothing past the
      // last commit was acknowledged, so the new member resumes exactly there.
      if (!restart) void this.replaceConsumer(state, consumer);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: t.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.consumeBatch(state, payload),
    });
  }

  private async replaceConsumer(state: SubState, crashed: Consumer): Promise<void> {
    let delay = state.tuning.retryInitialMs;
    while (!state.stopped && !this.closed && state.consumer === crashed) {
      await crashed.disconnect().catch((err: unknown) => {
        this.log?.warn({ err, groupId: state.groupId }, 'disconnecting a crashed consumer failed');
      });
      await sleep(delay);
      if (state.stopped || this.closed) return;
      try {
        this.stats.consumerRestarts += 1;
        state.consumer = this.newConsumer(state.groupId, state.tuning);
        await this.runConsumer(state);
        if (state.stopped || this.closed) {
          await state.consumer.disconnect(); // stopped while the replacement was joining
          return;
        }
        this.log?.warn({ groupId: state.groupId, topics: state.topics }, 'crashed consumer replaced');
        return;
      } catch (err) {
        this.log?.error({ err, groupId: state.groupId }, 'replacing a crashed consumer failed; retrying');
        crashed = state.consumer;
        delay = Math.min(delay * 2, state.tuning.retryMaxMs);
      }
    }
  }

  private async stopSub(state: SubState): Promise<void> {
    if (state.stopped) return;
    state.stopped = true;
    this.subs.delete(state);
    try {
      await state.consumer.stop();
    } finally {
      await state.consumer.disconnect();
    }
  }

  private async consumeBatch(state: SubState, payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset, commitOffsetsIfNecessary } = payload;
    if (batch.messages.length === 0) return;
    this.opts.onConsumerLag?.(state.groupId, batch.topic, batch.partition, Number(batch.offsetLag()));
    const t = state.tuning;
    let rebalancing = false;
    const alive = () => !state.stopped && !this.closed && isRunning() && !isStale() && !rebalancing;
    const beat = setInterval(
      () => {
        heartbeat().catch((e: unknown) => {
          if (
            /rebalanc/i.test(String((e as Error)?.message)) ||
            (e as { type?: string })?.type === 'REBALANCE_IN_PROGRESS'
          ) {
            rebalancing = true;
          }
        });
      },
      Math.max(100, Math.floor(t.heartbeatIntervalMs / 2)),
    );
    const ctx: ChunkContext = {
      topic: batch.topic,
      partition: batch.partition,
      groupId: state.groupId,
      attempt: async (what, fn) => {
        let delay = t.retryInitialMs;
        for (let attempt = 1; ; attempt++) {
          if (!alive()) return false;
          try {
            await fn();
            return true;
          } catch (err) {
            if (what === 'handler') this.stats.handlerFailures += 1;
            this.log?.warn(
              { err, topic: batch.topic, partition: batch.partition, groupId: state.groupId, attempt },
              `${what} failed; not committing, retrying`,
            );
            const until = Date.now() + delay;
            while (Date.now() < until && alive()) await sleep(Math.min(100, until - Date.now()));
            delay = Math.min(delay * 2, t.retryMaxMs);
          }
        }
      },
    };
    try {
      for (let i = 0; i < batch.messages.length; i += t.maxHandlerBatch) {
        if (!alive()) return; // not resolved: fetched again by whoever owns the partition next
        const chunk = batch.messages.slice(i, i + t.maxHandlerBatch);
        if (!(await state.process(chunk, ctx))) return;
        const last = chunk[chunk.length - 1]!.offset;
        resolveOffset(last);
        await commitOffsetsIfNecessary({
          topics: [
            { topic: batch.topic, partitions: [{ partition: batch.partition, offset: nextOffset(last) }] },
          ],
        });
        this.stats.commits += 1;
      }
    } finally {
      clearInterval(beat);
    }
  }

  private async decodeChunk(
    codec: MessageCodec<unknown>,
    ctx: ChunkContext,
    chunk: readonly KafkaMessage[],
  ): Promise<{ good: BusMessage[]; dead: DeadLetter[] }> {
    const good: BusMessage[] = [];
    const dead: DeadLetter[] = [];
    for (const m of chunk) {
      try {
        if (m.value === null) throw decodeFailed('empty_value', 'message has no value (tombstone)');
        const value = await codec.decode(m.value, {
          topic: ctx.topic,
          partition: ctx.partition,
          offset: m.offset,
          timestamp: m.timestamp,
        });
        const headers = stringHeaders(m.headers);
        good.push({ key: m.key?.toString('utf8') ?? '', value, ...(headers ? { headers } : {}) });
      } catch (err) {
        const reason = deadLetterReason(err);
        if (reason === undefined) throw err; // transient (registry down): retried
        dead.push(deadLetterOf(m, ctx, reason, (err as Error).message));
      }
    }
    return { good, dead };
  }

  /** Stops every subscription (each finishes the handler call in flight; nothing uncommitted is lost) and the producer. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.subs].map((s) => this.stopSub(s)));
    const p = this.producerPromise;
    this.producerPromise = undefined;
    if (p) await p.then((producer) => producer.disconnect()).catch(() => undefined);
  }
}
