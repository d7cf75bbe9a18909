/**
 * Kafka throughput on the real broker and registry (started by test/support/kafka.ts if needed):
 *
 * (a) kafkajs consumer alone: `eachBatch`, autoCommit off, resolve + commit per batch (the bus's commit
 *     discipline) over pre-produced ~300-byte messages: messages/s;
 * (b) KafkaBus.subscribe over the detections topic: the same plus Avro decode and zod validation;
 * (c) ingest alone: raw JSON records (OCSF, Okta, GuardDuty) → normalized → Avro on the detections topic;
 * (d) decider alone: detections topic → DeciderService → SQLite appended; beside it the floor: the rows it
 *     wrote, written again by bare better-sqlite3 inserts in transactions of the same sizes
 *     (bench/sqlite-floor.ts), and the ratio of the two per detection;
 * (e) end to end, pipelined: raw topic → ingest → detections → decider → decision appended; first both
 *     services in this one process (one JavaScript thread for both), then as in distributed mode with
 *     `serve ingest` in a child process and the decider here.
 * The store runs with durability 'normal' (WAL, synchronous=NORMAL) and coalesced appends, as reported in
 * the keys; 'full' (fsync per transaction) is measured once more for (e).
 * (f) the two Kafka clients under the bus (kafkajs, @platformatic/kafka), side by side in this run on the
 *     same broker: producing and consuming ~1 KB values through the bus (a pass-through codec, so the
 *     client is what is measured), CPU per message (this process: user + system) and messages/s; and (e)
 *     2proc on each client, with each process's CPU per detection. Rounds alternate between the clients
 *     and the best of each is kept; ratios are platformatic / kafkajs; the load average is printed beside.
 *
 * Run alone: npm run bench -- kafka     (TQ_BENCH_KAFKA_N sets the record count, default 40,000)
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners } from 'kafkajs';
import { createKafka, ensureTopics, KafkaBus, type KafkaBusOptions } from '../platform/bus/kafka.ts';
import { createKafkaBus, KAFKA_CLIENTS, type KafkaClientName } from '../platform/bus/kafka-clients.ts';
import type { MessageCodec } from '../platform/bus/kafka-common.ts';
import { TOPICS } from '../platform/bus/port.ts';
import { CoalescingEventStore } from '../platform/eventstore/coalescing.ts';
import type { Durability } from '../platform/eventstore/sqlite.ts';
import { SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import type { DetectionMessage } from '../schemas/messages.ts';
import { activatePolicy } from '../services/decider/activation.ts';
import { loadDefaultPolicy } from '../services/decider/policy/load.ts';
import { DeciderService } from '../services/decider/service.ts';
import { normalize } from '../services/ingest/normalizers/index.ts';
import { RawConsumer } from '../services/ingest/raw-consumer.ts';
import {
  groupCaughtUp,
  guardDutyRecord,
  ocsfRecord,
  oktaRecord,
  startServeProcess,
  stopServeProcess,
  tryEnsureKafkaAndRegistry,
  uniqueName,
  waitFor,
} from '../test/support/kafka.ts';
import { recordTransactions, sqliteFloor } from './sqlite-floor.ts';

const N = Number(process.env.TQ_BENCH_KAFKA_N ?? 40_000);
const IDENTITIES = 5000;

export function rawRecords(run: string, n: number, offset = 0): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    const k = i + offset;
    const who = `u${k % IDENTITIES}`;
    const r =
      k % 3 === 0
        ? ocsfRecord(run, k, who)
        : k % 3 === 1
          ? oktaRecord(run, k, who, k % 2 ? 'reported' : 'roaming')
          : guardDutyRecord(run, k, `role-${who}`);
    return Buffer.from(JSON.stringify(r));
  });
}

export async function produceAll(
  bootstrap: string,
  topic: string,
  values: Buffer[],
  keyOf: (i: number) => string,
): Promise<void> {
  const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-bench-producer' });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  for (let i = 0; i < values.length; i += 2000) {
    await producer.send({
      topic,
      acks: -1,
      messages: values.slice(i, i + 2000).map((value, j) => ({ key: keyOf(i + j), value })),
    });
  }
  await producer.disconnect();
}

export async function untilCaughtUp(
  bootstrap: string,
  groupId: string,
  topic: string,
  timeoutMs: number,
): Promise<void> {
  const admin = createKafka({ brokers: [bootstrap], clientId: 'tq-bench-admin' }).admin();
  await admin.connect();
  try {
    await waitFor(
      async () => (await groupCaughtUp(admin, groupId, topic)).done,
      timeoutMs,
      `${groupId} to catch up`,
      50,
    );
  } finally {
    await admin.disconnect();
  }
}

/** (a) kafkajs alone. */
async function kafkajsEachBatch(bootstrap: string, run: string): Promise<number> {
  const topic = `${run}.plain`;
  const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-bench-plain' });
  await ensureTopics(kafka, [topic]);
  const M = N * 5;
  const payload = Buffer.alloc(300, 'x');
  await produceAll(
    bootstrap,
    topic,
    Array.from({ length: M }, () => payload),
    (i) => `k${i % IDENTITIES}`,
  );
  const consumer = kafka.consumer({
    groupId: `${run}.plain`,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let seen = 0;
  let start = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    finish = r;
  });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 3,
    eachBatch: async ({ batch, resolveOffset, commitOffsetsIfNecessary }) => {
      if (start === 0) start = performance.now();
      const last = batch.messages[batch.messages.length - 1];
      if (!last) return;
      resolveOffset(last.offset);
      await commitOffsetsIfNecessary({
        topics: [
          {
            topic: batch.topic,
            partitions: [{ partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }],
          },
        ],
      });
      seen += batch.messages.length;
      if (seen >= M) finish();
    },
  });
  await done;
  const rate = M / ((performance.now() - start) / 1000);
  await consumer.disconnect();
  return rate;
}

