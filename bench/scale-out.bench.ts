/**
 * Decider throughput per instance: 1 vs 2 `serve decider` processes draining the same backlog from
 * Kafka (the numbers docs/deployment.md's sizing table quotes). Needs Kafka and the schema registry
 * (TOURNIQUET_INFRA=up) and takes a few minutes, so `npm run bench` runs it only when named:
 *   npm run bench -- scale-out        (TQ_MEASURE_N detections, default 40000; TQ_MEASURE_ROUNDS, default 1)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKafka, ensureTopics, KafkaBus } from '../platform/bus/kafka.ts';
import { TOPICS } from '../platform/bus/port.ts';
import { SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import { identityKey, type NormalizedDetection } from '../schemas/detection.ts';
import type { DetectionMessage } from '../schemas/messages.ts';
import { normalize } from '../services/ingest/normalizers/index.ts';
import { ensureKafka, ensureRegistry, uniqueName, waitFor } from '../test/support/kafka.ts';
import { countByType, PARTITIONS, rawRecord, writeConfig, writePolicy } from '../test/support/scale-out.ts';
import { type CliServe, startCliServe, stopCli } from '../test/support/serve-child.ts';

/** CPU time (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

export async function benchScaleOut(): Promise<Record<string, number | string>> {
  const root = mkdtempSync(join(tmpdir(), 'tq-bench-scale-out-'));
  const procs: CliServe[] = [];
  try {
    return await measure(root, procs);
  } finally {
    await Promise.all(procs.map((p) => stopCli(p)));
    rmSync(root, { recursive: true, force: true });
  }
}

async function measure(root: string, procs: CliServe[]): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  const [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
  const M = Number(process.env.TQ_MEASURE_N ?? 40_000);
  const rounds = Number(process.env.TQ_MEASURE_ROUNDS ?? 1);
  const identities = 5000;
  const baseMs = Date.now() - 30 * 60_000;
  // normalized once, up front: what ingest would have published
  const backlog: NormalizedDetection[] = [];
  for (let n = 0; n < M; n++)
    backlog.push(await normalize(rawRecord('m', n, baseMs, identities), { format: 'ocsf' }));
  const results: string[] = [];
  for (const [round, k] of Array.from({ length: rounds }, () => [1, 2])
    .flat()
    .entries()) {
    const run = uniqueName(`measure-${k}`);
    const dir = join(root, `round${round}-k${k}`);
    mkdirSync(dir, { recursive: true });
    const detections = `${run}.detections`;
    const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-measure' });
    await ensureTopics(kafka, [detections, `${run}.dlq`], { partitions: PARTITIONS });
    const bus = new KafkaBus({
      brokers: [bootstrap],
      registryUrl,
      clientId: 'tq-measure-producer',
      topics: { [TOPICS.detections]: detections, [TOPICS.deadLetters]: `${run}.dlq` },
    });
    const runBacklog = backlog.map((d) => ({
      ...d,
      id: `${d.id}-${run}`,
      identity: { ...d.identity, id: `${d.identity.id}-${run}` },
    }));
    for (let i = 0; i < M; i += 1000) {
      await bus.publish<DetectionMessage>(
        TOPICS.detections,
        runBacklog.slice(i, i + 1000).map((d) => ({
          key: identityKey(d.identity),
          value: { at: new Date().toISOString(), detection: d },
        })),
      );
    }
    await bus.close();
    const storePath = join(dir, 'events.db');
    const config = writeConfig(dir, {
      bootstrap,
      registryUrl,
      run,
      storePath,
      policy: writePolicy(dir),
      journals: join(dir, 'journals'),
    });
    const members: CliServe[] = [];
    const t0 = Date.now();
    for (let i = 0; i < k; i++) {
      const p = startCliServe(`decider-${i}`, 'decider', config, {
        TOURNIQUET_DATA_DIR: join(dir, `d${i}`),
        TOURNIQUET_LOG_LEVEL: 'info',
      });
      procs.push(p);
      members.push(p);
    }
    // balanced: every member holds partitions and together all of them (the first to join starts alone)
    let balancedAt = 0;
    let cpuAtBalance: number[] = [];
    const store = new SqliteEventStore({ path: storePath });
    await waitFor(
      () => {
        const held = members.map((m) => m.assignment(detections));
        if (held.every((h) => h.length > 0) && held.flat().length === PARTITIONS) {
          balancedAt = Date.now();
          cpuAtBalance = members.map((m) => cpuSeconds(m.child.pid!));
          return true;
        }
        return false;
      },
      120_000,
      'the group to balance',
      50,
    );
    await waitFor(
      () => {
        try {
          return (countByType(store).DetectionReceived ?? 0) >= M;
        } catch {
          return false;
        }
      },
      600_000,
      `all ${M} detections decided with ${k} decider(s)`,
      250,
    );
    const rows = store.database
      .prepare("SELECT recorded_at AS t FROM events WHERE type = 'DetectionReceived' ORDER BY position")
      .all() as Array<{ t: string }>;
    const times = rows.map((r) => Date.parse(r.t));
    const balanced = times.filter((t) => t >= balancedAt);
    const span = (times.at(-1)! - balancedAt) / 1000;
    const rate = balanced.length / span;
    const whole = M / ((times.at(-1)! - times[0]!) / 1000);
    const cores = members.map((m, i) => (cpuSeconds(m.child.pid!) - cpuAtBalance[i]!) / span);
    const peakRss = members.map((m) => peakRssMb(m.child.pid!));
    const line = `${k} decider(s): ${balanced.length} of ${M} decided after the group balanced, in ${span.toFixed(1)} s = ${rate.toFixed(0)} detections/s (${(rate / k).toFixed(0)} per instance); CPU per instance ${cores.map((c) => c.toFixed(2)).join(', ')} cores; peak RSS ${peakRss.join(', ')} MB; whole backlog ${whole.toFixed(0)}/s; start → balanced ${((balancedAt - t0) / 1000).toFixed(1)} s; counts ${JSON.stringify(countByType(store))}`;
    results.push(line);
    console.log(`[measure] ${line}`);
    await Promise.all(members.map((m) => stopCli(m)));
    await store.close();
  }
  out['load average'] = readFileSync('/proc/loadavg', 'utf8').trim();
  out.runs = results.join(' | ');
  return out;
}
