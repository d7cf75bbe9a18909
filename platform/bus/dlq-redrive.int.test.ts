import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Kafka } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runDlqRedrive } from '../../app/cli/dlq.ts';
import { RawConsumer } from '../../services/ingest/raw-consumer.ts';
import {
  ensureKafka,
  ensureRegistry,
  groupCaughtUp,
  oktaRecord,
  readTopic,
  uniqueName,
  waitFor,
} from '../../test/support/kafka.ts';
import { redriveDeadLetters } from './dlq-redrive.ts';
import { createKafka, DLQ_HEADERS, ensureTopics, KafkaBus } from './kafka.ts';
import { TOPICS } from './port.ts';

let bootstrap: string;
let kafka: Kafka;

beforeAll(async () => {
  bootstrap = await ensureKafka();
  kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-redrive-int' });
});

function letter(
  source: string | undefined,
  reason: string,
  value: string,
  extra: Record<string, string> = {},
) {
  return {
    key: `k-${value}`,
    value,
    headers: {
      'trace-id': `t-${value}`,
      ...(source ? { [DLQ_HEADERS.sourceTopic]: source } : {}),
      [DLQ_HEADERS.reason]: reason,
      [DLQ_HEADERS.error]: 'why it failed',
      [DLQ_HEADERS.partition]: '0',
      [DLQ_HEADERS.offset]: '7',
      [DLQ_HEADERS.at]: '2026-11-29T10:00:00.000Z',
      ...extra,
    },
  };
}

describe('dead letters sent back to their source topics', () => {
  it('picks letters by reason, source topic and time; keeps key, value and original headers; leaves truncated and foreign ones', async () => {
    const run = uniqueName('redrive');
    const [a, b, dlq] = [`${run}.raw-a`, `${run}.raw-b`, `${run}.dlq`];
    await ensureTopics(kafka, [a, b, dlq]);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 }); // a retried send must not write twice
    await producer.connect();
    await producer.send({
      topic: dlq,
      messages: [
        letter(a, 'normalize_failed', 'A1'),
        letter(a, 'invalid_json', 'A2'),
        letter(b, 'normalize_failed', 'B1'),
        letter(a, 'normalize_failed', 'A3-cut', { [DLQ_HEADERS.truncated]: '9000000' }),
        letter(undefined, 'normalize_failed', 'X'),
        letter(b, 'normalize_failed', 'B0', { [DLQ_HEADERS.at]: '2020-01-01T00:00:00.000Z' }),
      ],
    });
    await producer.disconnect();
    const opts = {
      dlqTopic: dlq,
      reasons: ['normalize_failed'],
      sinceMs: Date.parse('2026-01-01T00:00:00Z'),
    };

    const dry = await redriveDeadLetters(kafka, { ...opts, dryRun: true });
    expect(dry).toEqual({
      dlqTopic: dlq,
      dryRun: true,
      read: 6,
      redriven: 2,
      bySourceTopic: { [a]: 1, [b]: 1 },
      skipped: { filtered: 2, truncated: 1, noSource: 1 },
    });
    expect(await readTopic(kafka, a)).toEqual([]);

    const real = await redriveDeadLetters(kafka, opts);
    expect(real).toMatchObject({ dryRun: false, redriven: 2 });
    const back = await readTopic(kafka, a);
    expect(back).toHaveLength(1);
    expect(back[0]!.key!.toString()).toBe('k-A1');
    expect(back[0]!.value!.toString()).toBe('A1');
    expect(back[0]!.headers['trace-id']).toBe('t-A1');
    expect(back[0]!.headers['x-redriven-from']).toMatch(
      new RegExp(`^${dlq.replace(/\./g, '\\.')}/\\d+/\\d+$`),
    );
    expect(Object.keys(back[0]!.headers).filter((h) => h.startsWith('x-dlq-'))).toEqual([]);
    expect((await readTopic(kafka, b)).map((m) => m.value!.toString())).toEqual(['B1']);

    // the CLI reads brokers and the DLQ topic from the serve configuration
    const dir = mkdtempSync(join(tmpdir(), 'tq-redrive-'));
    writeFileSync(
      join(dir, 'serve.yaml'),
      `kafka:\n  brokers: ["${bootstrap}"]\ntopics:\n  deadLetters: ${dlq}\n`,
    );
    const out = new PassThrough();
    let text = '';
    out.on('data', (c) => {
      text += c;
    });
    const code = await runDlqRedrive(
      { config: join(dir, 'serve.yaml'), sourceTopic: [b], dryRun: true },
      out,
    );
    expect(code).toBe(0);
    expect(JSON.parse(text)).toMatchObject({ read: 6, redriven: 2, skipped: { filtered: 3, noSource: 1 } });
  });

  it('round trip: a record dead-lettered under the wrong format is normalized once the topic is fixed and the letter sent back', async () => {
    const registryUrl = await ensureRegistry();
    const run = uniqueName('redrive-rt');
    const raw = `${run}.raw`;
    const bus = new KafkaBus({
      brokers: [bootstrap],
      registryUrl,
      clientId: 'tq-redrive-rt',
      topics: { [TOPICS.detections]: `${run}.detections`, [TOPICS.deadLetters]: `${run}.dlq` },
      consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitTimeMs: 100 },
    });
    await bus.start();
    await ensureTopics(kafka, [raw]);
    const consumer = (format: 'ocsf' | 'auto') =>
      new RawConsumer({
        bus,
        topics: [{ topic: raw, format }],
        groupId: `${run}.ingest`,
        consumer: { sessionTimeoutMs: 6000, heartbeatIntervalMs: 500, maxWaitTimeMs: 100 },
      });
    try {
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 }); // a retried send must not write twice
      await producer.connect();
      await producer.send({
        topic: raw,
        messages: [{ key: 'r1', value: JSON.stringify(oktaRecord(run, 1, 'dana', 'reported')) }],
      });
      await producer.disconnect();

      // misconfigured: the topic is declared OCSF, the record is Okta
      const wrong = consumer('ocsf');
      await wrong.start();
      await waitFor(
        async () => (await readTopic(kafka, `${run}.dlq`)).length === 1,
        30_000,
        'the dead letter',
      );
      await wrong.stop();
      const [dead] = await readTopic(kafka, `${run}.dlq`);
      expect(dead!.headers[DLQ_HEADERS.reason]).toBe('normalize_failed');

      // fixed, then the letter goes back
      const fixed = consumer('auto');
      await fixed.start();
      const report = await redriveDeadLetters(kafka, {
        dlqTopic: `${run}.dlq`,
        reasons: ['normalize_failed'],
      });
      expect(report).toMatchObject({ redriven: 1, bySourceTopic: { [raw]: 1 } });
      const admin = kafka.admin();
      await admin.connect();
      try {
        await waitFor(async () => (await groupCaughtUp(admin, `${run}.ingest`, raw)).done, 30_000, 'ingest');
      } finally {
        await admin.disconnect();
      }
      await fixed.stop();
      const rawNow = await readTopic(kafka, raw);
      expect(rawNow.map((m) => m.headers['x-redriven-from'] ?? 'original')).toEqual([
        'original',
        expect.stringMatching(/\.dlq\/\d+\/0$/),
      ]);
      const detections = await readTopic(kafka, `${run}.detections`);
      expect(detections).toHaveLength(1); // from the letter sent back: the original was read once, and failed
      expect(await readTopic(kafka, `${run}.dlq`)).toHaveLength(1); // not dead-lettered again
    } finally {
      await bus.close();
    }
  });
});
