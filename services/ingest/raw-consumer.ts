/**
 * Ingest's Kafka side: consumes the configured raw topics (what SIEMs and IdPs emit), normalizes every
 * record, and produces normalized detections to `tourniquet.detections`, keyed by identity, Avro through
 * the schema registry. Anything that cannot be parsed, validated or normalized — and any value over the
 * size limit — goes to `tourniquet.dlq` with the reason and its source topic/partition/offset; the
 * partition moves on. Raw offsets are committed only after the detections and dead letters of those
 * messages are acknowledged by the broker (acks -1), so a crash re-reads, never skips; the decider
 * dedupes re-produced detections by id. Details: docs/kafka.md.
 */

import avro from 'avsc';
import type { Logger } from 'pino';
import {
  type ChunkContext,
  type ConsumedMessage,
  type DeadLetter,
  deadLetterOf,
  deadLetterReason,
  decodeFailed,
  type KafkaClientBus,
  type KafkaConsumerTuning,
  type KafkaGroupSubscription,
  unframeConfluent,
} from '../../platform/bus/kafka-common.ts';
import { type BusMessage, TOPICS } from '../../platform/bus/port.ts';
import { TourniquetError } from '../../platform/errors.ts';
import { identityKey } from '../../schemas/detection.ts';
import type { DetectionMessage } from '../../schemas/messages.ts';
import { type FormatName, type NormalizeOptions, normalize } from './normalizers/index.ts';
import { parseRecordsIndexed } from './normalizers/records.ts';

export type RawEncoding = 'auto' | 'json' | 'avro';

export interface RawTopicConfig {
  topic: string;
  /** Normalizer format of every record on this topic, or 'auto' (detected per record). Default 'auto'. */
  format?: FormatName | 'auto';
  /**
   * 'json': UTF-8 JSON — one record, an array of records, or NDJSON lines; 'avro': Confluent-framed Avro
   * (magic byte 0, schema id, payload; the writer schema comes from the registry); 'auto' (default): Avro
   * when the first byte is 0 (JSON text never starts with it), JSON otherwise.
   */
  encoding?: RawEncoding;
}

export interface RawConsumerOptions {
  bus: KafkaClientBus;
  topics: readonly RawTopicConfig[];
  /** Kafka consumer group id (default 'tourniquet.ingest'). */
  groupId?: string;
  /** Values larger than this are dead-lettered unread (default 1 MiB). */
  maxValueBytes?: number;
  /** SET signature keys, issuer, audience (see services/ingest/normalizers). */
  normalize?: Omit<NormalizeOptions, 'format'>;
  consumer?: KafkaConsumerTuning;
  log?: Logger;
  /** Wall clock for the `at` (accepted) stamp on each detection. */
  now?: () => Date;
}

export interface RawConsumerStats {
  messages: number;
  records: number;
  detections: number;
  deadLettered: number;
}

const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;

/** Provenance headers on each produced detection. */
const SOURCE_HEADERS = {
  topic: 'x-source-topic',
  partition: 'x-source-partition',
  offset: 'x-source-offset',
  recordIndex: 'x-source-record-index',
} as const;

interface ParsedValue {
  records: Array<{ index: number; record: unknown }>;
  errors: Array<{ index: number; reason: string }>;
}

interface Outcome {
  detections: BusMessage<DetectionMessage>[];
  /** For each detection: the raw message and record it came from (to dead-letter it if it cannot be encoded). */
  origins: Array<{ message: ConsumedMessage; recordIndex: number }>;
  dead: DeadLetter[];
  /** Dead-lettered while publishing (could not be encoded). */
  lateDead: number;
}

export class RawConsumer {
  readonly stats: RawConsumerStats = { messages: 0, records: 0, detections: 0, deadLettered: 0 };
  private readonly bus: KafkaClientBus;
  private readonly topics: Map<string, Required<RawTopicConfig>>;
  private readonly groupId: string;
  private readonly maxValueBytes: number;
  private readonly normalizeOpts: Omit<NormalizeOptions, 'format'>;
  private readonly tuning: KafkaConsumerTuning | undefined;
  private readonly log: Logger | undefined;
  private readonly now: () => Date;
  private readonly avroTypes = new Map<number, Promise<avro.Type>>();
  private sub: KafkaGroupSubscription | undefined;

