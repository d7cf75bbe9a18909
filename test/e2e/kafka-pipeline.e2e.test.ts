import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaRegistry as ConfluentSchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafka, ensureTopics, frameConfluent, SchemaRegistryClient } from '../../platform/bus/kafka.ts';
import { createKafkaBus } from '../../platform/bus/kafka-clients.ts';
import type { KafkaClientBus } from '../../platform/bus/kafka-common.ts';
import { TOPICS } from '../../platform/bus/port.ts';
import { detectionWithRaw } from '../../platform/eventstore/raw-records.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { identityKey, type NormalizedDetection } from '../../schemas/detection.ts';
import { activatePolicy } from '../../services/decider/activation.ts';
import { loadDefaultPolicy } from '../../services/decider/policy/load.ts';
import { DeciderService } from '../../services/decider/service.ts';
import { Executor } from '../../services/executor/executor.ts';
import { DryRunProvider } from '../../services/executor/providers/dry-run.ts';
import { normalize } from '../../services/ingest/normalizers/index.ts';
import { RawConsumer } from '../../services/ingest/raw-consumer.ts';
import {
  BASE_MS,
  E2E_KAFKA_CLIENTS,
  ensureKafka,
  ensureRegistry,
  guardDutyRecord,
  OKTA_AVRO_SCHEMA,
  ocsfRecord,
  oktaAvroValue,
  oktaRecord,
  readTopic,
  uniqueName,
  waitFor,
} from '../support/kafka.ts';

/**
 * Must show (a): raw OCSF, Okta and GuardDuty records produced to a raw topic → normalized on
 * tourniquet.detections (Avro through the registry) → decider (DeciderService over KafkaBus + SQLite)
 * → an executed action in the store (Executor with the dry-run provider, in this process).
 */
