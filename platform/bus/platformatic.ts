/**
 * The Kafka adapter of the bus port on @platformatic/kafka. Same behaviour as the kafkajs adapter
 * (platform/bus/kafka.ts) — both pass test/contract/bus.contract.ts and the Kafka end-to-end tests —
 * and the same shared pieces (platform/bus/kafka-common.ts: codecs, registry, dead letters, the chunk
 * discipline); what differs is how the client is driven:
 *
 * - publish: one idempotent producer, acks -1, the message key hashed with Kafka's Java-compatible
 *   murmur2 partitioner (positive murmur2 modulo the partitions, like kafkajs's DefaultPartitioner), so
 *   a key lands on the same partition whichever adapter produced it. A failed send retires the
 *   producer (a new producer id for the caller's retry), as in the kafkajs adapter.
 * - subscribe / consume: one consumer per (topics, group), a message stream with autocommit off. The
 *   member drains what the stream buffered (at most `maxHandlerBatch` × `partitionsConsumedConcurrently`
 *   messages), groups it by partition, and processes partitions side by side
 *   (`partitionsConsumedConcurrently`), each in offset order and in chunks of `maxHandlerBatch`; a chunk's offset is committed only after its processor resolved true. A failure
 *   inside `ctx.attempt` is retried with backoff while the partition is still assigned here
 *   (heartbeats run on their own timer in this client). Messages of a partition that moved to another
 *   member are dropped uncommitted: the new owner reads them from the last commit.
 * - recovery: when the client gives up (the stream fails on a broker outage, a commit is refused for
 *   good, a rejoin fails), the member is replaced by a new one after a backoff; nothing past the last
 *   commit was acknowledged, so it resumes exactly there.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Admin,
  Consumer,
  type ConsumerGroupJoinPayload,
  type Message,
  type MessagesStream,
  murmur2,
  ProduceAcks,
  Producer,
} from '@platformatic/kafka';
import type { Logger } from 'pino';
import { TourniquetError } from '../errors.ts';
import {
  attemptWhile,
  busClosed,
  type ChunkContext,
  type ChunkProcessor,
  type ConsumedMessage,
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
  type MessageHeaders,
  newBusStats,
  resolveTuning,
  SchemaRegistryClient,
  subscribeProcessor,
  TopicCodecs,
  type TopicSpec,
} from './kafka-common.ts';
import type { BusHandler, BusMessage, PublishReceipt } from './port.ts';
import { TOPICS } from './port.ts';

export type PlatformaticKafkaBusOptions = KafkaBusBaseOptions;

// ---------------------------------------------------------------------------------------------------
// Client plumbing

type RecordHeaders = Record<string, Buffer | string | (Buffer | string)[]>;

/** Kafka's Java-compatible partitioner (kafkajs DefaultPartitioner): positive murmur2 of the key. */
let unkeyed = 0;
export function javaCompatiblePartition(key: Buffer | undefined): number {
  if (!key) return unkeyed++ & 0x7fffffff; // unkeyed (some dead letters): round robin
  return murmur2(key) & 0x7fffffff;
}

/** Headers as this client sends them: one entry per value (a header may repeat). */
function headerMap(
  headers: RecordHeaders | Record<string, string> | undefined,
): Map<Buffer, Buffer> | undefined {
  if (!headers) return undefined;
  const out = new Map<Buffer, Buffer>();
  for (const [k, v] of Object.entries(headers)) {
    for (const one of Array.isArray(v) ? v : [v]) out.set(Buffer.from(k), Buffer.from(one));
  }
  return out;
}

/** A consumed message in the client-neutral shape the chunk processors take. */
function consumedOf(m: Message): ConsumedMessage {
  let headers: MessageHeaders | undefined;
  if (m.headers.size > 0) {
    headers = {};
    for (const [k, v] of m.headers) {
      const name = k.toString('utf8');
      const prior = headers[name];
      headers[name] = prior === undefined ? v : [...(Array.isArray(prior) ? prior : [prior]), v];
    }
  }
  return {
    key: m.key ?? null,
    value: m.value ?? null,
    offset: m.offset.toString(),
    timestamp: m.timestamp.toString(),
    ...(headers ? { headers } : {}),
  };
}

