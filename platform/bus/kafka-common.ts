/**
 * What both Kafka adapters of the bus port share, whichever client library speaks to the broker
 * (platform/bus/kafka.ts on kafkajs, platform/bus/platformatic.ts on @platformatic/kafka): the
 * dead-letter format, the schema registry client, the Confluent wire format, the per-topic codecs
 * (Avro detections through the registry, JSON otherwise), the chunk-processing discipline
 * (decode → dead-letter → handler → commit) and the options, tuning and statistics. Both adapters
 * pass the same contract suite (test/contract/bus.contract.ts); docs/kafka.md describes the behaviour.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import avro from 'avsc';
import type { Logger } from 'pino';
import type { ZodType } from 'zod';
import type { DetectionMessage } from '../../schemas/messages.ts';
import { issuesFromZod, TourniquetError } from '../errors.ts';
import { DETECTION_AVSC_TEXT, decodeDetectionAvro, detectionAvroType, toAvro } from './avro.ts';
import type { Bus, BusHandler, BusMessage, BusSubscription } from './port.ts';
import { TOPICS } from './port.ts';

/** Message headers as consumed (kafkajs IHeaders has this shape). */
export type MessageHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

/** A consumed Kafka message, whichever client read it (kafkajs KafkaMessage has this shape). */
export interface ConsumedMessage {
  key: Buffer | null;
  value: Buffer | null;
  /** Decimal string, as Kafka offsets are 64-bit. */
  offset: string;
  /** Milliseconds since the epoch, decimal string. */
  timestamp: string;
  headers?: MessageHeaders;
}

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
  headers?: MessageHeaders;
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
// Consumed messages

export function headerString(v: MessageHeaders[string]): string | undefined {
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : Buffer.isBuffer(one) ? one.toString('utf8') : String(one);
}

