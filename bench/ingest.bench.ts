/**
 * HTTP ingest as a SIEM feels it: the real server (`tourniquet start`, embedded SQLite store in a
 * temporary directory, synchronous=FULL) on loopback, driven by undici at concurrency 1/16/64 with
 * single-detection POSTs and with batches of 100; beside it, in the same run, a floor server (plain
 * Fastify + better-sqlite3 writing the same rows with the same durability, bench/ingest-floor-server.ts),
 * one transaction per request and with group commit. Every answer must be a 202.
 * Env: BENCH_INGEST_SECONDS (per measurement, default 5).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Pool } from 'undici';
import { CLI, killHard, REPO_ROOT, type RunningStack, startStackProcess } from '../test/support/cli.ts';
import { machineLoad } from './lib.ts';

const SECONDS = Number(process.env.BENCH_INGEST_SECONDS ?? '5');
const FLOOR_SERVER = fileURLToPath(new URL('./ingest-floor-server.ts', import.meta.url));

/** A SIEM alert of the kind storms are made of: below the case floor, recorded for audit and replay. */
function detection(run: string, n: number) {
  return {
    id: `${run}-${n}`,
    source: 'splunk',
    kind: 'anomalous_token_use',
    confidence: 0.25,
    severity: 'low',
    identity: { provider: 'okta', id: `user-${n % 50_000}@acme.example`, type: 'human' },
    occurredAt: new Date().toISOString(),
    title: 'Token used from an unusual network',
    evidence: { ip: '203.0.113.7', country: 'NL', asn: 64_500, userAgent: 'curl/8.5.0' },
    raw: {
      search_name: 'Okta - Anomalous token use',
      _time: new Date().toISOString(),
      src_ip: '203.0.113.7',
      user: `user-${n}@acme.example`,
      app: 'okta',
      risk_score: 25,
      description: 'A session token was presented from a network this user has not used before. '.repeat(6),
      tags: ['identity', 'okta', 'token', 'anomaly'],
    },
  };
}

interface Load {
  concurrency: number;
  batch: number;
}

interface Measured {
  detectionsPerSecond: number;
  p50: number;
  p99: number;
  requests: number;
}

/** Drives `url` for SECONDS with `concurrency` clients each posting batches of `batch`, one request at a time. */
async function drive(url: string, token: string | undefined, load: Load, run: string): Promise<Measured> {
  const pool = new Pool(url, { connections: load.concurrency, pipelining: 1 });
  const latencies: number[] = [];
  let n = 0;
  let detections = 0;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers['x-api-key'] = token;
  const started = performance.now();
  const until = started + SECONDS * 1000;
  const client = async () => {
    while (performance.now() < until) {
      const items = Array.from({ length: load.batch }, () => detection(run, n++));
      const body = JSON.stringify(load.batch === 1 ? items[0] : items);
      const t0 = performance.now();
      const res = await pool.request({ path: '/v1/detections', method: 'POST', headers, body });
      const text = await res.body.text();
      if (res.statusCode !== 202) throw new Error(`answered ${res.statusCode}: ${text.slice(0, 300)}`);
      latencies.push(performance.now() - t0);
      detections += load.batch;
    }
  };
  await Promise.all(Array.from({ length: load.concurrency }, client));
  const elapsed = performance.now() - started;
  await pool.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return {
    detectionsPerSecond: Math.round((detections / elapsed) * 1000),
    p50: Math.round(at(0.5) * 10) / 10,
    p99: Math.round(at(0.99) * 10) / 10,
    requests: latencies.length,
  };
}

const LOADS: Load[] = [
  { concurrency: 1, batch: 1 },
  { concurrency: 16, batch: 1 },
  { concurrency: 64, batch: 1 },
  { concurrency: 16, batch: 100 },
];

