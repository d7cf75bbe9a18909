import type { Kafka, Producer, ProducerRecord } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import type { NormalizedDetection } from '../../schemas/detection.ts';
import { detectionAvroType, toAvro } from './avro.ts';
import { encodeFramed, frameConfluent, JsonCodec, KafkaBus } from './kafka.ts';

/**
 * The producer lifecycle against a fake kafkajs client: what matters here is which producer a send goes
 * to, not the broker (the broker paths are in kafka.int.test.ts and test/e2e).
 */
interface FakeConsumer {
  listeners: Map<string, (e: { payload: Record<string, unknown> }) => void>;
  running: boolean;
  disconnected: boolean;
}

function fakeKafka(failures: Array<Error | undefined>) {
  const producers: Array<{ id: number; sent: ProducerRecord[]; disconnected: boolean }> = [];
  const consumers: FakeConsumer[] = [];
  const kafka = {
    consumer: () => {
      const me: FakeConsumer = { listeners: new Map(), running: false, disconnected: false };
      consumers.push(me);
      return {
        events: { GROUP_JOIN: 'join', CRASH: 'crash' },
        on: (event: string, cb: (e: { payload: Record<string, unknown> }) => void) => {
          me.listeners.set(event, cb);
        },
        connect: async () => undefined,
        subscribe: async () => undefined,
        run: async () => {
          me.running = true;
          me.listeners.get('join')?.({ payload: { memberId: `m${consumers.length}`, memberAssignment: {} } });
        },
        stop: async () => {
          me.running = false;
        },
        disconnect: async () => {
          me.running = false;
          me.disconnected = true;
        },
      };
    },
    admin: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      listTopics: async () => ['t', 'tourniquet.dlq'],
    }),
    producer: () => {
      const me = { id: producers.length + 1, sent: [] as ProducerRecord[], disconnected: false };
      producers.push(me);
      return {
        connect: async () => undefined,
        disconnect: async () => {
          me.disconnected = true;
        },
        send: async (record: ProducerRecord) => {
          const failure = failures.shift();
          if (failure) throw failure;
          me.sent.push(record);
          return [];
        },
      } as unknown as Producer;
    },
  } as unknown as Kafka;
  return { kafka, producers, consumers };
}

function outOfOrder(): Error {
  return Object.assign(new Error('The broker received an out of order sequence number'), {
    name: 'KafkaJSProtocolError',
    type: 'OUT_OF_ORDER_SEQUENCE_NUMBER',
    retriable: false,
  });
}

describe('KafkaBus producer', () => {
  it('retires a producer whose send failed; the next send gets a new one (new producer id)', async () => {
    const { kafka, producers } = fakeKafka([undefined, outOfOrder(), outOfOrder()]);
    const bus = new KafkaBus({ brokers: ['127.0.0.1:1'], kafka, codecs: { t: new JsonCodec() } });

    await bus.publish('t', [{ key: 'k', value: { n: 1 } }]);
    const failed = bus.publish('t', [{ key: 'k', value: { n: 2 } }]);
    await expect(failed).rejects.toMatchObject({ code: 'BUS_UNAVAILABLE', retriable: true });
    await new Promise((r) => setImmediate(r));
    expect(producers).toHaveLength(1);
    expect(producers[0]!.disconnected).toBe(true);
    expect(bus.stats.producersRetired).toBe(1);

    // the caller's retry: a fresh producer, whose own failure retires it in turn
    await expect(bus.publish('t', [{ key: 'k', value: { n: 2 } }])).rejects.toMatchObject({
      code: 'BUS_UNAVAILABLE',
    });
    await new Promise((r) => setImmediate(r));
    await bus.publish('t', [{ key: 'k', value: { n: 2 } }]);
    expect(producers.map((p) => p.sent.length)).toEqual([1, 0, 1]);
    expect(producers.map((p) => p.disconnected)).toEqual([true, true, false]);
    expect(bus.stats.producersRetired).toBe(2);
    expect(bus.stats.published).toBe(2);
  });

  it('keeps the producer while sends succeed', async () => {
    const { kafka, producers } = fakeKafka([]);
    const bus = new KafkaBus({ brokers: ['127.0.0.1:1'], kafka, codecs: { t: new JsonCodec() } });
    for (let n = 0; n < 5; n++) await bus.publish('t', [{ key: 'k', value: { n } }]);
    expect(producers).toHaveLength(1);
    expect(producers[0]!.sent).toHaveLength(5);
    expect(bus.stats.producersRetired).toBe(0);
  });
});

describe('KafkaBus consumer', () => {
  const crash = (c: FakeConsumer, restart: boolean) =>
    c.listeners.get('crash')?.({ payload: { error: new Error('boom'), restart, groupId: 'g' } });
  const settle = () => new Promise((r) => setTimeout(r, 30));

  it('replaces a member that crashed without a restart; the subscription follows the new one', async () => {
    const { kafka, consumers } = fakeKafka([]);
    const bus = new KafkaBus({
      brokers: ['127.0.0.1:1'],
      kafka,
      codecs: { t: new JsonCodec() },
      consumer: { retryInitialMs: 1 },
    });
    const sub = await bus.subscribe('t', 'g', async (batch) => batch.map(() => null));
    const first = sub.consumer;
    expect(consumers).toHaveLength(1);

    crash(consumers[0]!, true); // kafkajs restarts this one itself
    await settle();
    expect(consumers).toHaveLength(1);

    crash(consumers[0]!, false);
    await settle();
    expect(consumers).toHaveLength(2);
    expect(consumers[0]!.disconnected).toBe(true);
    expect(consumers[1]!.running).toBe(true);
    expect(sub.consumer).not.toBe(first);
    expect(bus.stats.consumerRestarts).toBe(1);

    await sub.stop();
    expect(consumers[1]!.disconnected).toBe(true);
    crash(consumers[1]!, false); // a crash after stop is not revived
    await settle();
    expect(consumers).toHaveLength(2);
  });
});

describe('encodeFramed', () => {
  const detection = (raw: unknown): NormalizedDetection => ({
    id: 'd-1',
    source: 'okta',
    kind: 'anomalous_token_use',
    confidence: 0.9,
    severity: 'high',
    identity: { provider: 'okta', id: 'u1', type: 'human' },
    occurredAt: '2026-11-01T00:00:00.000Z',
    evidence: { ip: '203.0.113.7' },
    raw,
  });

  it('gives the Confluent framing of type.toBuffer, for small values and for ones past the scratch size', () => {
    const small = toAvro(detection({ a: 1 }), '2026-11-01T00:00:01.000Z');
    const big = toAvro(detection({ blob: 'x'.repeat(200_000) }), '2026-11-01T00:00:01.000Z');
    const first = encodeFramed(7, detectionAvroType, small);
    const expectedFirst = frameConfluent(7, detectionAvroType.toBuffer(small));
    expect(first.equals(expectedFirst)).toBe(true);
    expect(
      encodeFramed(123_456, detectionAvroType, big).equals(
        frameConfluent(123_456, detectionAvroType.toBuffer(big)),
      ),
    ).toBe(true);
    // the scratch buffer is reused: what was returned earlier is not overwritten
    encodeFramed(7, detectionAvroType, toAvro(detection({ b: 2 })));
    expect(first.equals(expectedFirst)).toBe(true);
  });
});
