import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import avro from 'avsc';
import { Partitioners } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadServeConfig, runServe, type ServeHandle } from '../../app/serve.ts';
import {
  createKafka,
  DLQ_HEADERS,
  ensureTopics,
  frameConfluent,
  SchemaRegistryClient,
} from '../../platform/bus/kafka.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { createLogger } from '../../platform/log.ts';
import { normalize } from '../../services/ingest/normalizers/index.ts';
import {
  E2E_KAFKA_CLIENTS,
  ensureKafka,
  ensureRegistry,
  groupCaughtUp,
  guardDutyRecord,
  OKTA_AVRO_SCHEMA,
  ocsfRecord,
  oktaAvroValue,
  oktaRecord,
  readTopic,
  uniqueName,
  waitFor,
} from '../support/kafka.ts';

const TOTAL = 10_000;
const BAD = { json: 160, unknownId: 80, wrongSchema: 80, noIdentity: 160, huge: 20 } as const; // 500 = 5 %
const GOOD = TOTAL - Object.values(BAD).reduce((a, b) => a + b, 0);
const AVRO_GOOD = 500;

interface Raw {
  key: string;
  value: Buffer;
  /** Expected DLQ reason(s) for bad ones; undefined for good ones. */
  reasons?: string[];
}

/**
 * Must show (d): 10,000 raw records, 5 % garbage (bad JSON, wrong Avro schema ids, missing identity,
 * 2 MB values), through `serve ingest` and `serve decider` (runServe, in this process). Every bad one is
 * in the DLQ with a reason and its exact source position; every good one is decided; both consumer
 * groups commit every partition to its end (no partition stalls).
 */
