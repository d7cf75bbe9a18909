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
import {
  type Admin,
  type Consumer,
  type EachBatchPayload,
  Kafka,
  type LogEntry,
  logLevel,
  Partitioners,
  type Producer,
  type ProducerRecord,
} from 'kafkajs';
import type { Logger } from 'pino';
import { TourniquetError } from '../errors.ts';
import {
  attemptWhile,
  busClosed,
  type ChunkContext,
  type ChunkProcessor,
  type ConsumeOptions,
  type DeadLetter,
  deadLetterRecords,
  type KafkaBusBaseOptions,
  type KafkaBusStats,
  type KafkaClientBus,
  type KafkaConsumerTuning,
  type KafkaGroupSubscription,
  logDeadLetters,
  type MessageCodec,
  newBusStats,
  nextOffset,
  resolveTuning,
  SchemaRegistryClient,
  subscribeProcessor,
  TopicCodecs,
  type TopicSpec,
} from './kafka-common.ts';
import type { BusHandler, BusMessage, PublishReceipt } from './port.ts';
import { TOPICS } from './port.ts';
import './kafkajs-patches.ts'; // before any client exists: see the file

// Shared with the @platformatic/kafka adapter; re-exported so existing imports keep working.
export {
  type ConsumeOptions,
  type DeadLetter,
  DetectionAvroCodec,
  DLQ_HEADERS,
  encodeFramed,
  frameConfluent,
  headerString,
  JsonCodec,
  type KafkaBusStats,
  type KafkaConsumerTuning,
  type MessageCodec,
  SchemaRegistryClient,
  stringHeaders,
  type TopicSpec,
} from './kafka-common.ts';

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

// ---------------------------------------------------------------------------------------------------
// The bus

export interface KafkaBusOptions extends KafkaBusBaseOptions {
  /** A kafkajs client to share; default: one built from brokers/clientId. */
  kafka?: Kafka;
}

export interface KafkaSubscription extends KafkaGroupSubscription {
  readonly consumer: Consumer;
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

export class KafkaBus implements KafkaClientBus {
  readonly name = 'kafka';
  readonly kafka: Kafka;
  readonly registry: SchemaRegistryClient | undefined;
  readonly stats: KafkaBusStats = newBusStats();
  private readonly opts: KafkaBusOptions;
  private readonly log: Logger | undefined;
  private readonly codecs: TopicCodecs;
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
    this.codecs = new TopicCodecs(this.registry, opts.codecs, (logical) => this.topic(logical));
    this.tuning = resolveTuning(opts.consumer);
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
  codec<T = unknown>(logical: string): Promise<MessageCodec<T>> {
    return this.codecs.get<T>(logical);
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
    if (this.closed) return Promise.reject(busClosed());
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
    if (this.closed) throw busClosed();
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
    const messages = deadLetterRecords(letters, this.opts.dlqMaxValueBytes ?? 8 * 1024 * 1024);
    await this.send({ topic: this.deadLetterTopic, acks: -1, messages });
    this.stats.deadLettered += letters.length;
    logDeadLetters(this.log, letters);
  }

  async subscribe<T>(topic: string, group: string, handler: BusHandler<T>): Promise<KafkaSubscription> {
    if (this.closed) throw busClosed();
    const physical = this.topic(topic);
    const groupId = this.groupId(group);
    const codec = await this.codec(topic);
    await this.ensureTopic(physical);
    return this.consume({
      topics: [physical],
      groupId,
      process: subscribeProcessor(this, codec, handler as BusHandler),
    });
  }

  /**
   * A consumer-group member over physical topics with the bus's commit discipline: per partition
   * batch, chunk by chunk, `process` runs and only once it resolved true are the chunk's offsets
   * resolved and committed. Failures inside `ctx.attempt` are retried while the partition is ours.
   * The ingest raw consumer and `subscribe` are both built on it.
   */
  async consume(opts: ConsumeOptions): Promise<KafkaSubscription> {
    if (this.closed) throw busClosed();
    await this.ensureDeadLetterTopic();
    await this.producer(); // dead letters need it; fail early when the broker is unreachable
    const t = resolveTuning(this.tuning, opts.tuning);
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
      attempt: attemptWhile(alive, t, (what, err, attempt) => {
        if (what === 'handler') this.stats.handlerFailures += 1;
        this.log?.warn(
          { err, topic: batch.topic, partition: batch.partition, groupId: state.groupId, attempt },
          `${what} failed; not committing, retrying`,
        );
      }),
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