function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}

/** The group generation the stream fetched a message in. */
function generationOf(m: Message): number {
  const consumer = (m.metadata as { consumer?: { generationId?: unknown } }).consumer;
  return typeof consumer?.generationId === 'number' ? consumer.generationId : 0;
}

/** Exponential backoff for the client's own retries (joins, metadata), 300 ms doubling up to 5 s. */
function retryDelay(_client: unknown, _op: string, attempt: number): number {
  return Math.min(300 * 2 ** Math.max(0, attempt - 1), 5000);
}

/** Creates the topics that do not exist yet (replication: the broker's default). */
async function ensureTopicsPlatformatic(
  admin: Admin,
  topics: ReadonlyArray<TopicSpec>,
  opts: { partitions?: number } = {},
): Promise<string[]> {
  const existing = new Set(await admin.listTopics());
  const wanted = topics.filter((t) => !existing.has(t.topic));
  for (const t of wanted) {
    try {
      await admin.createTopics({
        topics: [t.topic],
        partitions: t.numPartitions ?? opts.partitions ?? 6,
        replicas: -1,
        ...(t.configEntries ? { configs: t.configEntries } : {}),
      });
    } catch (e) {
      // another process created it first
      if (!/already exists/i.test(errorText(e))) throw e;
    }
  }
  return wanted.map((t) => t.topic);
}

/** The message of an error and of the errors it wraps (the client nests them). */
function errorText(e: unknown): string {
  const parts: string[] = [];
  const walk = (x: unknown, depth: number) => {
    if (!x || typeof x !== 'object' || depth > 4) return;
    const err = x as { message?: unknown; errors?: unknown[]; cause?: unknown; apiId?: unknown };
    if (typeof err.message === 'string') parts.push(err.message);
    if (typeof err.apiId === 'string') parts.push(err.apiId);
    for (const inner of err.errors ?? []) walk(inner, depth + 1);
    walk(err.cause, depth + 1);
  };
  walk(e, 0);
  return parts.join(' | ');
}

// ---------------------------------------------------------------------------------------------------
// The bus

interface Member {
  topics: readonly string[];
  groupId: string;
  process: ChunkProcessor;
  tuning: Required<KafkaConsumerTuning>;
  consumer: Consumer | undefined;
  stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  assignment: Record<string, number[]>;
  /**
   * Partitions whose chunk was given up (moved to another member), by the group generation then: their
   * messages still buffered from that generation or before are dropped, so nothing after the gap is
   * done and committed ahead of it; after a rejoin the stream reads them again from the last commit.
   */
  givenUp: Map<string, number>;
  stopped: boolean;
  /** Wakes the loop waiting for messages (new data, a stop, a broken stream). */
  wake: () => void;
  onJoin: () => void;
  loop: Promise<void>;
}

export interface PlatformaticSubscription extends KafkaGroupSubscription {
  /** The current group member (a new one after a replacement). */
  readonly consumer: Consumer | undefined;
}

export class PlatformaticKafkaBus implements KafkaClientBus {
  readonly name = 'kafka';
  readonly client = 'platformatic';
  readonly registry: SchemaRegistryClient | undefined;
  readonly stats: KafkaBusStats = newBusStats();
  private readonly opts: PlatformaticKafkaBusOptions;
  private readonly log: Logger | undefined;
  private readonly codecs: TopicCodecs;
  private readonly topicReady = new Map<string, Promise<void>>();
  private readonly members = new Set<Member>();
  private readonly tuning: Required<KafkaConsumerTuning>;
  private producerInstance: Producer | undefined;
  private adminInstance: Admin | undefined;
  private closed = false;

  constructor(opts: PlatformaticKafkaBusOptions) {
    this.opts = opts;
    this.log = opts.log;
    this.registry = opts.registryUrl ? new SchemaRegistryClient(opts.registryUrl) : undefined;
    this.codecs = new TopicCodecs(this.registry, opts.codecs, (logical) => this.topic(logical));
    this.tuning = resolveTuning(opts.consumer);
  }

  private get clientId(): string {
    return this.opts.clientId ?? 'tourniquet';
  }