  constructor(opts: RawConsumerOptions) {
    if (opts.topics.length === 0) {
      throw new TourniquetError('CONFIG_INVALID', 'ingest needs at least one raw topic', { status: 500 });
    }
    this.bus = opts.bus;
    this.topics = new Map(
      opts.topics.map((t) => [
        t.topic,
        { topic: t.topic, format: t.format ?? 'auto', encoding: t.encoding ?? 'auto' },
      ]),
    );
    this.groupId = opts.groupId ?? 'tourniquet.ingest';
    this.maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.normalizeOpts = opts.normalize ?? {};
    this.tuning = opts.consumer;
    this.log = opts.log;
    this.now = opts.now ?? (() => new Date());
  }

  get subscription(): KafkaGroupSubscription | undefined {
    return this.sub;
  }

  /** Joins the group on the raw topics (they must exist: they belong to the SIEM side). */
  async start(): Promise<void> {
    await this.bus.codec(TOPICS.detections); // registers the detections schema before the first record
    await this.bus.ensureTopic(this.bus.topic(TOPICS.detections));
    this.sub = await this.bus.consume({
      topics: [...this.topics.keys()],
      groupId: this.groupId,
      process: (chunk, ctx) => this.processChunk(chunk, ctx),
      ...(this.tuning ? { tuning: this.tuning } : {}),
    });
    this.log?.info({ topics: [...this.topics.keys()], groupId: this.groupId }, 'ingest consuming raw topics');
  }

  /** Finishes the chunk in flight (its produce and commit), then leaves the group. */
  async stop(): Promise<void> {
    await this.sub?.stop();
    this.sub = undefined;
  }

  private async processChunk(chunk: readonly ConsumedMessage[], ctx: ChunkContext): Promise<boolean> {
    let out: Outcome = { detections: [], origins: [], dead: [], lateDead: 0 };
    const parsed = await ctx.attempt('normalizing', async () => {
      out = { detections: [], origins: [], dead: [], lateDead: 0 };
      for (const m of chunk) await this.processMessage(m, ctx, out);
    });
    if (!parsed) return false;
    const produced = await ctx.attempt('producing', async () => {
      await Promise.all([this.publishDetections(out, ctx), this.bus.deadLetter(out.dead)]);
    });
    if (!produced) return false;
    this.stats.messages += chunk.length;
    this.stats.detections += out.detections.length;
    this.stats.deadLettered += out.dead.length + out.lateDead;
    return true;
  }

  /**
   * Publishes the chunk's detections in one request. The bus encodes everything before sending, so a
   * detection that cannot be encoded (evidence that is not JSON, …) fails the call with nothing sent;
   * then they go one by one and the one that cannot is dead-lettered (rare path).
   */
  private async publishDetections(out: Outcome, ctx: ChunkContext): Promise<void> {
    if (out.detections.length === 0) return;
    try {
      await this.bus.publish(TOPICS.detections, out.detections);
      return;
    } catch (err) {
      if (!(err instanceof TourniquetError) || err.code !== 'VALIDATION_FAILED') throw err;
    }
    const kept: BusMessage<DetectionMessage>[] = [];
    const dead: DeadLetter[] = [];
    for (const [i, d] of out.detections.entries()) {
      try {
        await this.bus.publish(TOPICS.detections, [d]);
        kept.push(d);
      } catch (err) {
        if (!(err instanceof TourniquetError) || err.code !== 'VALIDATION_FAILED') throw err;
        const origin = out.origins[i]!;
        dead.push(deadLetterOf(origin.message, ctx, 'schema_validation', err.message, origin.recordIndex));
      }
    }
    await this.bus.deadLetter(dead); // out.dead is being written concurrently: these go on their own
    out.detections = kept;
    out.lateDead = dead.length;
  }