export function busOptions(
  bootstrap: string,
  registryUrl: string,
  run: string,
  name: string,
): KafkaBusOptions {
  return {
    brokers: [bootstrap],
    registryUrl,
    clientId: `tq-bench-${name}`,
    topics: { [TOPICS.detections]: `${run}.detections`, [TOPICS.deadLetters]: `${run}.dlq` },
    groupIds: { decider: `${run}.decider` },
    consumer: TUNING,
  };
}

export const TUNING = {
  maxWaitTimeMs: 100,
  maxBytesPerPartition: 4 * 1024 * 1024,
  maxHandlerBatch: 2000,
  partitionsConsumedConcurrently: 3,
};

/** (b) bus.subscribe with Avro decode + zod over detections produced by (c). */
async function busSubscribe(
  bootstrap: string,
  registryUrl: string,
  run: string,
  count: number,
): Promise<number> {
  const bus = new KafkaBus({
    ...busOptions(bootstrap, registryUrl, run, 'sub'),
    groupIds: { probe: `${run}.probe` },
  });
  let seen = 0;
  let start = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((r) => {
    finish = r;
  });
  await bus.subscribe<DetectionMessage>(TOPICS.detections, 'probe', async (batch) => {
    if (start === 0) start = performance.now();
    seen += batch.length;
    if (seen >= count) finish();
    return batch.map(() => null);
  });
  await done;
  const rate = count / ((performance.now() - start) / 1000);
  await bus.close();
  return rate;
}

/** Cheap progress probe (readAll would parse every event on every poll). */
function countReceived(sqlite: SqliteEventStore): number {
  return (
    sqlite.database.prepare("SELECT COUNT(*) AS n FROM events WHERE type = 'DetectionReceived'").get() as {
      n: number;
    }
  ).n;
}

export async function deciderStack(
  bootstrap: string,
  registryUrl: string,
  run: string,
  durability: Durability,
  dir: string,
  client: KafkaClientName = 'kafkajs',
) {
  const sqlite = new SqliteEventStore({ path: join(dir, `${run}.db`), durability });
  const store = new CoalescingEventStore(sqlite);
  const policy = loadDefaultPolicy();
  await activatePolicy(store, policy, 'bench', new Date());
  // the floor below writes the same rows in transactions of the same sizes
  const startPosition = await sqlite.headPosition();
  const transactions = recordTransactions(sqlite);
  const bus = createKafkaBus(client, busOptions(bootstrap, registryUrl, run, 'decider'));
  await bus.start();
  const decider = new DeciderService({ store, bus, policy });
  return {
    sqlite,
    startPosition,
    transactions,
    start: () => decider.start(),
    received: () => countReceived(sqlite),
    async close() {
      await decider.stop();
      await bus.close();
      await store.close();
    },
  };
}

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux; clock ticks of 10 ms). */
function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** This process's CPU time (user + system) in µs. */
function ownCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