  topic(logical: string): string {
    return this.opts.topics?.[logical] ?? logical;
  }

  get deadLetterTopic(): string {
    return this.topic(TOPICS.deadLetters);
  }

  groupId(group: string): string {
    return this.opts.groupIds?.[group] ?? `${this.opts.groupIdPrefix ?? 'tourniquet.'}${group}`;
  }

  codec<T = unknown>(logical: string): Promise<MessageCodec<T>> {
    return this.codecs.get<T>(logical);
  }

  private admin(): Admin {
    if (!this.adminInstance) {
      const admin = new Admin({
        clientId: `${this.clientId}-admin`,
        bootstrapBrokers: this.opts.brokers,
        retries: 12,
        retryDelay,
      });
      admin.on('error', (err: unknown) => this.log?.warn({ err }, 'Kafka admin client error'));
      this.adminInstance = admin;
    }
    return this.adminInstance;
  }

  ensureTopic(physical: string, spec: Omit<TopicSpec, 'topic'> = {}): Promise<void> {
    let p = this.topicReady.get(physical);
    if (!p) {
      p = ensureTopicsPlatformatic(this.admin(), [{ topic: physical, ...spec }], {
        partitions: this.opts.partitions ?? 6,
      }).then(() => undefined);
      this.topicReady.set(physical, p);
      p.catch(() => this.topicReady.delete(physical));
    }
    return p;
  }

  async start(): Promise<void> {
    await this.ensureTopic(this.topic(TOPICS.detections));
    await this.ensureDeadLetterTopic();
    if (this.registry || this.codecs.has(TOPICS.detections)) await this.codec(TOPICS.detections);
    await this.connectProducer();
  }

  private ensureDeadLetterTopic(): Promise<void> {
    const max = this.opts.dlqMaxValueBytes ?? 8 * 1024 * 1024;
    return this.ensureTopic(this.deadLetterTopic, {
      configEntries: [{ name: 'max.message.bytes', value: String(max + 256 * 1024) }],
    });
  }

  /** The shared idempotent producer (created on first use). */
  private producer(): Producer {
    if (this.closed) throw busClosed();
    if (!this.producerInstance) {
      const producer = new Producer({
        clientId: this.clientId,
        bootstrapBrokers: this.opts.brokers,
        idempotent: true,
        acks: ProduceAcks.ALL,
        // idempotence needs unbounded retries; a publish waits out a broker outage instead of failing
        retries: Number.MAX_SAFE_INTEGER,
        retryDelay,
        partitioner: (_message, key) => javaCompatiblePartition(key),
      });
      producer.on('error', (err: unknown) => this.log?.warn({ err }, 'Kafka producer error'));
      this.producerInstance = producer;
    }
    return this.producerInstance;
  }

  /** Fails early when the broker is unreachable (a metadata round trip). */
  private async connectProducer(): Promise<void> {
    const producer = this.producer();
    await producer.metadata({ topics: [this.deadLetterTopic] });
  }

  /** Sends on the shared producer; a failed send retires it (see the file comment). */
  private async send(
    messages: Array<{
      topic: string;
      key: Buffer | undefined;
      value: Buffer | undefined;
      headers?: Map<Buffer, Buffer>;
    }>,
  ): Promise<void> {
    const producer = this.producer();
    try {
      await producer.send({ messages, acks: ProduceAcks.ALL });
    } catch (e) {
      this.retireProducer(producer, e);
      throw e;
    }
  }

  private retireProducer(producer: Producer, cause: unknown): void {
    if (this.producerInstance !== producer) return;
    this.producerInstance = undefined;
    this.stats.producersRetired += 1;
    this.log?.warn({ err: cause }, 'send failed; producer retired, the next send starts a new one');
    producer.close(true).catch((err: unknown) => {
      this.log?.warn({ err }, 'closing a retired producer failed');
    });
  }