async function driveAll(
  name: string,
  url: string,
  token: string | undefined,
  out: Record<string, number | string>,
): Promise<void> {
  // a short warm-up: JIT, the first page allocations, the decider's first identities
  await drive(url, token, { concurrency: 4, batch: 1 }, `${name}-warm`).catch((err) => {
    throw new Error(`${name}: ${(err as Error).message}`);
  });
  for (const load of LOADS) {
    const m = await drive(url, token, load, `${name}-c${load.concurrency}-b${load.batch}`);
    const key = `${name}.c${load.concurrency}.batch${load.batch}`;
    out[`${key} (detections/s)`] = m.detectionsPerSecond;
    out[`${key}.p50.ms`] = m.p50;
    out[`${key}.p99.ms`] = m.p99;
    out[`${key}.load1`] = machineLoad().load1;
  }
}

/** Rows per detection and bytes of JSON per row the real server wrote, for the floor to write the same. */
function rowShape(storePath: string): { rows: number; bytes: number } {
  const db = new Database(storePath, { readonly: true });
  const { events, bytes } = db
    .prepare<[], { events: number; bytes: number }>(
      'SELECT COUNT(*) AS events, AVG(LENGTH(data)) AS bytes FROM events',
    )
    .get()!;
  const { detections } = db
    .prepare<[], { detections: number }>(
      "SELECT COUNT(*) AS detections FROM events WHERE type = 'DetectionReceived'",
    )
    .get()!;
  db.close();
  return { rows: Math.max(1, Math.round(events / Math.max(1, detections))), bytes: Math.round(bytes) };
}

async function startFloor(dir: string, shape: { rows: number; bytes: number }, grouped: boolean) {
  const child = spawn(process.execPath, ['--import', 'tsx', FLOOR_SERVER], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      FLOOR_DB: join(dir, grouped ? 'floor-group.db' : 'floor.db'),
      FLOOR_ROWS: String(shape.rows),
      FLOOR_ROW_BYTES: String(shape.bytes),
      FLOOR_GROUP: grouped ? '1' : '0',
    },
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => {
    out += b.toString();
  });
  for (let i = 0; i < 600 && !/listening on (\S+)/.test(out); i++)
    await new Promise((r) => setTimeout(r, 50));
  const url = /listening on (\S+)/.exec(out)?.[1];
  if (!url) throw new Error(`floor server did not start: ${out}`);
  return { child, url };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

export async function benchIngest(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {};
  out.machine = `load1 ${machineLoad().load1} on ${machineLoad().cpus} CPUs at start; ${SECONDS} s per measurement`;
  const dir = mkdtempSync(join(tmpdir(), 'tq-bench-ingest-'));
  let stack: RunningStack | undefined;
  try {
    // A SIEM connector's credential: an API key with the service role, made as an operator would.
    const key = spawnSync(
      process.execPath,
      [CLI, 'auth', 'add-key', '--data-dir', join(dir, 'stack'), '--id', 'siem', '--roles', 'service'],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    const apiKey = key.stdout.split('\n')[0]?.trim();
    if (key.status !== 0 || !apiKey) throw new Error(`auth add-key failed: ${key.stderr}`);
    stack = await startStackProcess(['--data-dir', join(dir, 'stack'), '--port', '0']);
    await driveAll('server', stack.url, apiKey, out);
    await killHard(stack);
    stack = undefined;
    const shape = rowShape(join(dir, 'stack', 'events.db'));
    out.rowShape = `${shape.rows} event(s) per detection, ${shape.bytes} bytes of JSON per event (the floor writes the same)`;
    for (const grouped of [false, true]) {
      const name = grouped ? 'floorGroup' : 'floor';
      const floor = await startFloor(dir, shape, grouped);
      try {
        await driveAll(name, floor.url, undefined, out);
      } finally {
        await stop(floor.child);
      }
    }
    for (const load of LOADS) {
      const key = `c${load.concurrency}.batch${load.batch}`;
      const server = out[`server.${key} (detections/s)`] as number;
      out[`ratio.server/floor.${key}`] =
        Math.round((server / (out[`floor.${key} (detections/s)`] as number)) * 100) / 100;
      out[`ratio.server/floorGroup.${key}`] =
        Math.round((server / (out[`floorGroup.${key} (detections/s)`] as number)) * 100) / 100;
    }
    out.machineEnd = `load1 ${machineLoad().load1} at the end`;
  } finally {
    if (stack) await killHard(stack);
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
