import avro from 'avsc';
import type { Kafka } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
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
import { TourniquetError } from '../errors.ts';
import { DETECTION_AVSC_TEXT, detectionAvroType, toAvro } from './avro.ts';
import {
  createKafka,
  type DetectionAvroCodec,
  DLQ_HEADERS,
  frameConfluent,
  JsonCodec,
  KafkaBus,
  type KafkaSubscription,
  SchemaRegistryClient,
} from './kafka.ts';
import { TOPICS } from './port.ts';

let bootstrap: string;
let registryUrl: string;

beforeAll(async () => {
  [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
});

function bus(): KafkaBus {
  return new KafkaBus({
    brokers: [bootstrap],
    registryUrl,
    clientId: 'tq-contract',
    consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitTimeMs: 100, retryInitialMs: 50 },
  });
}

/** Every group's members together hold all 6 partitions, each exactly once. */
async function settle(subs: ReadonlyArray<KafkaSubscription>): Promise<void> {
  await Promise.all(subs.map((s) => s.joined));
  const groups = new Map<string, KafkaSubscription[]>();
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
  'KafkaBus',
  {
    failure: 'redelivered',
    publishAwaitsHandlers: false,
    sharedGroups: true,
    retainsWhileUnsubscribed: true,
  },
  async () => {
    const run = uniqueName('contract');
    return {
      newBus: async () => bus(),
      topic: (name) => `${run}.${name}`,
      group: (name) => `${run}.${name}`,
      settle: (subs) => settle(subs as KafkaSubscription[]),
      timeoutMs: 30_000,
    };
  },
);

// ---------------------------------------------------------------------------------------------------
// Kafka-specific behaviour beyond the port contract

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

