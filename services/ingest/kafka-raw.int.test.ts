import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDetectionAvro } from '../../platform/bus/avro.ts';
import {
  createKafka,
  DLQ_HEADERS,
  ensureTopics,
  frameConfluent,
  KafkaBus,
  type KafkaBusOptions,
} from '../../platform/bus/kafka.ts';
import { type BusMessage, type PublishReceipt, TOPICS } from '../../platform/bus/port.ts';
import { TourniquetError } from '../../platform/errors.ts';
import { identityKey } from '../../schemas/detection.ts';
import {
  ensureKafka,
  ensureRegistry,
  groupCaughtUp,
  guardDutyRecord,
  ocsfRecord,
  oktaRecord,
  readTopic,
  uniqueName,
  waitFor,
} from '../../test/support/kafka.ts';
import { normalize } from './normalizers/index.ts';
import { RawConsumer } from './raw-consumer.ts';

let bootstrap: string;
let registryUrl: string;
let kafka: Kafka;

beforeAll(async () => {
  [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
  kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-raw-int' });
});

function busOptions(run: string): KafkaBusOptions {
  return {
    brokers: [bootstrap],
    registryUrl,
    clientId: 'tq-raw-int',
    topics: { [TOPICS.detections]: `${run}.detections`, [TOPICS.deadLetters]: `${run}.dlq` },
    consumer: {
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 100,
      retryInitialMs: 50,
      retryMaxMs: 200,
    },
  };
}

async function produce(
  topic: string,
  messages: Array<{ key?: string; value: Buffer | string | null }>,
): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic,
    acks: -1,
    messages: messages.map((m) => ({ key: m.key ?? 'raw', value: m.value })),
  });
  await producer.disconnect();
}

async function caughtUp(groupId: string, topic: string): Promise<boolean> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await groupCaughtUp(admin, groupId, topic)).done;
  } finally {
    await admin.disconnect();
  }
}

