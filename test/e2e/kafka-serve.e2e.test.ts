import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadServeConfig, runServe, type ServeHandle } from '../../app/serve.ts';
import { createKafka, ensureTopics } from '../../platform/bus/kafka.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { createLogger } from '../../platform/log.ts';
import { KafkaWitness } from '../../platform/witness/kafka.ts';
import { ensureKafka, ensureRegistry, oktaRecord, uniqueName, waitFor } from '../support/kafka.ts';

/**
 * All four `serve` services wired by runServe (in this process, as four processes would run them),
 * sharing one SQLite file: a detection POSTed to the projector's API goes through Kafka to the decider,
 * the executor carries out the automatic action, the projector shows the case; a raw record on a raw
 * topic goes through ingest the same way.
 */
describe('serve: ingest, decider, executor and projector over Kafka', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-e2e-serve-'));
  const handles: ServeHandle[] = [];
  afterAll(async () => {
    for (const h of handles.reverse()) await h.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('API → Kafka → decider → executor → projector, and raw topic → ingest → decider', async () => {
    const [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
    const run = uniqueName('e2e-serve');
    const raw = `${run}.raw.okta`;
    await ensureTopics(createKafka({ brokers: [bootstrap] }), [raw]);
    const config = loadServeConfig({
      env: {
        TOURNIQUET_KAFKA_BROKERS: bootstrap,
        TOURNIQUET_SCHEMA_REGISTRY_URL: registryUrl,
        TOURNIQUET_DETECTIONS_TOPIC: `${run}.detections`,
        TOURNIQUET_DLQ_TOPIC: `${run}.dlq`,
        TOURNIQUET_INGEST_GROUP: `${run}.ingest`,
        TOURNIQUET_DECIDER_GROUP: `${run}.decider`,
        TOURNIQUET_RAW_TOPICS: `${raw}:okta:json`,
        TOURNIQUET_DATA_DIR: dataDir,
        TOURNIQUET_EXECUTOR_ID: 'e2e-executor',
        TOURNIQUET_API_PORT: '0',
        TOURNIQUET_TICK_MS: '1000',
        // distributed mode anchors the chain head to a compacted topic
        TOURNIQUET_ANCHOR: `kafka:${run}.chain-heads`,
        TOURNIQUET_ANCHOR_INTERVAL_MS: '200',
      },
    });
    expect(config.integrity).toMatchObject({ anchor: `kafka:${run}.chain-heads`, anchorIntervalMs: 200 });
    expect(config.ingest.rawTopics).toEqual([{ topic: raw, format: 'okta', encoding: 'json' }]);
    const log = createLogger('error');
    for (const service of ['decider', 'executor', 'projector', 'ingest'] as const)
      handles.push(await runServe(service, config, log));
    const api = handles.find((h) => h.service === 'projector')!;
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    const user = `mallory-${run}`;
    const res = await fetch(`${api.url}/v1/detections`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${api.adminToken}` },
      body: JSON.stringify({
        id: `${run}-intel-1`,
        source: 'threat-intel',
        kind: 'known_compromise',
        confidence: 0.97,
        severity: 'critical',
        identity: { provider: 'okta', id: user, type: 'human' },
        // Recent: an old detection would be stale at receipt and go to an analyst instead.
        occurredAt: new Date(Date.now() - 60_000).toISOString(),
      }),
    });
    const body = (await res.json()) as unknown;
    expect(res.status, JSON.stringify(body)).toBe(202);
    expect(JSON.stringify(body)).toContain('queued');

    const producer = createKafka({ brokers: [bootstrap] }).producer();
    await producer.connect();
    await producer.send({
      topic: raw,
      messages: [{ value: JSON.stringify(oktaRecord(run, 1, `trent-${run}`, 'reported')) }],
    });
    await producer.disconnect();

    const store = new SqliteEventStore({ path: join(dataDir, 'events.db') });
    try {
      const executed = await waitFor(
        async () => {
          const events = await store.readAll({ types: ['ActionExecuted'] });
          return events.find((e) => e.type === 'ActionExecuted' && e.data.identity.id === user);
        },
        60_000,
        'the automatic action to be executed',
      );
      expect(executed.type).toBe('ActionExecuted');
      await waitFor(
        async () => {
          const ids = (await store.readAll({ types: ['DetectionReceived'] })).flatMap((e) =>
            e.type === 'DetectionReceived' ? [e.data.detection.id] : [],
          );
          return ids.includes(`${run}-okta-1`) && ids.includes(`${run}-intel-1`);
        },
        60_000,
        'both detections',
      );
    } finally {
      await store.close();
    }
    // the projector, reading the same store, shows the case
    await waitFor(
      async () => {
        const r = await fetch(`${api.url}/v1/cases`, {
          headers: { authorization: `Bearer ${api.adminToken}` },
        });
        return r.status === 200 && (await r.text()).includes(user);
      },
      30_000,
      'the case in the projector',
    );
    // the projector anchored the head to the compacted topic, and the stream verifies against it
    const witness = new KafkaWitness({ brokers: [bootstrap], topic: `${run}.chain-heads` });
    try {
      const anchors = await waitFor(
        async () => {
          const read = await witness.read('tourniquet');
          return read.length > 0 ? read : undefined;
        },
        30_000,
        'an anchored head',
      );
      const reopened = new SqliteEventStore({ path: join(dataDir, 'events.db') });
      try {
        const verdict = await reopened.verifyChain({ anchors });
        expect(verdict).toMatchObject({
          ok: true,
          anchors: { checked: anchors.length, matched: anchors.length },
        });
      } finally {
        await reopened.close();
      }
    } finally {
      await witness.close();
    }
  }, 120_000);
});