export function stringHeaders(h: MessageHeaders | undefined): Record<string, string> | undefined {
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
  m: ConsumedMessage,
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
export function nextOffset(offset: string): string {
  return (BigInt(offset) + 1n).toString();
}

// ---------------------------------------------------------------------------------------------------
// Options, statistics and the commit discipline both adapters follow

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

export interface KafkaBusBaseOptions {
  brokers: string[];
  clientId?: string;
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
  /** Producers discarded after a failed send (see KafkaBus.send, PlatformaticKafkaBus.send). */
  producersRetired: number;
  /** Group members (or their message streams) replaced after the client gave up on them. */
  consumerRestarts: number;
}

export interface KafkaGroupSubscription extends BusSubscription {
  /** Physical topics consumed. */
  readonly topics: readonly string[];
  readonly groupId: string;
  /** Partitions of a topic (default: the first) currently assigned to this member. */
  assignment(topic?: string): number[];
  /** Resolves once the member has joined the group the first time. */
  readonly joined: Promise<void>;
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
export type ChunkProcessor = (messages: readonly ConsumedMessage[], ctx: ChunkContext) => Promise<boolean>;

export interface ConsumeOptions {
  /** Physical topic names. */
  topics: readonly string[];
  groupId: string;
  process: ChunkProcessor;
  /** Overrides of the bus's consumer tuning for this consumer. */
  tuning?: KafkaConsumerTuning;
}

/**
 * A Kafka bus, whichever client library it runs on: the Bus port plus what ingest's raw consumer,
 * the services and the tests use (codecs, topic creation, dead letters, raw consumer groups).
 */
export interface KafkaClientBus extends Bus {
  readonly stats: KafkaBusStats;
  readonly registry: SchemaRegistryClient | undefined;
  /** Physical topic name of a logical one. */
  topic(logical: string): string;
  readonly deadLetterTopic: string;
  groupId(group: string): string;
  /** The codec of a logical topic, initialised (schema registered) on first use. */
  codec<T = unknown>(logical: string): Promise<MessageCodec<T>>;
  /** Creates a physical topic once; idempotent across processes. */
  ensureTopic(physical: string, spec?: Omit<TopicSpec, 'topic'>): Promise<void>;
  /** Creates the detections and dead-letter topics, registers the detections schema, connects the producer. */
  start(): Promise<void>;
  /** Writes dead letters to the DLQ topic (acks -1). Resolves once the broker has them. */
  deadLetter(letters: readonly DeadLetter[]): Promise<void>;
  subscribe<T>(topic: string, group: string, handler: BusHandler<T>): Promise<KafkaGroupSubscription>;
  /** A consumer-group member over physical topics with the commit discipline of ChunkProcessor. */
  consume(opts: ConsumeOptions): Promise<KafkaGroupSubscription>;
}

export interface TopicSpec {
  topic: string;
  /** Default: the `partitions` argument (6). */
  numPartitions?: number;
  configEntries?: Array<{ name: string; value: string }>;
}

const DEFAULT_CONSUMER_TUNING: Required<KafkaConsumerTuning> = {
  sessionTimeoutMs: 30_000,
  heartbeatIntervalMs: 3000,
  rebalanceTimeoutMs: 60_000,
  maxHandlerBatch: 1000,
  partitionsConsumedConcurrently: 2,
  maxBytesPerPartition: 1024 * 1024,
  maxWaitTimeMs: 500,
  retryInitialMs: 200,
  retryMaxMs: 5000,
};

/** Defaults under the given tuning; the heartbeat is kept to at most a third of the session timeout. */
export function resolveTuning(
  ...layers: Array<KafkaConsumerTuning | undefined>
): Required<KafkaConsumerTuning> {
  const t: Required<KafkaConsumerTuning> = Object.assign({ ...DEFAULT_CONSUMER_TUNING }, ...layers);
  if (t.heartbeatIntervalMs * 3 > t.sessionTimeoutMs)
    t.heartbeatIntervalMs = Math.max(100, Math.floor(t.sessionTimeoutMs / 3));
  return t;
}

export function newBusStats(): KafkaBusStats {
  return {
    published: 0,
    handled: 0,
    deadLettered: 0,
    handlerFailures: 0,
    commits: 0,
    producersRetired: 0,
    consumerRestarts: 0,
  };
}

export function busClosed(): TourniquetError {
  return new TourniquetError('BUS_UNAVAILABLE', 'bus is closed', { retriable: false, status: 503 });
}

/**
 * The codec of each logical topic: the configured one, else Avro through the registry for the
 * detections topic and JSON for the others; `init` (schema registration) runs once per topic and
 * again after a failure.
 */
export class TopicCodecs {
  private readonly codecs = new Map<string, MessageCodec<unknown>>();
  private readonly ready = new Map<string, Promise<void>>();
  private readonly registry: SchemaRegistryClient | undefined;
  private readonly physical: (logical: string) => string;

  constructor(
    registry: SchemaRegistryClient | undefined,
    configured: Record<string, MessageCodec<unknown>> = {},
    physical: (logical: string) => string,
  ) {
    this.registry = registry;
    this.physical = physical;
    for (const [topic, codec] of Object.entries(configured)) this.codecs.set(topic, codec);
  }

  has(logical: string): boolean {
    return this.codecs.has(logical);
  }

  async get<T = unknown>(logical: string): Promise<MessageCodec<T>> {
    let codec = this.codecs.get(logical);
    if (!codec) {
      if (logical === TOPICS.detections) {
        if (!this.registry) {
          throw new TourniquetError(
            'CONFIG_INVALID',
            `the ${TOPICS.detections} topic is Avro through a schema registry: set a registry URL`,
            { status: 500 },
          );
        }
        codec = new DetectionAvroCodec(this.registry) as MessageCodec<unknown>;
      } else {
        codec = new JsonCodec();
      }
      this.codecs.set(logical, codec);
    }
    let ready = this.ready.get(logical);
    if (!ready) {
      const c = codec;
      ready = c.init ? c.init(this.physical(logical)) : Promise.resolve();
      this.ready.set(logical, ready);
      ready.catch(() => this.ready.delete(logical));
    }
    await ready;
    return codec as MessageCodec<T>;
  }
}

/** The records a batch of dead letters becomes on the DLQ topic (headers as in DLQ_HEADERS, values cut to `maxValueBytes`). */
export function deadLetterRecords(
  letters: readonly DeadLetter[],
  maxValueBytes: number,
): Array<{
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | string | (Buffer | string)[]>;
}> {
  const at = new Date().toISOString();
  return letters.map((l) => {
    const headers: Record<string, Buffer | string | (Buffer | string)[]> = {};
    for (const [k, v] of Object.entries(l.headers ?? {})) if (v !== undefined) headers[k] = v;
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
    if (value && value.length > maxValueBytes) {
      headers[DLQ_HEADERS.truncated] = String(value.length);
      value = value.subarray(0, maxValueBytes);
    }
    return { key: l.key, value, headers };
  });
}

export function logDeadLetters(log: Logger | undefined, letters: readonly DeadLetter[]): void {
  for (const l of letters) {
    log?.warn(
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

/** Decodes a chunk: good messages for the handler, dead letters for what can never decode; transient failures throw. */
async function decodeChunk(
  codec: MessageCodec<unknown>,
  ctx: ChunkContext,
  chunk: readonly ConsumedMessage[],
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

/**
 * The chunk processor behind `subscribe`: decode (undecodable → dead letters, written before the
 * handler runs), call the handler on the rest; true only once both are done.
 */
export function subscribeProcessor(
  bus: Pick<KafkaClientBus, 'deadLetter' | 'stats'>,
  codec: MessageCodec<unknown>,
  handler: BusHandler,
): ChunkProcessor {
  return async (chunk, ctx) => {
    let good: BusMessage[] = [];
    let dead: DeadLetter[] = [];
    const decoded = await ctx.attempt('decoding', async () => {
      const r = await decodeChunk(codec, ctx, chunk);
      good = r.good;
      dead = r.dead;
    });
    if (!decoded) return false;
    if (dead.length > 0 && !(await ctx.attempt('dead-lettering', () => bus.deadLetter(dead)))) return false;
    if (good.length === 0) return true;
    const handled = await ctx.attempt('handler', async () => {
      const results = await handler(good);
      if (!Array.isArray(results)) throw new Error('bus handler must return one result per message');
    });
    if (handled) bus.stats.handled += good.length;
    return handled;
  };
}

/**
 * ChunkContext.attempt: runs `fn` until it succeeds, backing off between attempts, for as long as
 * `alive()` (the partition is still ours); false once it is not.
 */
export function attemptWhile(
  alive: () => boolean,
  t: Required<KafkaConsumerTuning>,
  onFailure: (what: string, err: unknown, attempt: number) => void,
): ChunkContext['attempt'] {
  return async (what, fn) => {
    let delay = t.retryInitialMs;
    for (let attempt = 1; ; attempt++) {
      if (!alive()) return false;
      try {
        await fn();
        return true;
      } catch (err) {
        onFailure(what, err, attempt);
        const until = Date.now() + delay;
        while (Date.now() < until && alive()) await sleep(Math.min(100, until - Date.now()));
        delay = Math.min(delay * 2, t.retryMaxMs);
      }
    }
  };
}
