import { Partitioners } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { identityKey, type NormalizedDetection } from '../../schemas/detection.ts';
import type { DetectionMessage } from '../../schemas/messages.ts';
import { busContract } from '../../test/contract/bus.contract.ts';
import {
  ensureKafka,
  ensureRegistry,
  groupCaughtUp,
  readTopic,
  uniqueName,
  waitFor,
} from '../../test/support/kafka.ts';
import { detectionAvroType, toAvro } from './avro.ts';
import {
  createKafka,
  type DetectionAvroCodec,
  DLQ_HEADERS,
  ensureTopics,
  frameConfluent,
  KafkaBus,
} from './kafka.ts';
import type { KafkaGroupSubscription } from './kafka-common.ts';
import { PlatformaticKafkaBus, type PlatformaticKafkaBusOptions } from './platformatic.ts';
import { TOPICS } from './port.ts';

let bootstrap: string;
let registryUrl: string;

beforeAll(async () => {
  [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
});

const TUNING = { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitTimeMs: 100, retryInitialMs: 50 };

function bus(over: Partial<PlatformaticKafkaBusOptions> = {}): PlatformaticKafkaBus {
  return new PlatformaticKafkaBus({
    brokers: [bootstrap],
    registryUrl,
    clientId: 'tq-contract-platformatic',
    consumer: TUNING,
    ...over,
  });
}

/** Every group's members together hold all 6 partitions, each exactly once. */
async function settle(subs: ReadonlyArray<KafkaGroupSubscription>): Promise<void> {
  await Promise.all(subs.map((s) => s.joined));
  const groups = new Map<string, KafkaGroupSubscription[]>();
  for (const s of subs) groups.set(s.groupId, [...(groups.get(s.groupId) ?? []), s]);
  await waitFor(
    () =>
      [...groups.values()].every((members) => {
        const all = members.flatMap((m) => m.assignment());
        return all.length === 6 && new Set(all).size === 6 && members.every((m) => m.assignment().length > 0);
      }),
    30_000,
    'stable assignments',
  );
}

busContract(
  'PlatformaticKafkaBus',
  {
    failure: 'redelivered',
    publishAwaitsHandlers: false,
    sharedGroups: true,
    retainsWhileUnsubscribed: true,
  },
  async () => {
    const run = uniqueName('contract-plt');
    return {
      newBus: async () => bus(),
      topic: (name) => `${run}.${name}`,
      group: (name) => `${run}.${name}`,
      settle: (subs) => settle(subs as KafkaGroupSubscription[]),
      timeoutMs: 30_000,
    };
  },
);

function detection(n: number, user = 'alice'): NormalizedDetection {
  return {
    id: `det-${n}`,
    source: 'int-test',
    kind: 'anomalous_token_use',
    confidence: 0.5,
    severity: 'medium',
    identity: { provider: 'okta', id: user, type: 'human' },
    occurredAt: new Date(Date.UTC(2026, 10, 1, 8, 0, n)).toISOString(),
    evidence: { n },
  };
}

describe('PlatformaticKafkaBus on a real broker and registry', () => {
  function detectionsBus(run: string): PlatformaticKafkaBus {
    return bus({
      topics: { [TOPICS.detections]: `${run}.detections`, [TOPICS.deadLetters]: `${run}.dlq` },
      groupIdPrefix: `${run}.`,
    });
  }

  it('dead-letters undecodable detections with reason and position; the partition moves on and is committed to the end', async () => {
    const run = uniqueName('int-plt-dlq');
    const b = detectionsBus(run);
    const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-plt-int' });
    try {
      await b.start();
      const got: DetectionMessage[] = [];
      const sub = await b.subscribe<DetectionMessage>(TOPICS.detections, 'decider', async (batch) => {
        got.push(...batch.map((m) => m.value));
        return batch.map(() => null);
      });
      await sub.joined;
      const key = identityKey(detection(0).identity);
      const at = '2026-11-01T09:00:00.000Z';
      await b.publish<DetectionMessage>(
        TOPICS.detections,
        [0, 1].map((n) => ({ key, value: { at, detection: detection(n) } })),
      );
      const codec = (await b.codec(TOPICS.detections)) as DetectionAvroCodec;
      const goodFrame = codec.encode({ at, detection: detection(99) });
      const bad: Array<[string, Buffer | null]> = [
        ['bad_magic_byte', Buffer.from(JSON.stringify(detection(2)))],
        ['unknown_schema_id', frameConfluent(987_654_321, goodFrame.subarray(5))],
        ['avro_decode', goodFrame.subarray(0, 12)],
        [
          'schema_validation',
          frameConfluent(codec.id!, detectionAvroType.toBuffer({ ...toAvro(detection(98)), confidence: 5 })),
        ],
        ['empty_value', null],
      ];
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({
        topic: `${run}.detections`,
        acks: -1,
        messages: bad.map(([reason, value]) => ({ key, value, headers: { 'x-case': reason } })),
      });
      await producer.disconnect();
      await b.publish<DetectionMessage>(
        TOPICS.detections,
        [3, 4].map((n) => ({ key, value: { at, detection: detection(n) } })),
      );
      await waitFor(() => got.length >= 4, 30_000, 'the good messages after the poison ones');
      // one key, one partition, whichever client produced it: order across both producers holds
      expect(got.map((g) => g.detection.id)).toEqual(['det-0', 'det-1', 'det-3', 'det-4']);
      expect(got[0]).toEqual({ at, detection: detection(0) });
      const dlq = await waitFor(
        async () => {
          const msgs = await readTopic(kafka, `${run}.dlq`);
          return msgs.length >= bad.length ? msgs : undefined;
        },
        30_000,
        'dead letters',
      );
      expect(dlq).toHaveLength(bad.length);
      for (const [reason, value] of bad) {
        const letter = dlq.find((m) => m.headers['x-case'] === reason);
        expect(letter, reason).toBeDefined();
        expect(letter!.headers[DLQ_HEADERS.reason]).toBe(reason);
        expect(letter!.headers[DLQ_HEADERS.sourceTopic]).toBe(`${run}.detections`);
        expect(letter!.headers[DLQ_HEADERS.group]).toBe(`${run}.decider`);
        expect(letter!.key?.toString()).toBe(key);
        if (value === null) expect(letter!.value).toBeNull();
        else expect(Buffer.compare(letter!.value!, value)).toBe(0);
      }
      expect(dlq.map((m) => Number(m.headers[DLQ_HEADERS.offset])).sort((x, y) => x - y)).toEqual([
        2, 3, 4, 5, 6,
      ]);
      const admin = kafka.admin();
      await admin.connect();
      await waitFor(
        async () => (await groupCaughtUp(admin, `${run}.decider`, `${run}.detections`)).done,
        10_000,
        'commits',
      );
      await admin.disconnect();
    } finally {
      await b.close();
    }
  }, 90_000);

  it('puts a key on the same partition as the kafkajs adapter', async () => {
    const run = uniqueName('int-plt-partition');
    const topic = `${run}.t`;
    const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-plt-int' });
    await ensureTopics(kafka, [topic], { partitions: 6 });
    const plt = bus();
    const kjs = new KafkaBus({ brokers: [bootstrap], clientId: 'tq-plt-int-kafkajs' });
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `okta:user-${i}@example.com`);
      await plt.publish(
        topic,
        keys.map((key) => ({ key, value: { by: 'platformatic' } })),
      );
      await kjs.publish(
        topic,
        keys.map((key) => ({ key, value: { by: 'kafkajs' } })),
      );
      const msgs = await waitFor(
        async () => {
          const m = await readTopic(kafka, topic);
          return m.length >= 120 ? m : undefined;
        },
        30_000,
        'both producers',
      );
      const partitionOf = new Map<string, Set<number>>();
      for (const m of msgs) {
        const k = m.key!.toString();
        partitionOf.set(k, (partitionOf.get(k) ?? new Set()).add(m.partition));
      }
      for (const key of keys) expect(partitionOf.get(key)?.size, key).toBe(1);
      expect(new Set(msgs.map((m) => m.partition)).size).toBeGreaterThan(1);
    } finally {
      await Promise.all([plt.close(), kjs.close()]);
    }
  }, 60_000);

  it('replaces a group member the client gave up on, and resumes at the last commit', async () => {
    const run = uniqueName('int-plt-replace');
    const topic = `${run}.t`;
    const b = bus({ groupIdPrefix: `${run}.` });
    try {
      const seen: number[] = [];
      const sub = await b.subscribe<{ n: number }>(topic, 'g', async (batch) => {
        seen.push(...batch.map((m) => m.value.n));
        return batch.map(() => null);
      });
      await settle([sub]);
      const send = (from: number) =>
        b.publish(
          topic,
          Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 5}`, value: { n: from + i } })),
        );
      await send(0);
      await waitFor(() => new Set(seen).size === 30, 30_000, 'the first messages');
      const admin = createKafka({ brokers: [bootstrap], clientId: 'tq-plt-int' }).admin();
      await admin.connect();
      await waitFor(async () => (await groupCaughtUp(admin, `${run}.g`, topic)).done, 10_000, 'commits');
      await admin.disconnect();
      const first = sub.consumer!;
      await first.close(true); // what the client does when it gives up: the member's stream ends
      await send(30);
      await waitFor(() => new Set(seen).size === 60, 60_000, 'the messages after the replacement');
      expect(sub.consumer).toBeDefined();
      expect(sub.consumer).not.toBe(first);
      expect(b.stats.consumerRestarts).toBeGreaterThanOrEqual(1);
      // what was committed before is not handed out again
      expect(seen.filter((n) => n < 30)).toHaveLength(30);
    } finally {
      await b.close();
    }
  }, 90_000);
});