  async publish<T>(topic: string, messages: ReadonlyArray<BusMessage<T>>): Promise<PublishReceipt[]> {
    if (this.closed) throw busClosed();
    if (messages.length === 0) return [];
    const physical = this.topic(topic);
    const codec = await this.codec<T>(topic);
    await this.ensureTopic(physical);
    const encoded = await Promise.all(
      messages.map(async (m) => {
        const headers = headerMap(m.headers);
        return {
          topic: physical,
          key: Buffer.from(m.key),
          value: await codec.encode(m.value, physical),
          ...(headers ? { headers } : {}),
        };
      }),
    );
    try {
      await this.send(encoded);
    } catch (e) {
      throw new TourniquetError('BUS_UNAVAILABLE', `publishing to ${physical} failed: ${errorText(e)}`, {
        retriable: true,
        status: 503,
        cause: e,
      });
    }
    this.stats.published += messages.length;
    return messages.map(() => ({ delivered: 'queued' }));
  }

  async deadLetter(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.ensureDeadLetterTopic();
    const records = deadLetterRecords(letters, this.opts.dlqMaxValueBytes ?? 8 * 1024 * 1024);
    await this.send(
      records.map((r) => {
        const headers = headerMap(r.headers);
        return {
          topic: this.deadLetterTopic,
          key: r.key ?? undefined,
          value: r.value ?? undefined,
          ...(headers ? { headers } : {}),
        };
      }),
    );
    this.stats.deadLettered += letters.length;
    logDeadLetters(this.log, letters);
  }

  async subscribe<T>(
    topic: string,
    group: string,
    handler: BusHandler<T>,
  ): Promise<PlatformaticSubscription> {
    if (this.closed) throw busClosed();
    const physical = this.topic(topic);
    const codec = await this.codec(topic);
    await this.ensureTopic(physical);
    return this.consume({
      topics: [physical],
      groupId: this.groupId(group),
      process: subscribeProcessor(this, codec, handler as BusHandler),
    });
  }

  async consume(opts: ConsumeOptions): Promise<PlatformaticSubscription> {
    if (this.closed) throw busClosed();
    await this.ensureDeadLetterTopic();
    await this.connectProducer(); // dead letters need it; fail early when the broker is unreachable
    let markJoined: () => void = () => undefined;
    const joined = new Promise<void>((resolve) => {
      markJoined = resolve;
    });
    const member: Member = {
      topics: opts.topics,
      groupId: opts.groupId,
      process: opts.process,
      tuning: resolveTuning(this.tuning, opts.tuning),
      consumer: undefined,
      stream: undefined,
      assignment: {},
      givenUp: new Map(),
      stopped: false,
      wake: () => undefined,
      onJoin: () => markJoined(),
      loop: Promise.resolve(),
    };
    // the first member must join here, so that a broker that cannot be reached fails the call
    await this.openStream(member);
    this.members.add(member);
    member.loop = this.runMember(member);
    await Promise.race([joined, sleep(30_000, undefined, { ref: false })]);
    return {
      topics: opts.topics,
      groupId: opts.groupId,
      joined,
      get consumer() {
        return member.consumer;
      },
      assignment: (topic?: string) => [...(member.assignment[topic ?? opts.topics[0]!] ?? [])],
      stop: () => this.stopMember(member),
    };
  }

  private newConsumer(member: Member): Consumer {
    const t = member.tuning;
    const consumer = new Consumer({
      clientId: this.clientId,
      bootstrapBrokers: this.opts.brokers,
      groupId: member.groupId,
      sessionTimeout: t.sessionTimeoutMs,
      heartbeatInterval: t.heartbeatIntervalMs,
      rebalanceTimeout: Math.max(t.rebalanceTimeoutMs, t.sessionTimeoutMs),
      maxWaitTime: t.maxWaitTimeMs,
      maxBytesPerPartition: t.maxBytesPerPartition,
      maxBytes: t.maxBytesPerPartition * 6,
      // what the stream may buffer ahead of the handler: a few handler batches
      highWaterMark: Math.max(t.maxHandlerBatch * t.partitionsConsumedConcurrently * 2, 64),
      autocommit: false,
      retries: 12,
      retryDelay,
    });
    consumer.on('consumer:group:join', (e: ConsumerGroupJoinPayload) => this.onJoin(member, consumer, e));
    // The client reports a failed rejoin here and schedules no more heartbeats: replace the member.
    consumer.on('error', (err: unknown) => {
      if (member.consumer !== consumer) return;
      this.log?.error({ err, groupId: member.groupId, topics: member.topics }, 'consumer failed');
      member.stream?.destroy(err instanceof Error ? err : new Error(String(err)));
      member.wake();
    });
    return consumer;
  }