describe('KafkaBus on a real broker and registry', () => {
  let kafka: Kafka;
  beforeAll(() => {
    kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-kafka-int' });
  });

  function detectionsBus(
    run: string,
    over: Partial<ConstructorParameters<typeof KafkaBus>[0]> = {},
  ): KafkaBus {
    return new KafkaBus({
      brokers: [bootstrap],
      registryUrl,
      clientId: 'tq-kafka-int',
      topics: { [TOPICS.detections]: `${run}.detections`, [TOPICS.deadLetters]: `${run}.dlq` },
      groupIdPrefix: `${run}.`,
      consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitTimeMs: 100, retryInitialMs: 50 },
      ...over,
    });
  }

  it('dead-letters every undecodable message with its reason and position, and the partition moves on', async () => {
    const run = uniqueName('int-dlq');
    const bus = detectionsBus(run);
    try {
      await bus.start();
      const got: DetectionMessage[] = [];
      const sub = await bus.subscribe<DetectionMessage>(TOPICS.detections, 'decider', async (batch) => {
        got.push(...batch.map((m) => m.value));
        return batch.map(() => null);
      });
      await sub.joined;
      const key = identityKey(detection(0).identity); // one key: one partition, good and bad interleaved
      const at = '2026-11-01T09:00:00.000Z';
      await bus.publish<DetectionMessage>(
        TOPICS.detections,
        [0, 1].map((n) => ({ key, value: { at, detection: detection(n) } })),
      );

      const registry = new SchemaRegistryClient(registryUrl);
      const otherId = await registry.register(
        `${run}.other-value`,
        JSON.stringify({ type: 'record', name: 'Other', fields: [{ name: 'x', type: 'int' }] }),
      );
      const codec = (await bus.codec(TOPICS.detections)) as DetectionAvroCodec;
      const goodFrame = codec.encode({ at, detection: detection(99) });
      const invalid = frameConfluent(
        codec.id!,
        detectionAvroType.toBuffer({ ...toAvro(detection(98)), confidence: 5 }),
      );
      const bad: Array<[string, Buffer | null]> = [
        ['bad_magic_byte', Buffer.from(JSON.stringify(detection(2)))],
        ['unknown_schema_id', frameConfluent(987_654_321, goodFrame.subarray(5))],
        ['incompatible_schema', frameConfluent(otherId, Buffer.from([2]))],
        ['avro_decode', goodFrame.subarray(0, 12)],
        ['schema_validation', invalid],
        ['empty_value', null],
      ];
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: `${run}.detections`,
        acks: -1,
        messages: bad.map(([reason, value]) => ({ key, value, headers: { 'x-case': reason } })),
      });
      await producer.disconnect();
      await bus.publish<DetectionMessage>(
        TOPICS.detections,
        [3, 4].map((n) => ({ key, value: { at, detection: detection(n) } })),
      );

      await waitFor(() => got.length >= 4, 30_000, 'the good messages after the poison ones');
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
        expect(letter!.headers[DLQ_HEADERS.error]!.length).toBeGreaterThan(0);
        expect(letter!.headers[DLQ_HEADERS.sourceTopic]).toBe(`${run}.detections`);
        expect(letter!.headers[DLQ_HEADERS.group]).toBe(`${run}.decider`);
        expect(Number(letter!.headers[DLQ_HEADERS.partition])).toBeGreaterThanOrEqual(0);
        expect(Number(letter!.headers[DLQ_HEADERS.offset])).toBeGreaterThanOrEqual(2);
        expect(letter!.key?.toString()).toBe(key);
        if (value === null) expect(letter!.value).toBeNull();
        else expect(Buffer.compare(letter!.value!, value)).toBe(0);
      }
      const offsets = dlq.map((m) => Number(m.headers[DLQ_HEADERS.offset])).sort((a, b) => a - b);
      expect(offsets).toEqual([2, 3, 4, 5, 6, 7]);

      // committed to the end: nothing left behind on any partition
      const admin = kafka.admin();
      await admin.connect();
      await waitFor(
        async () => (await groupCaughtUp(admin, `${run}.decider`, `${run}.detections`)).done,
        10_000,
        'commits',
      );
      await admin.disconnect();
    } finally {
      await bus.close();
    }
  }, 90_000);

  it('JSON topics: invalid JSON and values failing the zod schema are dead-lettered', async () => {
    const run = uniqueName('int-json');
    const schema = z.object({ n: z.number().int() });
    const bus = detectionsBus(run, { codecs: { [`${run}.cmds`]: new JsonCodec(schema) } });
    try {
      const got: number[] = [];
      const sub = await bus.subscribe<{ n: number }>(`${run}.cmds`, 'g', async (batch) => {
        got.push(...batch.map((m) => m.value.n));
        return batch.map(() => null);
      });
      await sub.joined;
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: `${run}.cmds`,
        messages: [
          { key: 'k', value: '{"n":1}' },
          { key: 'k', value: '{"n":' },
          { key: 'k', value: '{"n":"two"}' },
          { key: 'k', value: '{"n":3}' },
        ],
      });
      await producer.disconnect();
      await waitFor(() => got.length >= 2, 30_000, 'good messages');
      expect(got).toEqual([1, 3]);
      const dlq = await waitFor(
        async () => {
          const msgs = await readTopic(kafka, `${run}.dlq`);
          return msgs.length >= 2 ? msgs : undefined;
        },
        30_000,
        'dead letters',
      );
      expect(dlq.map((m) => m.headers[DLQ_HEADERS.reason]).sort()).toEqual([
        'invalid_json',
        'schema_validation',
      ]);
    } finally {
      await bus.close();
    }
  }, 60_000);

  it('registers the detections schema with BACKWARD compatibility and reads an evolved writer schema', async () => {
    const run = uniqueName('int-schema');
    const bus = detectionsBus(run);
    try {
      await bus.start();
      const subject = `${run}.detections-value`;
      const registry = new SchemaRegistryClient(registryUrl);
      expect(await registry.getCompatibility(subject)).toBe('BACKWARD');
      const v1 = JSON.parse(DETECTION_AVSC_TEXT) as { fields: Array<Record<string, unknown>> };
      // a required field without a default cannot read v1 data: BACKWARD refuses it
      const breaking = { ...v1, fields: [...v1.fields, { name: 'tenantTier', type: 'string' }] };
      expect(await registry.isCompatible(subject, JSON.stringify(breaking))).toBe(false);
      await expect(registry.register(subject, JSON.stringify(breaking))).rejects.toThrow(
        /incompatible|refused/,
      );
      // an added optional field is fine; data written with it is read into the current schema
      const v2 = {
        ...v1,
        fields: [...v1.fields, { name: 'tenantTier', type: ['null', 'string'], default: null }],
      };
      const v2Id = await registry.register(subject, JSON.stringify(v2));
      const codec = (await bus.codec(TOPICS.detections)) as DetectionAvroCodec;
      expect(v2Id).not.toBe(codec.id);
      const got: DetectionMessage[] = [];
      const sub = await bus.subscribe<DetectionMessage>(TOPICS.detections, 'decider', async (batch) => {
        got.push(...batch.map((m) => m.value));
        return batch.map(() => null);
      });
      await sub.joined;
      const writer = avro.Type.forSchema(v2 as unknown as avro.Schema);
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: `${run}.detections`,
        messages: [
          {
            key: 'k',
            value: frameConfluent(
              v2Id,
              writer.toBuffer({ ...toAvro(detection(7), '2026-11-01T10:00:00.000Z'), tenantTier: 'gold' }),
            ),
          },
        ],
      });
      await producer.disconnect();
      await waitFor(() => got.length === 1, 30_000, 'the v2 message');
      expect(got[0]).toEqual({ at: '2026-11-01T10:00:00.000Z', detection: detection(7) });
    } finally {
      await bus.close();
    }
  }, 60_000);

  it('heartbeats through a handler slower than the session timeout: no rebalance, no redelivery', async () => {
    const run = uniqueName('int-slow');
    const bus = detectionsBus(run);
    try {
      const calls: number[] = [];
      const sub = await bus.subscribe<{ n: number }>(`${run}.slow`, 'g', async (batch) => {
        calls.push(...batch.map((m) => m.value.n));
        if (calls.length === batch.length) await new Promise((r) => setTimeout(r, 9000)); // 1.5 × session timeout
        return batch.map(() => null);
      });
      await sub.joined;
      let joins = 0;
      sub.consumer.on(sub.consumer.events.GROUP_JOIN, () => {
        joins += 1;
      });
      await bus.publish(`${run}.slow`, [{ key: 'k', value: { n: 1 } }]);
      await waitFor(() => calls.length >= 1, 20_000, 'the first call');
      await bus.publish(`${run}.slow`, [{ key: 'k', value: { n: 2 } }]);
      await waitFor(() => calls.length >= 2, 30_000, 'the second message');
      await new Promise((r) => setTimeout(r, 500));
      expect(calls).toEqual([1, 2]);
      expect(joins).toBe(0);
    } finally {
      await bus.close();
    }
  }, 60_000);

  it('a failing handler keeps the offsets uncommitted; stop() is prompt and the next member gets the messages', async () => {
    const run = uniqueName('int-stop');
    const topic = `${run}.t`;
    const bus1 = detectionsBus(run);
    const bus2 = detectionsBus(run);
    try {
      let attempts = 0;
      const sub1 = await bus1.subscribe<{ n: number }>(topic, 'g', async () => {
        attempts += 1;
        throw new TourniquetError('STORE_UNAVAILABLE', 'store down', { retriable: true });
      });
      await sub1.joined;
      await bus1.publish(
        topic,
        [1, 2, 3].map((n) => ({ key: `k${n}`, value: { n } })),
      );
      await waitFor(() => attempts >= 3, 20_000, 'retries');
      const t0 = Date.now();
      await sub1.stop();
      expect(Date.now() - t0).toBeLessThan(5000);
      const got: number[] = [];
      const sub2 = await bus2.subscribe<{ n: number }>(topic, 'g', async (batch) => {
        got.push(...batch.map((m) => m.value.n));
        return batch.map(() => null);
      });
      await sub2.joined;
      await waitFor(() => got.length >= 3, 30_000, 'redelivery to the next member');
      expect(got.sort()).toEqual([1, 2, 3]);
      expect(bus1.stats.handlerFailures).toBeGreaterThanOrEqual(3);
    } finally {
      await bus1.close();
      await bus2.close();
    }
  }, 60_000);
});