describe.each(E2E_KAFKA_CLIENTS)(
  'Kafka end to end: raw SIEM records → detections → decision → executed action (%s client)',
  (client) => {
    let bootstrap: string;
    let registryUrl: string;
    let kafka: Kafka;
    const run = uniqueName('e2e-pipeline');
    const rawTopic = `${run}.raw`;
    const detectionsTopic = `${run}.detections`;
    const dlqTopic = `${run}.dlq`;
    const dataDir = mkdtempSync(join(tmpdir(), 'tq-e2e-pipeline-'));
    let store: SqliteEventStore;
    let bus: KafkaClientBus;
    let ingest: RawConsumer;
    let decider: DeciderService;
    let executor: Executor;
    let dryRun: DryRunProvider;

    beforeAll(async () => {
      [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
      kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-e2e-pipeline-test' });
      await ensureTopics(kafka, [rawTopic]);
      store = new SqliteEventStore({ path: join(dataDir, 'events.db') });
      const policy = loadDefaultPolicy();
      await activatePolicy(store, policy, 'e2e', new Date());
      bus = createKafkaBus(client, {
        brokers: [bootstrap],
        registryUrl,
        clientId: 'tq-e2e-pipeline',
        topics: { [TOPICS.detections]: detectionsTopic, [TOPICS.deadLetters]: dlqTopic },
        groupIds: { decider: `${run}.decider` },
        consumer: { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1000, maxWaitTimeMs: 100 },
      });
      await bus.start();
      decider = new DeciderService({ store, bus, policy, tickMs: 1000 });
      await decider.start();
      dryRun = new DryRunProvider();
      executor = new Executor({ store, providers: { '*': dryRun }, executorId: 'e2e-pipeline' });
      await executor.start();
      ingest = new RawConsumer({
        bus,
        topics: [{ topic: rawTopic }],
        groupId: `${run}.ingest`,
        consumer: { maxWaitTimeMs: 100 },
      });
      await ingest.start();
    });

    afterAll(async () => {
      await ingest?.stop();
      await decider?.stop();
      await executor?.stop();
      await bus?.close();
      await store?.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('normalizes, decides and executes; the detections topic is Confluent-framed Avro keyed by identity', async () => {
      const alice = `alice-${run}`;
      // Two impossible-travel findings for alice, 10 minutes apart: the stolen-token rule (count 2, ≥ 0.8)
      // proposes revoke_tokens with automatic approval.
      const ocsf1 = ocsfRecord(run, 1, alice);
      const ocsf2 = ocsfRecord(run, 2, alice, BASE_MS + 10 * 60_000);
      const oktaReported = oktaRecord(run, 3, `bob-${run}`, 'reported');
      const oktaRoaming = oktaRecord(run, 4, `carol-${run}`, 'roaming');
      const gd = guardDutyRecord(run, 5, `web-${run.slice(-6)}`);
      const oktaForAvro = oktaRecord(run, 6, `dave-${run}`, 'reported');

      // A SIEM exporting Avro registers its own schema; ingest reads it by id from the registry.
      const registry = new SchemaRegistryClient(registryUrl);
      const oktaAvroType = avro.Type.forSchema(OKTA_AVRO_SCHEMA as unknown as avro.Schema);
      const oktaSchemaId = await registry.register(`${rawTopic}-value`, JSON.stringify(OKTA_AVRO_SCHEMA));
      const avroValue = oktaAvroValue(oktaForAvro);

      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic: rawTopic,
        acks: -1,
        messages: [
          { key: 'ocsf', value: JSON.stringify(ocsf1) }, // one record
          { key: 'batch', value: JSON.stringify([ocsf2, oktaReported]) }, // an array
          { key: 'ndjson', value: `${JSON.stringify(oktaRoaming)}\n${JSON.stringify(gd)}\n` }, // NDJSON
          { key: 'avro', value: frameConfluent(oktaSchemaId, oktaAvroType.toBuffer(avroValue)) }, // Confluent Avro
        ],
      });
      await producer.disconnect();

      const expected: NormalizedDetection[] = [
        ...(await Promise.all([ocsf1, ocsf2, oktaReported, oktaRoaming, gd].map((r) => normalize(r)))),
        await normalize(
          JSON.parse(JSON.stringify(oktaAvroType.fromBuffer(oktaAvroType.toBuffer(avroValue)))),
        ),
      ];
      expect(new Set(expected.map((d) => d.source))).toEqual(
        new Set(['ocsf:identity_analytics', 'okta', 'aws_guardduty']),
      );

      // every record became a DetectionReceived, exactly once
      const received = await waitFor(
        async () => {
          const events = await store.readAll({ types: ['DetectionReceived'] });
          return events.length >= expected.length ? events : undefined;
        },
        60_000,
        'all detections received',
      );
      const receivedIds = received.map((e) => (e.type === 'DetectionReceived' ? e.data.detection.id : ''));
      expect(receivedIds.sort()).toEqual(expected.map((d) => d.id).sort());
      for (const e of received) {
        if (e.type !== 'DetectionReceived') continue;
        const want = expected.find((d) => d.id === e.data.detection.id)!;
        // the raw vendor record is kept apart, named by its digest, and reads back whole
        expect(e.data.detection.raw).toBeUndefined();
        expect(e.data.rawRecord?.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(await detectionWithRaw(store, e.data)).toStrictEqual(JSON.parse(JSON.stringify(want)));
      }

      // …and alice's stolen token was revoked: proposed, auto-approved, executed by the executor
      const executed = await waitFor(
        async () => {
          const events = await store.readAll({ types: ['ActionExecuted'] });
          return events.length > 0 ? events : undefined;
        },
        60_000,
        'an executed action',
      );
      const proposed = (await store.readAll({ types: ['ActionProposed'] })).flatMap((e) =>
        e.type === 'ActionProposed' ? [e.data] : [],
      );
      const revoke = proposed.find((p) => p.identity.id === alice && p.action === 'revoke_tokens');
      expect(revoke, 'revoke_tokens proposed for alice').toBeDefined();
      expect(executed.some((e) => e.type === 'ActionExecuted' && e.data.actionId === revoke!.actionId)).toBe(
        true,
      );
      expect(
        dryRun.calls.some(
          (c) => c.phase === 'apply' && c.actionId === revoke!.actionId && c.action === 'revoke_tokens',
        ),
      ).toBe(true);

      // the detections topic: Confluent wire format with the registered schema, keyed by identity
      const onTopic = await readTopic(kafka, detectionsTopic);
      expect(onTopic).toHaveLength(expected.length);
      const subject = `${detectionsTopic}-value`;
      const versions = await (
        await fetch(`${registryUrl}/subjects/${encodeURIComponent(subject)}/versions`)
      ).json();
      expect(versions).toEqual([1]);
      expect(await registry.getCompatibility(subject)).toBe('BACKWARD');
      // an independent Confluent client decodes what we wrote
      const lib = new ConfluentSchemaRegistry({ host: registryUrl });
      for (const m of onTopic) {
        expect(m.value![0]).toBe(0);
        const decoded = (await lib.decode(m.value!)) as {
          id: string;
          identity: { provider: string; id: string };
        };
        expect(m.key!.toString()).toBe(identityKey(decoded.identity));
        expect(m.headers['x-source-topic']).toBe(rawTopic);
        expect(expected.map((d) => d.id)).toContain(decoded.id);
      }
      // nothing was dead-lettered
      expect(await readTopic(kafka, dlqTopic)).toHaveLength(0);
    }, 120_000);
  },
);