describe('ingest raw consumer on a real broker', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const s of stops.reverse()) await s();
  });

  it('normalizes JSON, arrays and NDJSON; dead-letters what cannot be parsed, normalized or is too large', async () => {
    const run = uniqueName('int-raw');
    const raw = `${run}.raw`;
    await ensureTopics(kafka, [raw]);
    const bus = new KafkaBus(busOptions(run));
    const ingest = new RawConsumer({
      bus,
      topics: [{ topic: raw }],
      groupId: `${run}.ingest`,
      maxValueBytes: 64 * 1024,
    });
    stops.push(async () => {
      await ingest.stop();
      await bus.close();
    });
    await ingest.start();

    const good = [
      ocsfRecord(run, 1, 'u1'),
      oktaRecord(run, 2, 'u2'),
      guardDutyRecord(run, 3, 'r3'),
      oktaRecord(run, 4, 'u4', 'reported'),
    ];
    const noIdentity = guardDutyRecord(run, 5, 'r5');
    delete ((noIdentity.detail as Record<string, unknown>).resource as Record<string, unknown>)
      .accessKeyDetails;
    const huge = JSON.stringify({ ...ocsfRecord(run, 6, 'u6'), padding: 'x'.repeat(70 * 1024) });
    await produce(raw, [
      { value: JSON.stringify(good[0]) },
      { value: JSON.stringify([good[1], { hello: 'world' }]) }, // record 1 matches no format
      { value: `${JSON.stringify(good[2])}\n{"broken": \n${JSON.stringify(good[3])}\n` }, // line 2 is not JSON
      { key: 'bad-json', value: '{"class_uid": 2004,' },
      { key: 'no-identity', value: JSON.stringify(noIdentity) },
      { key: 'huge', value: huge },
      { key: 'unknown-id', value: frameConfluent(2_000_000_001, Buffer.from([1, 2, 3])) },
      { key: 'empty', value: null },
      { key: 'not-utf8', value: Buffer.from([0xff, 0xfe, 0x7b, 0x7d]) },
    ]);

    await waitFor(() => caughtUp(`${run}.ingest`, raw), 30_000, 'ingest to commit every raw message');
    const detections = await readTopic(kafka, `${run}.detections`);
    const decoded = detections.map((m) => ({
      key: m.key!.toString(),
      ...decodeDetectionAvro(m.value!.subarray(5)),
    }));
    const expected = await Promise.all(good.map((r) => normalize(r)));
    expect(decoded.map((d) => d.detection.id).sort()).toEqual(expected.map((d) => d.id).sort());
    for (const d of decoded) {
      expect(d.key).toBe(identityKey(d.detection.identity));
      expect(d.receivedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    }

    const dlq = await readTopic(kafka, `${run}.dlq`);
    const byKey = (k: string) => dlq.filter((m) => m.key?.toString() === k);
    const reasons = dlq
      .map((m) => `${m.headers[DLQ_HEADERS.reason]}#${m.headers[DLQ_HEADERS.recordIndex] ?? '-'}`)
      .sort();
    expect(reasons).toEqual([
      'empty_value#-', // null value
      'invalid_json#-', // not UTF-8
      'invalid_json#0', // the whole value is one broken line
      'invalid_json#1', // the NDJSON line
      'normalize_failed#0', // missing identity
      'normalize_failed#1', // the array's record that matches no format
      'too_large#-',
      'unknown_schema_id#-',
    ]);
    expect(byKey('no-identity')[0]!.headers[DLQ_HEADERS.error]).toMatch(/missing identity/);
    expect(byKey('huge')[0]!.value!.length).toBe(Buffer.byteLength(huge));
    for (const m of dlq) {
      expect(m.headers[DLQ_HEADERS.sourceTopic]).toBe(raw);
      expect(m.headers[DLQ_HEADERS.offset]).toMatch(/^\d+$/);
      expect(m.headers[DLQ_HEADERS.partition]).toMatch(/^\d+$/);
      expect(m.headers[DLQ_HEADERS.group]).toBe(`${run}.ingest`);
    }
    expect(ingest.stats.detections).toBe(4);
  }, 90_000);

  it('commits raw offsets only after the detections are acknowledged', async () => {
    const run = uniqueName('int-raw-ack');
    const raw = `${run}.raw`;
    await ensureTopics(kafka, [raw]);
    let blocked = true;
    let refused = 0;
    class FlakyBus extends KafkaBus {
      override async publish<T>(
        topic: string,
        messages: ReadonlyArray<BusMessage<T>>,
      ): Promise<PublishReceipt[]> {
        if (blocked && topic === TOPICS.detections) {
          refused += 1;
          throw new TourniquetError('BUS_UNAVAILABLE', 'broker unreachable (simulated)', { retriable: true });
        }
        return super.publish(topic, messages);
      }
    }
    const bus = new FlakyBus(busOptions(run));
    const ingest = new RawConsumer({
      bus,
      topics: [{ topic: raw, format: 'okta', encoding: 'json' }],
      groupId: `${run}.ingest`,
    });
    stops.push(async () => {
      await ingest.stop();
      await bus.close();
    });
    await ingest.start();
    await produce(
      raw,
      [1, 2, 3, 4, 5].map((n) => ({ key: `u${n}`, value: JSON.stringify(oktaRecord(run, n, `u${n}`)) })),
    );
    await waitFor(() => refused >= 3, 20_000, 'publish attempts');
    expect(await caughtUp(`${run}.ingest`, raw)).toBe(false);
    const admin = kafka.admin();
    await admin.connect();
    const [committed] = await admin.fetchOffsets({ groupId: `${run}.ingest`, topics: [raw] });
    await admin.disconnect();
    expect(committed!.partitions.every((p) => p.offset === '-1')).toBe(true);
    blocked = false;
    await waitFor(() => caughtUp(`${run}.ingest`, raw), 30_000, 'commits after the broker acknowledged');
    const detections = await readTopic(kafka, `${run}.detections`);
    expect(detections.map((m) => decodeDetectionAvro(m.value!.subarray(5)).detection.id).sort()).toEqual(
      [1, 2, 3, 4, 5].map((n) => `${run}-okta-${n}`).sort(),
    );
  }, 60_000);

  it('a detection the bus cannot encode is dead-lettered alone; the rest of the chunk is produced', async () => {
    const run = uniqueName('int-raw-encode');
    const raw = `${run}.raw`;
    await ensureTopics(kafka, [raw]);
    const poisonId = `${run}-okta-2`;
    class PickyBus extends KafkaBus {
      override async publish<T>(
        topic: string,
        messages: ReadonlyArray<BusMessage<T>>,
      ): Promise<PublishReceipt[]> {
        const ids = messages.map((m) => (m.value as { detection?: { id: string } }).detection?.id);
        if (topic === TOPICS.detections && ids.includes(poisonId)) {
          throw new TourniquetError('VALIDATION_FAILED', 'evidence is not JSON-serializable (simulated)');
        }
        return super.publish(topic, messages);
      }
    }
    const bus = new PickyBus(busOptions(run));
    const ingest = new RawConsumer({ bus, topics: [{ topic: raw }], groupId: `${run}.ingest` });
    stops.push(async () => {
      await ingest.stop();
      await bus.close();
    });
    await ingest.start();
    await produce(raw, [
      { key: 'one', value: JSON.stringify([1, 2, 3].map((n) => oktaRecord(run, n, `u${n}`))) },
    ]);
    await waitFor(() => caughtUp(`${run}.ingest`, raw), 30_000, 'ingest to commit');
    const detections = await readTopic(kafka, `${run}.detections`);
    expect(detections.map((m) => decodeDetectionAvro(m.value!.subarray(5)).detection.id).sort()).toEqual([
      `${run}-okta-1`,
      `${run}-okta-3`,
    ]);
    const dlq = await readTopic(kafka, `${run}.dlq`);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.headers[DLQ_HEADERS.reason]).toBe('schema_validation');
    expect(dlq[0]!.headers[DLQ_HEADERS.recordIndex]).toBe('1');
    expect(ingest.stats.deadLettered).toBe(1);
  }, 60_000);
});