  private onJoin(member: Member, consumer: Consumer, e: ConsumerGroupJoinPayload): void {
    if (member.consumer !== consumer) return;
    const assignment: Record<string, number[]> = {};
    for (const topic of member.topics) {
      const a = (e.assignments ?? consumer.assignments ?? []).find((x) => x.topic === topic);
      assignment[topic] = [...(a?.partitions ?? [])].sort((x, y) => x - y);
    }
    member.assignment = assignment;
    const { topics, groupId } = member;
    this.log?.info({ topics, groupId, memberId: e.memberId, assignment }, 'partitions assigned');
    member.onJoin();
  }

  /** A new consumer and its stream (joins the group). */
  private async openStream(member: Member): Promise<void> {
    const consumer = this.newConsumer(member);
    member.consumer = consumer;
    const t = member.tuning;
    try {
      const stream = await consumer.consume({
        topics: [...member.topics],
        mode: 'committed',
        fallbackMode: 'earliest',
        autocommit: false,
        sessionTimeout: t.sessionTimeoutMs,
        heartbeatInterval: t.heartbeatIntervalMs,
        rebalanceTimeout: Math.max(t.rebalanceTimeoutMs, t.sessionTimeoutMs),
      });
      stream.on('readable', () => member.wake());
      stream.on('close', () => member.wake());
      stream.on('error', (err: unknown) => {
        if (!member.stopped && !this.closed)
          this.log?.warn({ err, groupId: member.groupId, topics: member.topics }, 'message stream failed');
        member.wake();
      });
      member.stream = stream;
      if (this.opts.onConsumerLag) {
        consumer.on('consumer:lag', (lag) => this.reportLag(member, lag));
        consumer.startLagMonitoring({ topics: [...member.topics] }, 5000);
      }
    } catch (err) {
      member.consumer = undefined;
      await consumer.close(true).catch(() => undefined);
      throw err;
    }
  }

  private reportLag(member: Member, lag: Map<string, bigint[]>): void {
    for (const [topic, partitions] of lag) {
      for (const p of member.assignment[topic] ?? []) {
        const l = partitions[p];
        if (l !== undefined && l >= 0n) this.opts.onConsumerLag?.(member.groupId, topic, p, Number(l));
      }
    }
  }

  /** Consumes until stopped; replaces the member whenever its stream fails. */
  private async runMember(member: Member): Promise<void> {
    let delay = member.tuning.retryInitialMs;
    while (!member.stopped && !this.closed) {
      try {
        if (!member.stream) await this.openStream(member);
        await this.pump(member, member.stream!);
        delay = member.tuning.retryInitialMs;
      } catch (err) {
        this.log?.warn({ err, groupId: member.groupId, topics: member.topics }, 'consumer loop failed');
      }
      if (member.stopped || this.closed) return;
      // the stream ended or failed: a new member resumes from the last commit
      await this.dropConsumer(member);
      this.stats.consumerRestarts += 1;
      this.log?.warn({ groupId: member.groupId, topics: member.topics, delay }, 'replacing the group member');
      await sleep(delay);
      delay = Math.min(delay * 2, member.tuning.retryMaxMs);
    }
  }

  /** Closes the member's stream and consumer (leaving the group when the broker answers; never hangs). */
  private async dropConsumer(member: Member): Promise<void> {
    const { stream, consumer } = member;
    member.stream = undefined;
    member.consumer = undefined;
    member.assignment = {};
    member.givenUp.clear();
    consumer?.stopLagMonitoring();
    const closing = (async () => {
      if (stream && !stream.destroyed) await stream.close().catch(() => undefined);
      await consumer?.close(true).catch(() => undefined);
    })();
    await Promise.race([closing, sleep(5000, undefined, { ref: false })]);
  }

