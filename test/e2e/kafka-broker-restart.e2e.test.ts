import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafka, ensureTopics } from '../../platform/bus/kafka.ts';
import { createKafkaBus } from '../../platform/bus/kafka-clients.ts';
import type { KafkaBusBaseOptions } from '../../platform/bus/kafka-common.ts';
import { TOPICS } from '../../platform/bus/port.ts';
import { CoalescingEventStore } from '../../platform/eventstore/coalescing.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { identityKey } from '../../schemas/detection.ts';
import { activatePolicy } from '../../services/decider/activation.ts';
import { loadDefaultPolicy } from '../../services/decider/policy/load.ts';
import { DeciderService } from '../../services/decider/service.ts';
import { normalize } from '../../services/ingest/normalizers/index.ts';
import { RawConsumer } from '../../services/ingest/raw-consumer.ts';
import {
  E2E_KAFKA_CLIENTS,
  ensureRegistry,
  guardDutyRecord,
  ocsfRecord,
  oktaRecord,
  PrivateBroker,
  readTopic,
  uniqueName,
  waitFor,
} from '../support/kafka.ts';

const N = 2000;

/**
 * Must show (c): the broker is stopped and restarted mid-stream (a private broker: the shared one serves
 * the other tests). Ingest and decider keep running through it; afterwards every raw record produced has
 * exactly one DetectionReceived, no ActionProposed is duplicated, nothing is dead-lettered.
 */
describe.each(E2E_KAFKA_CLIENTS)('broker stopped and restarted mid-stream (%s client)', (client) => {
  const broker = new PrivateBroker();
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-e2e-restart-'));
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await broker.down();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // One retry, with a fresh broker, topics and store: each attempt must pass whole (nothing lost,
  // nothing duplicated). The stall this was added for is fixed (KafkaBus retires a producer whose send
  // failed, see KafkaBus.send); the retry stays for this VM's slow phases.
  it('loses nothing and duplicates nothing', { timeout: 280_000, retry: 1 }, async () => {
    const [bootstrap, registryUrl] = await Promise.all([broker.up(), ensureRegistry()]);
    const run = uniqueName('e2e-restart');
    const raw = `${run}.raw`;
    const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-e2e-restart' });
    await ensureTopics(kafka, [raw]);

    const sqlite = new SqliteEventStore({ path: join(dataDir, `${run}.db`) }); // one per attempt
    const store = new CoalescingEventStore(sqlite);
    cleanups.push(() => store.close());
    const policy = loadDefaultPolicy();
    await activatePolicy(store, policy, 'e2e', new Date());
    const busOptions = (name: string): KafkaBusBaseOptions => ({
      brokers: [bootstrap],
      registryUrl,
      clientId: `tq-e2e-restart-${client}-${name}`,
      // warnings and errors on stderr: a failure shows which member or producer got stuck
      log: pino({ name: `e2e-restart-${name}`, level: 'warn' }, pino.destination(2)),
      topics: { [TOPICS.detections]: `${run}.detections`, [TOPICS.deadLetters]: `${run}.dlq` },
      groupIds: { decider: `${run}.decider` },
      consumer: {
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 1000,
        maxWaitTimeMs: 200,
        retryMaxMs: 1000,
      },
    });
    const ingestBus = createKafkaBus(client, busOptions('ingest'));
    const deciderBus = createKafkaBus(client, busOptions('decider'));
    cleanups.push(
      () => ingestBus.close(),
      () => deciderBus.close(),
    );
    await deciderBus.start();
    const decider = new DeciderService({ store, bus: deciderBus, policy, tickMs: 1000 });
    await decider.start();
    cleanups.push(() => decider.stop());
    const ingest = new RawConsumer({ bus: ingestBus, topics: [{ topic: raw }], groupId: `${run}.ingest` });
    await ingest.start();
    cleanups.push(() => ingest.stop());

    const records = Array.from({ length: N }, (_, n) => {
      const who = n % 200;
      return n % 3 === 0
        ? ocsfRecord(run, n, `u${who}`)
        : n % 3 === 1
          ? oktaRecord(run, n, `u${who}`, n % 2 ? 'reported' : 'roaming')
          : guardDutyRecord(run, n, `role${who}`);
    });
    const expected = new Set((await Promise.all(records.map((r) => normalize(r)))).map((d) => d.id));
    expect(expected.size).toBe(N);

    const received = async () => (await sqlite.readAll({ types: ['DetectionReceived'] })).length;
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 2000 },
    });
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    let sent = 0;
    const producing = (async () => {
      for (let i = 0; i < N; i += 40) {
        const slice = records.slice(i, i + 40);
        await producer.send({
          topic: raw,
          acks: -1,
          messages: slice.map((r, j) => ({ key: `r${i + j}`, value: JSON.stringify(r) })),
        });
        sent += slice.length;
        await new Promise((r) => setTimeout(r, 40));
      }
    })();

    // mid-stream: records flowing and decisions being appended
    await waitFor(
      async () => sent >= N / 3 && (await received()) > 100,
      60_000,
      'the stream to be under way',
    );
    const before = await received();
    await broker.stop();
    const down = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    await broker.start();
    const restartMs = Date.now() - down;
    await producing;
    expect(before).toBeLessThan(N);

    await waitFor(async () => (await received()) >= N, 180_000, `all ${N} detections after the restart`);
    await new Promise((r) => setTimeout(r, 1500)); // room for late duplicates

    const ids = (await sqlite.readAll({ types: ['DetectionReceived'] })).flatMap((e) =>
      e.type === 'DetectionReceived' ? [e.data.detection.id] : [],
    );
    expect(ids).toHaveLength(N);
    expect(new Set(ids)).toEqual(expected);
    const proposals = (await sqlite.readAll({ types: ['ActionProposed'] })).flatMap((e) =>
      e.type === 'ActionProposed' ? [`${identityKey(e.data.identity)}|${e.data.ruleId}|${e.data.stage}`] : [],
    );
    expect(proposals.length).toBeGreaterThan(0);
    expect(proposals.length).toBe(new Set(proposals).size);
    expect(await readTopic(kafka, `${run}.dlq`)).toHaveLength(0);
    expect(restartMs).toBeGreaterThan(3000);
    console.info(`broker-restart e2e bus stats (${client})`, {
      ingest: ingestBus.stats,
      decider: deciderBus.stats,
    });
  });
});