/** Values as they are: what the client costs, without an encoder's. */
const PASS_THROUGH: MessageCodec<Buffer> = {
  name: 'bytes',
  encode: (value) => value,
  decode: (value) => value,
};

interface ClientCost {
  produceCpuUs: number;
  producePerSecond: number;
  consumeCpuUs: number;
  consumePerSecond: number;
}

/** (f) M ~1 KB values published through the bus on `client`, then consumed by a group (no-op handler). */
async function clientProduceConsume(
  client: KafkaClientName,
  bootstrap: string,
  run: string,
): Promise<ClientCost> {
  const M = N * 2;
  const topic = `${run}.${client}.bytes`;
  await ensureTopics(createKafka({ brokers: [bootstrap], clientId: 'tq-bench-admin' }), [topic]);
  const bus = createKafkaBus(client, {
    brokers: [bootstrap],
    clientId: `tq-bench-${client}`,
    codecs: { [topic]: PASS_THROUGH as MessageCodec<unknown> },
    groupIds: { probe: `${run}.${client}.probe` },
    consumer: TUNING,
  });
  try {
    const value = Buffer.alloc(1000, 'x');
    const batches = Array.from({ length: Math.ceil(M / 2000) }, (_, b) =>
      Array.from({ length: Math.min(2000, M - b * 2000) }, (_, i) => ({
        key: `k${(b * 2000 + i) % IDENTITIES}`,
        value,
      })),
    );
    await bus.publish(topic, batches[0]!.slice(0, 1)); // connect and learn the metadata outside the clock
    let cpu0 = ownCpuUs();
    let t0 = performance.now();
    for (const batch of batches) await bus.publish(topic, batch);
    const produceMs = performance.now() - t0;
    const produceCpuUs = (ownCpuUs() - cpu0) / M;

    let seen = 0;
    let finish: () => void = () => undefined;
    const done = new Promise<void>((r) => {
      finish = r;
    });
    cpu0 = ownCpuUs();
    t0 = 0;
    await bus.subscribe<Buffer>(topic, 'probe', async (batch) => {
      if (t0 === 0) t0 = performance.now();
      seen += batch.length;
      if (seen >= M + 1) finish();
      return batch.map(() => null);
    });
    await done;
    const consumeMs = performance.now() - t0;
    const consumeCpuUs = (ownCpuUs() - cpu0) / (M + 1);
    return {
      produceCpuUs,
      producePerSecond: M / (produceMs / 1000),
      consumeCpuUs,
      consumePerSecond: (M + 1) / (consumeMs / 1000),
    };
  } finally {
    await bus.close();
  }
}

async function compareClients(bootstrap: string, results: Record<string, number | string>): Promise<void> {
  const best = new Map<KafkaClientName, ClientCost>();
  for (let round = 0; round < 2; round++) {
    for (const client of KAFKA_CLIENTS) {
      const c = await clientProduceConsume(client, bootstrap, uniqueName(`bench-client-${round}`));
      const b = best.get(client);
      best.set(
        client,
        b
          ? {
              produceCpuUs: Math.min(b.produceCpuUs, c.produceCpuUs),
              producePerSecond: Math.max(b.producePerSecond, c.producePerSecond),
              consumeCpuUs: Math.min(b.consumeCpuUs, c.consumeCpuUs),
              consumePerSecond: Math.max(b.consumePerSecond, c.consumePerSecond),
            }
          : c,
      );
    }
  }
  results['client load average (1, 5, 15 min)'] = loadAverage();
  for (const [client, c] of best) {
    results[`client.${client}.produce 1KB (µs CPU/msg)`] = c.produceCpuUs;
    results[`client.${client}.produce 1KB (msgs/s)`] = c.producePerSecond;
    results[`client.${client}.consume 1KB (µs CPU/msg)`] = c.consumeCpuUs;
    results[`client.${client}.consume 1KB (msgs/s)`] = c.consumePerSecond;
  }
  const k = best.get('kafkajs')!;
  const p = best.get('platformatic')!;
  results['client.platformatic/kafkajs.produce CPU per msg (ratio)'] = p.produceCpuUs / k.produceCpuUs;
  results['client.platformatic/kafkajs.produce msgs/s (ratio)'] = p.producePerSecond / k.producePerSecond;
  results['client.platformatic/kafkajs.consume CPU per msg (ratio)'] = p.consumeCpuUs / k.consumeCpuUs;
  results['client.platformatic/kafkajs.consume msgs/s (ratio)'] = p.consumePerSecond / k.consumePerSecond;
}