  /** Reads what the stream buffered and processes it, batch after batch, until the stream ends. */
  private async pump(member: Member, stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): Promise<void> {
    // enough for every partition processed side by side to get a full chunk
    const max = member.tuning.maxHandlerBatch * member.tuning.partitionsConsumedConcurrently;
    while (!member.stopped && !this.closed) {
      if (stream.destroyed || stream.readableEnded) return;
      const batch: Message[] = [];
      while (batch.length < max) {
        const m = stream.read() as Message | null;
        if (m === null) break;
        batch.push(m);
      }
      if (batch.length === 0) {
        await new Promise<void>((resolve) => {
          member.wake = resolve;
          if (stream.readableLength > 0 || stream.destroyed) resolve();
        });
        member.wake = () => undefined;
        continue;
      }
      await this.processBatch(member, stream, batch);
    }
  }

  /**
   * Per partition, in offset order and in chunks of at most `maxHandlerBatch`, partitions side by side
   * (at most `partitionsConsumedConcurrently`). A partition stops at its first chunk not done.
   */
  private async processBatch(
    member: Member,
    stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>,
    batch: Message[],
  ): Promise<void> {
    const byPartition = new Map<string, Message[]>();
    for (const m of batch) {
      const key = partitionKey(m.topic, m.partition);
      const givenUpAt = member.givenUp.get(key);
      if (givenUpAt !== undefined && generationOf(m) <= givenUpAt) continue;
      const list = byPartition.get(key);
      if (list) list.push(m);
      else byPartition.set(key, [m]);
    }
    const queue = [...byPartition.values()];
    const max = member.tuning.maxHandlerBatch;
    const workers = Array.from(
      { length: Math.min(member.tuning.partitionsConsumedConcurrently, queue.length) },
      async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          for (let i = 0; i < next.length; i += max) {
            const chunk = next.slice(i, i + max);
            if (await this.processChunk(member, stream, chunk)) continue;
            member.givenUp.set(
              partitionKey(chunk[0]!.topic, chunk[0]!.partition),
              member.consumer?.generationId ?? 0,
            );
            break;
          }
        }
      },
    );
    await Promise.all(workers);
  }

  private owns(member: Member, topic: string, partition: number): boolean {
    const consumer = member.consumer;
    if (!consumer) return false;
    const assigned = consumer.assignments?.find((a) => a.topic === topic);
    return assigned?.partitions.includes(partition) ?? false;
  }

  /** One chunk of one partition: true once processed and committed, false when given up. */
  private async processChunk(
    member: Member,
    stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>,
    messages: Message[],
  ): Promise<boolean> {
    const first = messages[0]!;
    const { topic, partition } = first;
    const t = member.tuning;
    const alive = () =>
      !member.stopped && !this.closed && !stream.destroyed && this.owns(member, topic, partition);
    const ctx: ChunkContext = {
      topic,
      partition,
      groupId: member.groupId,
      attempt: attemptWhile(alive, t, (what, err, attempt) => {
        if (what === 'handler') this.stats.handlerFailures += 1;
        this.log?.warn(
          { err, topic, partition, groupId: member.groupId, attempt },
          `${what} failed; not committing, retrying`,
        );
      }),
    };
    if (!alive()) return false; // moved to another member: it reads them from the last commit
    const chunk = messages.map(consumedOf);
    if (!(await member.process(chunk, ctx))) return false;
    // Done, even when stopping (stop waits for this commit); a partition that moved meanwhile is not
    // committed from here: its new owner does the chunk again (at least once).
    if (stream.destroyed || !this.owns(member, topic, partition)) return false;
    const last = messages[messages.length - 1]!;
    await member.consumer!.commit({
      offsets: [{ topic, partition, offset: last.offset + 1n, leaderEpoch: last.leaderEpoch }],
    });
    this.stats.commits += 1;
    return true;
  }

  /** Finishes the chunk in flight (its commit included), then leaves the group. */
  private async stopMember(member: Member): Promise<void> {
    if (member.stopped) return;
    member.stopped = true;
    this.members.delete(member);
    member.wake();
    await member.loop.catch(() => undefined);
    await this.dropConsumer(member);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.members].map((m) => this.stopMember(m)));
    const producer = this.producerInstance;
    this.producerInstance = undefined;
    await producer?.close().catch(() => undefined);
    await this.adminInstance?.close().catch(() => undefined);
  }
}