  private async processMessage(m: ConsumedMessage, ctx: ChunkContext, out: Outcome): Promise<void> {
    const cfg = this.topics.get(ctx.topic) ?? {
      topic: ctx.topic,
      format: 'auto' as const,
      encoding: 'auto' as const,
    };
    const dead = (reason: string, error: string, recordIndex?: number) =>
      out.dead.push(deadLetterOf(m, ctx, reason, error, recordIndex));
    if (m.value === null || m.value.length === 0) return void dead('empty_value', 'message has no value');
    if (m.value.length > this.maxValueBytes) {
      return void dead(
        'too_large',
        `value of ${m.value.length} bytes exceeds the limit of ${this.maxValueBytes} bytes`,
      );
    }
    let parsed: ParsedValue;
    try {
      parsed = await this.parse(m.value, cfg.encoding);
    } catch (err) {
      const reason = deadLetterReason(err);
      if (reason === undefined) throw err; // transient (registry unreachable): the chunk is retried
      return void dead(reason, (err as Error).message);
    }
    const { records, errors } = parsed;
    for (const e of errors) dead('invalid_json', e.reason, e.index);
    if (records.length === 0 && errors.length === 0)
      return void dead('empty_value', 'value holds no records');
    const at = this.now().toISOString();
    const multi = records.length > 1;
    for (const { index, record } of records) {
      this.stats.records += 1;
      try {
        const detection = await normalize(record, { ...this.normalizeOpts, format: cfg.format });
        out.detections.push({
          key: identityKey(detection.identity),
          value: { at, detection },
          headers: {
            [SOURCE_HEADERS.topic]: ctx.topic,
            [SOURCE_HEADERS.partition]: String(ctx.partition),
            [SOURCE_HEADERS.offset]: m.offset,
            ...(multi ? { [SOURCE_HEADERS.recordIndex]: String(index) } : {}),
          },
        });
        out.origins.push({ message: m, recordIndex: index });
      } catch (err) {
        const reason = deadLetterReason(err);
        if (reason === undefined) throw err;
        const detail =
          err instanceof TourniquetError && typeof err.details?.reason === 'string'
            ? ` (${err.details.reason})`
            : '';
        dead(reason, `${(err as Error).message}${detail}`, index);
      }
    }
  }

  /** Value bytes → records, and the NDJSON lines that are not JSON (the other lines still flow). */
  private async parse(value: Buffer, encoding: RawEncoding): Promise<ParsedValue> {
    const isAvro = encoding === 'avro' || (encoding === 'auto' && value[0] === 0);
    if (isAvro) {
      const { schemaId, payload } = unframeConfluent(value);
      const type = await this.avroType(schemaId);
      let decoded: unknown;
      try {
        decoded = type.fromBuffer(payload);
      } catch (e) {
        throw decodeFailed(
          'avro_decode',
          `Avro payload does not decode with schema id ${schemaId}: ${(e as Error).message}`,
          {
            schemaId,
          },
        );
      }
      // avsc returns class instances (and Buffers for bytes): hand the normalizers plain JSON
      const plain: unknown = JSON.parse(JSON.stringify(decoded));
      return {
        records: (Array.isArray(plain) ? plain : [plain]).map((record, index) => ({ index, record })),
        errors: [],
      };
    }
    const text = value.toString('utf8');
    if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(value)) {
      throw decodeFailed('invalid_json', 'value is not UTF-8 text');
    }
    return parseRecordsIndexed(text);
  }

  private avroType(id: number): Promise<avro.Type> {
    let p = this.avroTypes.get(id);
    if (!p) {
      const registry = this.bus.registry;
      if (!registry)
        return Promise.reject(
          decodeFailed(
            'unknown_schema_id',
            `Avro value with schema id ${id} but no schema registry is configured`,
          ),
        );
      p = (async () => {
        const text = await registry.schemaById(id);
        try {
          return avro.Type.forSchema(JSON.parse(text) as avro.Schema);
        } catch (e) {
          throw decodeFailed(
            'incompatible_schema',
            `schema id ${id} is not an Avro schema: ${(e as Error).message}`,
            { schemaId: id },
          );
        }
      })();
      this.avroTypes.set(id, p);
      p.catch(() => this.avroTypes.delete(id));
    }
    return p;
  }
}