export async function benchKafka(): Promise<Record<string, number | string>> {
  const servers = await tryEnsureKafkaAndRegistry();
  if ('skip' in servers) {
    console.log(
      `kafka bench skipped: Kafka or the schema registry is not reachable and could not be started (${servers.skip})`,
    );
    return {};
  }
  const { bootstrap, registryUrl } = servers;
  const dir = mkdtempSync(join(tmpdir(), 'tq-bench-kafka-'));
  const results: Record<string, number | string> = {};
  const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-bench' });
  try {
    // sanity: every generated record normalizes
    for (const v of rawRecords('probe', 30)) await normalize(JSON.parse(v.toString()));

    results['kafkajs.eachBatch.commitPerBatch (msgs/s)'] = await kafkajsEachBatch(
      bootstrap,
      uniqueName('bench-a'),
    );

    // (c) ingest alone, then (b) and (d) over what it produced
    const run = uniqueName('bench-stages');
    const raw = `${run}.raw`;
    await ensureTopics(kafka, [raw]);
    await produceAll(bootstrap, raw, rawRecords(run, N), (i) => `r${i}`);
    const ingestBus = new KafkaBus(busOptions(bootstrap, registryUrl, run, 'ingest'));
    await ingestBus.start();
    const ingest = new RawConsumer({
      bus: ingestBus,
      topics: [{ topic: raw }],
      groupId: `${run}.ingest`,
      consumer: TUNING,
    });
    let t0 = performance.now();
    await ingest.start();
    await untilCaughtUp(bootstrap, `${run}.ingest`, raw, 600_000);
    results['ingest.raw→detections (records/s)'] = N / ((performance.now() - t0) / 1000);
    await ingest.stop();
    await ingestBus.close();

    results['bus.subscribe.avro+zod (msgs/s)'] = await busSubscribe(bootstrap, registryUrl, run, N);

    const stage = await deciderStack(bootstrap, registryUrl, run, 'normal', dir);
    t0 = performance.now();
    await stage.start();
    await waitFor(async () => (await stage.received()) >= N, 600_000, 'decider stage', 50);
    const stageSeconds = (performance.now() - t0) / 1000;
    results['decider.detections→appended.normal (detections/s)'] = N / stageSeconds;
    // the same rows, in the same transactions, by bare better-sqlite3 inserts, in this same run
    const floor = sqliteFloor(stage.sqlite, stage.startPosition, stage.transactions, dir, 'normal');
    await stage.close();
    const stageUs = (stageSeconds * 1e6) / N;
    const floorUs = (floor.seconds * 1e6) / floor.detections;
    results['decider.stage (µs/detection)'] = stageUs;
    results['floor: plain better-sqlite3, same rows and transactions (µs/detection)'] = floorUs;
    results['decider.stage ÷ floor (×)'] = stageUs / floorUs;
    results['store: event data bytes per event (the chained row)'] = floor.dataBytesPerEvent;
    results['store: raw record bytes per detection (kept apart)'] = floor.rawBytesPerDetection;
    results['store: events per detection'] = floor.events / floor.detections;

    // (e) end to end, pipelined: ingest and decider in this process (one JavaScript thread for both),
    // then as in distributed mode: `serve ingest` in a child process, the decider here
    // (f) the clients alone, side by side
    await compareClients(bootstrap, results);

    // (e) end to end, pipelined: ingest and decider in this process (one JavaScript thread for both),
    // then as in distributed mode: `serve ingest` in a child process, the decider here. The 2proc runs
    // alternate between the clients (two rounds each, the best kept).
    type Run = { durability: Durability; where: '1proc' | '2proc'; client: KafkaClientName };
    const runs: Run[] = [
      { durability: 'normal', where: '1proc', client: 'kafkajs' },
      ...[0, 1].flatMap(() =>
        KAFKA_CLIENTS.map((client): Run => ({ durability: 'normal', where: '2proc', client })),
      ),
      { durability: 'full', where: '2proc', client: 'kafkajs' },
    ];
    for (const { durability, where, client } of runs) {
      const count = durability === 'normal' ? N : Math.min(N, 20_000);
      const e2e = uniqueName(`bench-e2e-${durability}-${where}-${client}`);
      const rawTopic = `${e2e}.raw`;
      await ensureTopics(kafka, [rawTopic]);
      const values = rawRecords(e2e, count);
      const decider = await deciderStack(bootstrap, registryUrl, e2e, durability, dir, client);
      let stopIngest: () => Promise<void>;
      let ingestCpuMs: () => number = () => Number.NaN;
      await decider.start();
      if (where === '1proc') {
        const bus = createKafkaBus(client, busOptions(bootstrap, registryUrl, e2e, 'ingest'));
        await bus.start();
        const ing = new RawConsumer({
          bus,
          topics: [{ topic: rawTopic }],
          groupId: `${e2e}.ingest`,
          consumer: TUNING,
        });
        await ing.start();
        stopIngest = async () => {
          await ing.stop();
          await bus.close();
        };
      } else {
        const child = startServeProcess('ingest', {
          TOURNIQUET_LOG_LEVEL: 'info',
          TOURNIQUET_KAFKA_CLIENT: client,
          TOURNIQUET_KAFKA_BROKERS: bootstrap,
          TOURNIQUET_SCHEMA_REGISTRY_URL: registryUrl,
          TOURNIQUET_DETECTIONS_TOPIC: `${e2e}.detections`,
          TOURNIQUET_DLQ_TOPIC: `${e2e}.dlq`,
          TOURNIQUET_INGEST_GROUP: `${e2e}.ingest`,
          TOURNIQUET_RAW_TOPICS: rawTopic,
          TOURNIQUET_KAFKA_MAX_BATCH: '2000',
          TOURNIQUET_KAFKA_PARTITIONS_CONCURRENTLY: '3',
          TOURNIQUET_DATA_DIR: join(dir, e2e),
        });
        await waitFor(() => child.assignment(rawTopic).length === 6, 60_000, 'serve ingest to join');
        ingestCpuMs = () => processCpuMs(child.child.pid!);
        stopIngest = () => stopServeProcess(child);
      }
      // the clock runs from the first raw record produced to the last decision appended
      const load = loadAverage();
      const ingestCpu0 = ingestCpuMs();
      const ownCpu0 = ownCpuUs();
      t0 = performance.now();
      await produceAll(bootstrap, rawTopic, values, (i) => `r${i}`);
      await waitFor(
        async () => (await decider.received()) >= count,
        900_000,
        `end to end (${durability}, ${where}, ${client})`,
        50,
      );
      const rate = count / ((performance.now() - t0) / 1000);
      const ingestCpuUs = ((ingestCpuMs() - ingestCpu0) * 1000) / count;
      const ownCpuPerDetection = (ownCpuUs() - ownCpu0) / count;
      const name = `e2e.raw→decision.${durability}.${where}${client === 'kafkajs' ? '' : `.${client}`}`;
      const key = `${name} (detections/s)`;
      const prior = results[key];
      if (typeof prior !== 'number' || rate > prior) {
        results[key] = rate;
        results[`${name} load average (1, 5, 15 min)`] = load;
        if (where === '2proc') {
          results[`${name} ingest process (µs CPU/detection)`] = ingestCpuUs;
          results[`${name} decider + raw producer process (µs CPU/detection)`] = ownCpuPerDetection;
        }
      }
      await stopIngest();
      await decider.close();
    }
    const rateOf = (client: KafkaClientName) =>
      results[
        `e2e.raw→decision.normal.2proc${client === 'kafkajs' ? '' : `.${client}`} (detections/s)`
      ] as number;
    const cpuOf = (client: KafkaClientName, what: string) =>
      results[
        `e2e.raw→decision.normal.2proc${client === 'kafkajs' ? '' : `.${client}`} ${what} (µs CPU/detection)`
      ] as number;
    results['e2e.normal.2proc platformatic/kafkajs detections/s (ratio)'] =
      rateOf('platformatic') / rateOf('kafkajs');
    results['e2e.normal.2proc platformatic/kafkajs ingest CPU per detection (ratio)'] =
      cpuOf('platformatic', 'ingest process') / cpuOf('kafkajs', 'ingest process');
    results['e2e.normal.2proc platformatic/kafkajs decider CPU per detection (ratio)'] =
      cpuOf('platformatic', 'decider + raw producer process') /
      cpuOf('kafkajs', 'decider + raw producer process');
    results['records (n)'] = N;
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
