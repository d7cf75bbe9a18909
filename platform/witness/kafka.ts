import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { createKafka, ensureTopics } from '../bus/kafka.ts';
import { TourniquetError } from '../errors.ts';
import { type Anchor, parseAnchor, type Witness } from './port.ts';

/**
 * A Kafka compacted topic (distributed mode): one record per published head, keyed by the store id,
 * so compaction keeps at least the latest head of each store (the latest is the one that matters: a
 * chain intact up to it is intact up to every earlier head). The topic is created on first use with
 * one partition and `cleanup.policy=compact`. Kafka's own ACLs decide who may write to it; give the
 * database's operators read access only.
 */
export class KafkaWitness implements Witness {
  readonly name: string;
  private readonly kafka: Kafka;
  private readonly topic: string;
  private producer: Promise<Producer> | undefined;
  private topicReady: Promise<unknown> | undefined;

  constructor(opts: { brokers: string[]; topic: string; log?: Logger; clientId?: string }) {
    this.topic = opts.topic;
    this.name = `kafka:${opts.topic}`;
    this.kafka = createKafka({
      brokers: opts.brokers,
      clientId: opts.clientId ?? 'tourniquet-witness',
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  async publish(anchor: Anchor): Promise<void> {
    await this.ensureTopic();
    this.producer ??= (async () => {
      const p = this.kafka.producer({
        allowAutoTopicCreation: false,
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await p.connect();
      return p;
    })();
    const producer = await this.producer.catch((e) => {
      this.producer = undefined;
      throw unavailable(this.name, e);
    });
    try {
      await producer.send({
        topic: this.topic,
        acks: -1,
        messages: [{ key: anchor.store, value: JSON.stringify(anchor) }],
      });
    } catch (e) {
      throw unavailable(this.name, e);
    }
  }

  async read(store: string): Promise<Anchor[]> {
    await this.ensureTopic();
    const admin = this.kafka.admin();
    await admin.connect();
    let ends: Array<{ partition: number; high: string; low: string }>;
    try {
      ends = await admin.fetchTopicOffsets(this.topic);
    } finally {
      await admin.disconnect();
    }
    const pending = new Map(
      ends.filter((e) => BigInt(e.high) > BigInt(e.low)).map((e) => [e.partition, BigInt(e.high)]),
    );
    if (pending.size === 0) return [];
    const anchors: Anchor[] = [];
    // A throwaway group that commits nothing: reading never moves anyone's offsets.
    const consumer = this.kafka.consumer({ groupId: `tourniquet-witness-read-${randomUUID()}` });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              try {
                const a = parseAnchor(JSON.parse(message.value?.toString('utf8') ?? 'null'));
                if (a && a.store === store) anchors.push(a);
              } catch {
                // not an anchor: ignored, as the file witness ignores a torn line
              }
              const high = pending.get(partition);
              if (high !== undefined && BigInt(message.offset) + 1n >= high) pending.delete(partition);
              if (pending.size === 0) resolve();
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    return anchors;
  }

  async close(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (p) await (await p.catch(() => undefined))?.disconnect();
  }

  private ensureTopic(): Promise<unknown> {
    this.topicReady ??= ensureTopics(this.kafka, [
      { topic: this.topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
    ]).catch((e) => {
      this.topicReady = undefined;
      throw unavailable(this.name, e);
    });
    return this.topicReady;
  }
}

function unavailable(name: string, e: unknown): TourniquetError {
  return new TourniquetError('STORE_UNAVAILABLE', `witness ${name}: ${(e as Error).message}`, {
    retriable: true,
    status: 503,
    cause: e,
  });
}