describe.each(E2E_KAFKA_CLIENTS)('10,000 raw records with 5 %% garbage (%s client)', (client) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-e2e-garbage-'));
  const handles: ServeHandle[] = [];
  afterAll(async () => {
    for (const h of handles.reverse()) await h.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('dead-letters every bad record with a reason, decides every good one, stalls no partition', async () => {
    const [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
    const run = uniqueName('e2e-garbage');
    const raw = `${run}.raw`;
    const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-e2e-garbage' });
    // the SIEM side's raw topic accepts large values; Tourniquet's limit (1 MiB) is what rejects them
    await ensureTopics(kafka, [
      { topic: raw, configEntries: [{ name: 'max.message.bytes', value: String(8 * 1024 * 1024) }] },
    ]);

    const registry = new SchemaRegistryClient(registryUrl);
    const oktaSchemaId = await registry.register(`${raw}-value`, JSON.stringify(OKTA_AVRO_SCHEMA));
    const otherSchemaId = await registry.register(
      `${run}.other-value`,
      JSON.stringify({ type: 'record', name: 'Heartbeat', fields: [{ name: 'seq', type: 'long' }] }),
    );
    const oktaAvro = avro.Type.forSchema(OKTA_AVRO_SCHEMA as unknown as avro.Schema);

    // ---- the records
    const messages: Raw[] = [];
    const expectedIds: string[] = [];
    for (let n = 0; n < GOOD; n++) {
      const who = `u${n % 2000}`;
      if (n < AVRO_GOOD) {
        const value = oktaAvroValue(oktaRecord(run, n, who, 'reported'));
        const buf = oktaAvro.toBuffer(value);
        messages.push({ key: `good-${n}`, value: frameConfluent(oktaSchemaId, buf) });
        expectedIds.push((await normalize(JSON.parse(JSON.stringify(oktaAvro.fromBuffer(buf))))).id);
        continue;
      }
      const r =
        n % 3 === 0
          ? ocsfRecord(run, n, who)
          : n % 3 === 1
            ? oktaRecord(run, n, who)
            : guardDutyRecord(run, n, `role-${who}`);
      messages.push({ key: `good-${n}`, value: Buffer.from(JSON.stringify(r)) });
      expectedIds.push((await normalize(r)).id);
    }
    for (let i = 0; i < BAD.json; i++) {
      messages.push({
        key: `bad-json-${i}`,
        value: Buffer.from(JSON.stringify(ocsfRecord(run, 100_000 + i, 'x')).slice(0, 40 + i)),
        reasons: ['invalid_json'],
      });
    }
    for (let i = 0; i < BAD.unknownId; i++) {
      const payload = oktaAvro.toBuffer(oktaAvroValue(oktaRecord(run, 200_000 + i, 'x')));
      messages.push({
        key: `bad-unknown-id-${i}`,
        value: frameConfluent(1_999_000_000 + i, payload),
        reasons: ['unknown_schema_id'],
      });
    }
    for (let i = 0; i < BAD.wrongSchema; i++) {
      const payload = oktaAvro.toBuffer(oktaAvroValue(oktaRecord(run, 300_000 + i, 'x')));
      messages.push({
        key: `bad-wrong-schema-${i}`,
        value: frameConfluent(otherSchemaId, payload),
        reasons: ['avro_decode', 'normalize_failed'],
      });
    }
    for (let i = 0; i < BAD.noIdentity; i++) {
      const r = guardDutyRecord(run, 400_000 + i, 'x');
      delete ((r.detail as Record<string, unknown>).resource as Record<string, unknown>).accessKeyDetails;
      messages.push({
        key: `bad-no-identity-${i}`,
        value: Buffer.from(JSON.stringify(r)),
        reasons: ['normalize_failed'],
      });
    }
    for (let i = 0; i < BAD.huge; i++) {
      const r = { ...ocsfRecord(run, 500_000 + i, 'x'), attachment: 'A'.repeat(2 * 1024 * 1024) };
      messages.push({ key: `bad-huge-${i}`, value: Buffer.from(JSON.stringify(r)), reasons: ['too_large'] });
    }
    expect(messages).toHaveLength(TOTAL);
    // interleave: garbage anywhere in the stream, on every partition
    for (let i = messages.length - 1; i > 0; i--) {
      const j = (i * 7919 + 13) % (i + 1);
      [messages[i], messages[j]] = [messages[j]!, messages[i]!];
    }

    // ---- the services, as `tourniquet serve` runs them
    const config = loadServeConfig({
      env: {
        TOURNIQUET_KAFKA_BROKERS: bootstrap,
        TOURNIQUET_KAFKA_CLIENT: client,
        TOURNIQUET_SCHEMA_REGISTRY_URL: registryUrl,
        TOURNIQUET_DETECTIONS_TOPIC: `${run}.detections`,
        TOURNIQUET_DLQ_TOPIC: `${run}.dlq`,
        TOURNIQUET_INGEST_GROUP: `${run}.ingest`,
        TOURNIQUET_DECIDER_GROUP: `${run}.decider`,
        TOURNIQUET_RAW_TOPICS: raw,
        TOURNIQUET_DATA_DIR: dataDir,
      },
    });
    const log = createLogger('error');
    handles.push(await runServe('decider', config, log));
    handles.push(await runServe('ingest', config, log));

    // ---- produce
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const small = messages.filter((m) => m.value.length < 1024 * 1024);
    const big = messages.filter((m) => m.value.length >= 1024 * 1024);
    for (let i = 0; i < small.length; i += 500) {
      await producer.send({ topic: raw, acks: -1, messages: small.slice(i, i + 500) });
      if (i / 500 < big.length) await producer.send({ topic: raw, acks: -1, messages: [big[i / 500]!] });
    }
    await producer.disconnect();

    // ---- every good one decided
    const store = new SqliteEventStore({ path: join(dataDir, 'events.db') });
    try {
      await waitFor(
        async () => (await store.readAll({ types: ['DetectionReceived'] })).length >= GOOD,
        180_000,
        `${GOOD} detections decided`,
        500,
      );
      const ids = (await store.readAll({ types: ['DetectionReceived'] })).flatMap((e) =>
        e.type === 'DetectionReceived' ? [e.data.detection.id] : [],
      );
      expect(ids).toHaveLength(GOOD);
      expect(new Set(ids)).toEqual(new Set(expectedIds));
    } finally {
      await store.close();
    }

    // ---- every bad one in the DLQ, once, with a reason and its exact source position
    const dlq = await waitFor(
      async () => {
        const letters = await readTopic(kafka, `${run}.dlq`);
        return letters.length >= TOTAL - GOOD ? letters : undefined;
      },
      60_000,
      'all dead letters',
      1000,
    );
    expect(dlq).toHaveLength(TOTAL - GOOD);
    const sourceMessages = await readTopic(kafka, raw);
    const atPosition = new Map(sourceMessages.map((m) => [`${m.partition}/${m.offset}`, m]));
    const byKey = new Map(messages.map((m) => [m.key, m]));
    const seen = new Set<string>();
    for (const letter of dlq) {
      const key = letter.key!.toString();
      const original = byKey.get(key)!;
      expect(original.reasons, `${key} is a bad one`).toBeDefined();
      expect(seen.has(key), `${key} dead-lettered once`).toBe(false);
      seen.add(key);
      expect(original.reasons).toContain(letter.headers[DLQ_HEADERS.reason]);
      expect(letter.headers[DLQ_HEADERS.error]!.length).toBeGreaterThan(5);
      expect(letter.headers[DLQ_HEADERS.sourceTopic]).toBe(raw);
      const source = atPosition.get(
        `${letter.headers[DLQ_HEADERS.partition]}/${letter.headers[DLQ_HEADERS.offset]}`,
      );
      expect(source?.key?.toString(), `${key}: partition/offset point at the original`).toBe(key);
      expect(Buffer.compare(letter.value!, original.value)).toBe(0);
    }
    const noIdentity = dlq.find((l) => l.key!.toString().startsWith('bad-no-identity'))!;
    expect(noIdentity.headers[DLQ_HEADERS.error]).toMatch(/missing identity/);
    // garbage sat on every partition, and none of them stalled
    expect(new Set(dlq.map((l) => l.headers[DLQ_HEADERS.partition])).size).toBe(6);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await waitFor(
        async () => (await groupCaughtUp(admin, `${run}.ingest`, raw)).done,
        30_000,
        'ingest committed to the end',
      );
      await waitFor(
        async () => (await groupCaughtUp(admin, `${run}.decider`, `${run}.detections`)).done,
        30_000,
        'decider committed to the end',
      );
    } finally {
      await admin.disconnect();
    }
  }, 280_000);
});
