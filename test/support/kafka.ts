/**
 * Test support: the real Kafka broker and schema registry for integration and end-to-end tests.
 *
 * ensureKafka() / ensureRegistry() return the addresses of running servers: KAFKA_BOOTSTRAP /
 * SCHEMA_REGISTRY_URL when set, else the scripts' default ports when they answer, else they run
 * `scripts/kafka.sh up` / `scripts/registry.sh up` (under a file lock, so parallel test files start
 * a server once). They never stop the shared servers: `.ci/run` or the developer does (`down`).
 *
 * PrivateBroker is a second, throw-away broker on free ports with its own run dir, for tests that
 * stop and restart a broker (the shared one must stay up for the other test files): started with
 * kafka.sh (same jars, same config), stopped with SIGTERM keeping its data dir, and started again
 * with exactly the command line kafka.sh used.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Admin, Kafka } from 'kafkajs';
import { readTopicToEnd } from '../../platform/bus/dlq-redrive.ts';
import { createKafka, stringHeaders } from '../../platform/bus/kafka.ts';
import { KAFKA_CLIENTS, type KafkaClientName } from '../../platform/bus/kafka-clients.ts';
import { ROOT, type ServiceProcess, spawnService, stopService } from './service-process.ts';

const run = promisify(execFile);

export { ROOT };

const KAFKA_SH = join(ROOT, 'scripts/kafka.sh');
const REGISTRY_SH = join(ROOT, 'scripts/registry.sh');

/**
 * The Kafka client libraries the Kafka end-to-end tests run on: every one the bus offers, or those
 * named in TOURNIQUET_TEST_KAFKA_CLIENTS (comma-separated, e.g. `platformatic`) for a shorter run.
 */
export const E2E_KAFKA_CLIENTS: KafkaClientName[] = (() => {
  const wanted = process.env.TOURNIQUET_TEST_KAFKA_CLIENTS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!wanted?.length) return [...KAFKA_CLIENTS];
  for (const w of wanted)
    if (!(KAFKA_CLIENTS as readonly string[]).includes(w))
      throw new Error(
        `TOURNIQUET_TEST_KAFKA_CLIENTS: unknown Kafka client ${w} (known: ${KAFKA_CLIENTS.join(', ')})`,
      );
  return wanted as KafkaClientName[];
})();

export const DEFAULT_BOOTSTRAP = '127.0.0.1:19092';
export const DEFAULT_REGISTRY = 'http://127.0.0.1:18081/apis/ccompat/v7';

export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = new Socket();
    const done = (ok: boolean) => {
      s.destroy();
      resolvePromise(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.connect(port, host, () => done(true));
  });
}

function hostPort(address: string): { host: string; port: number } {
  const u = new URL(address.includes('://') ? address : `tcp://${address}`);
  return { host: u.hostname, port: Number(u.port) };
}

function lockFile(name: string): string {
  const dir = process.env.TOURNIQUET_RUN ?? '/tmp/tourniquet-infra';
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}.up.lock`);
}

async function scriptUp(script: string, name: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await run('flock', [lockFile(name), 'bash', script, 'up'], {
      timeout: 300_000,
      maxBuffer: 10 * 1024 * 1024,
      env,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${script} up failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** Bootstrap address of a running broker (starts the shared one when nothing answers). */
export async function ensureKafka(): Promise<string> {
  // KAFKA_PORT moves the script's broker (scripts/README.md); KAFKA_BOOTSTRAP names any broker
  const bootstrap =
    process.env.KAFKA_BOOTSTRAP ??
    (process.env.KAFKA_PORT ? `127.0.0.1:${process.env.KAFKA_PORT}` : DEFAULT_BOOTSTRAP);
  const { host, port } = hostPort(bootstrap);
  if (await portOpen(host, port)) return bootstrap;
  if (process.env.KAFKA_BOOTSTRAP) throw new Error(`KAFKA_BOOTSTRAP=${bootstrap} does not answer`);
  await scriptUp(KAFKA_SH, 'kafka');
  return bootstrap;
}

/** Base URL of a running Confluent-compatible registry (starts the shared Apicurio when nothing answers). */
export async function ensureRegistry(): Promise<string> {
  const url = (
    process.env.SCHEMA_REGISTRY_URL ??
    (process.env.REGISTRY_PORT
      ? `http://127.0.0.1:${process.env.REGISTRY_PORT}/apis/ccompat/v7`
      : DEFAULT_REGISTRY)
  ).replace(/\/+$/, '');
  if (await registryAnswers(url)) return url;
  if (process.env.SCHEMA_REGISTRY_URL) throw new Error(`SCHEMA_REGISTRY_URL=${url} does not answer`);
  await scriptUp(REGISTRY_SH, 'registry');
  return url;
}

async function registryAnswers(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2000) });
    await r.text();
    return r.ok;
  } catch {
    return false;
  }
}

/** Kafka and the registry, or the reason they cannot be had (for benchmarks that skip). */
export async function tryEnsureKafkaAndRegistry(): Promise<
  { bootstrap: string; registryUrl: string } | { skip: string }
> {
  try {
    const [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
    return { bootstrap, registryUrl };
  } catch (e) {
    return { skip: (e as Error).message.split('\n')[0]! };
  }
}

/** A name unique to this run: topics and group ids never collide across reruns. */
export function uniqueName(prefix: string): string {
  return `${prefix}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 7)}`;
}

/** A test client with kafkajs logs off (errors during broker restarts are expected). */
export function testKafka(bootstrap: string, clientId = 'tourniquet-test'): Kafka {
  return createKafka({ brokers: [bootstrap], clientId });
}

export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const start = Date.now();
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() - start > timeoutMs) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface ReadMessage {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** High watermark (next offset) per partition of a topic. */
export async function topicEnds(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return new Map(offsets.map((o) => [o.partition, BigInt(o.high)]));
}

/**
 * Everything in a topic from the beginning up to its current end, read with a throw-away group
 * (nothing committed). For DLQ checks.
 */
export async function readTopic(kafka: Kafka, topic: string, timeoutMs = 60_000): Promise<ReadMessage[]> {
  const out: ReadMessage[] = [];
  await readTopicToEnd(
    kafka,
    topic,
    ({ partition, message }) =>
      out.push({
        partition,
        offset: message.offset,
        key: message.key,
        value: message.value,
        headers: stringHeaders(message.headers) ?? {},
      }),
    timeoutMs,
  );
  return out;
}

/** Committed offsets of a group equal the topic's end on every partition: nothing stalled, nothing left. */
export async function groupCaughtUp(
  admin: Admin,
  groupId: string,
  topic: string,
): Promise<{ done: boolean; lag: Record<number, string> }> {
  const ends = await topicEnds(admin, topic);
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const lag: Record<number, string> = {};
  let done = true;
  for (const [p, hw] of ends) {
    const c = committed?.partitions.find((x) => x.partition === p)?.offset;
    const at = c === undefined || c === '-1' ? 0n : BigInt(c);
    if (at < hw) {
      done = false;
      lag[p] = String(hw - at);
    }
  }
  return { done, lag };
}

async function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePromise(port));
    });
  });
}

/** A broker of its own, for tests that stop and restart Kafka mid-stream. */
export class PrivateBroker {
  readonly runDir: string;
  port = 0;
  controllerPort = 0;
  private cmdline: string[] | undefined;

  constructor() {
    this.runDir = mkdtempSync(join(tmpdir(), 'tq-private-kafka-'));
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`;
  }

  private get env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      TOURNIQUET_RUN: this.runDir,
      KAFKA_PORT: String(this.port),
      KAFKA_CONTROLLER_PORT: String(this.controllerPort),
      KAFKA_HEAP: process.env.KAFKA_HEAP ?? '384m',
    };
  }

  private get pidFile(): string {
    return join(this.runDir, 'kafka.pid');
  }

  private pid(): number | undefined {
    if (!existsSync(this.pidFile)) return undefined;
    const pid = Number(readFileSync(this.pidFile, 'utf8').trim());
    if (!pid) return undefined;
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  }

  /** First start: kafka.sh up on free ports (formats a fresh data dir). A retried test gets a fresh broker. */
  async up(): Promise<string> {
    if (this.pid()) await this.stop(); // still running from an earlier attempt, on the old ports
    this.port = await freePort();
    this.controllerPort = await freePort();
    try {
      await run('bash', [KAFKA_SH, 'up'], { timeout: 300_000, maxBuffer: 10 * 1024 * 1024, env: this.env });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`private broker: kafka.sh up failed: ${e.message}\n${e.stderr ?? ''}`);
    }
    const pid = this.pid();
    if (!pid) throw new Error('private broker: no pid after kafka.sh up');
    this.cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((s) => s.length > 0);
    return this.bootstrap;
  }

  /** Stops the broker (SIGTERM: a clean shutdown) and keeps its data dir. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const pid = this.pid();
    if (!pid) return;
    process.kill(pid, signal);
    await waitFor(() => this.pid() === undefined, 60_000, 'the private broker to exit', 100);
    await waitFor(async () => !(await portOpen('127.0.0.1', this.port, 300)), 10_000, 'the port to close');
  }

  /** Starts the stopped broker again on the same data dir, ports and config. */
  async start(): Promise<void> {
    if (!this.cmdline) throw new Error('private broker was never up');
    if (this.pid()) return;
    const logFile = join(this.runDir, 'kafka', 'console.log');
    const child = spawn(
      'setsid',
      ['bash', '-c', 'echo $$ > "$0"; exec "$@" >>"$LOGFILE" 2>&1', this.pidFile, ...this.cmdline],
      { detached: true, stdio: 'ignore', env: { ...this.env, LOGFILE: logFile } },
    );
    child.unref();
    await waitFor(() => this.pid(), 10_000, 'the private broker pid');
    await waitFor(
      async () => await portOpen('127.0.0.1', this.port, 300),
      120_000,
      'the private broker port',
    );
    // the port answers before the broker serves metadata: wait for a real request to work
    const kafka = createKafka({ brokers: [this.bootstrap], clientId: 'tq-private-probe' });
    const admin = kafka.admin();
    await waitFor(
      async () => {
        await admin.connect();
        await admin.listTopics();
        return true;
      },
      120_000,
      'the restarted broker to serve metadata',
      500,
    );
    await admin.disconnect();
  }

  /**
   * Stops it for good and deletes the run dir, only once its broker is gone: a failed stop leaves the
   * directory (and says so) rather than pulling it from under a live process.
   */
  async down(): Promise<void> {
    await run('bash', [KAFKA_SH, 'down'], { timeout: 120_000, env: this.env });
    const pid = this.pid();
    if (pid)
      throw new Error(`private broker (pid ${pid}) still runs after kafka.sh down; ${this.runDir} is kept`);
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Raw records: vendor fixtures (services/ingest/normalizers/fixtures) made unique per test run

const FIXTURES = join(ROOT, 'services/ingest/normalizers/fixtures');
const fixtureCache = new Map<string, unknown>();
function fixtureRecord(path: string): Record<string, unknown> {
  let f = fixtureCache.get(path);
  if (!f) {
    f = JSON.parse(readFileSync(join(FIXTURES, path), 'utf8'));
    fixtureCache.set(path, f);
  }
  return structuredClone(f) as Record<string, unknown>;
}

type Obj = Record<string, unknown>;
/**
 * When the generated records occurred: 45 minutes before the test run (whole seconds), so that
 * records n = 0..2000 seconds later are all fresh at receipt. Older ones would meet the decider's
 * staleness guard (default 1 h between occurrence and receipt) and never act automatically.
 */
export const BASE_MS = Math.floor((Date.now() - 45 * 60_000) / 1000) * 1000;

/** OCSF Detection Finding (impossible travel, confidence 0.82) for a human Okta user. */
export function ocsfRecord(run: string, n: number, user: string, atMs = BASE_MS + n * 1000): Obj {
  const r = fixtureRecord('ocsf/human-impossible-travel.json');
  const fi = r.finding_info as Obj;
  fi.uid = `f-${run}-${n}`;
  fi.created_time = atMs;
  fi.first_seen_time = atMs - 60_000;
  fi.last_seen_time = atMs;
  r.time = atMs;
  const u = (r.actor as Obj).user as Obj;
  u.uid = user;
  u.name = `${user}@example.com`;
  u.email_addr = `${user}@example.com`;
  return r;
}

/** Okta System Log event: user.session roaming (anomalous token use) or a user-reported compromise. */
export function oktaRecord(
  run: string,
  n: number,
  user: string,
  kind: 'roaming' | 'reported' = 'roaming',
  atMs = BASE_MS + n * 1000,
): Obj {
  const r = fixtureRecord(
    kind === 'roaming' ? 'okta/user-session-roaming.json' : 'okta/user-report-suspicious.json',
  );
  r.uuid = `${run}-okta-${n}`;
  r.published = new Date(atMs).toISOString();
  const a = r.actor as Obj;
  a.id = user;
  a.alternateId = `${user}@example.com`;
  return r;
}

/** AWS GuardDuty finding (EventBridge envelope): instance credentials used outside AWS, for a role. */
export function guardDutyRecord(run: string, n: number, role: string, atMs = BASE_MS + n * 1000): Obj {
  const r = fixtureRecord('guardduty/role-instance-credential-exfiltration.json');
  const d = r.detail as Obj;
  r.id = `${run}-ev-${n}`;
  d.id = `${run.replace(/[^a-z0-9]/gi, '')}gd${n}`;
  r.time = new Date(atMs).toISOString();
  for (const k of ['createdAt', 'updatedAt']) if (k in d) d[k] = new Date(atMs).toISOString();
  const key = (d.resource as Obj).accessKeyDetails as Obj;
  key.userName = role;
  key.principalId = `AROA${role.toUpperCase().replace(/[^A-Z0-9]/g, '')}:i-0abc${n}`;
  return r;
}

/** What a SIEM exporting Okta System Log in Avro might register: a subset of the LogEvent. */
export const OKTA_AVRO_SCHEMA = {
  type: 'record',
  name: 'OktaLogEvent',
  namespace: 'com.example.siem.okta',
  fields: [
    { name: 'uuid', type: 'string' },
    { name: 'published', type: 'string' },
    { name: 'eventType', type: 'string' },
    { name: 'severity', type: 'string' },
    { name: 'displayMessage', type: ['null', 'string'], default: null },
    {
      name: 'actor',
      type: {
        type: 'record',
        name: 'Actor',
        fields: [
          { name: 'id', type: 'string' },
          { name: 'type', type: 'string' },
          { name: 'alternateId', type: ['null', 'string'], default: null },
          { name: 'displayName', type: ['null', 'string'], default: null },
        ],
      },
    },
    {
      name: 'client',
      type: [
        'null',
        {
          type: 'record',
          name: 'Client',
          fields: [{ name: 'ipAddress', type: ['null', 'string'], default: null }],
        },
      ],
      default: null,
    },
    {
      name: 'outcome',
      type: [
        'null',
        {
          type: 'record',
          name: 'Outcome',
          fields: [
            { name: 'result', type: 'string' },
            { name: 'reason', type: ['null', 'string'], default: null },
          ],
        },
      ],
      default: null,
    },
  ],
} as const;

/** The OKTA_AVRO_SCHEMA view of an Okta System Log event. */
export function oktaAvroValue(r: Obj): Obj {
  const actor = r.actor as Obj;
  const client = r.client as Obj | undefined;
  const outcome = r.outcome as Obj | undefined;
  return {
    uuid: r.uuid,
    published: r.published,
    eventType: r.eventType,
    severity: r.severity ?? 'INFO',
    displayMessage: r.displayMessage ?? null,
    actor: {
      id: actor.id,
      type: actor.type,
      alternateId: actor.alternateId ?? null,
      displayName: actor.displayName ?? null,
    },
    client: client ? { ipAddress: client.ipAddress ?? null } : null,
    outcome: outcome ? { result: outcome.result, reason: outcome.reason ?? null } : null,
  };
}

// ---------------------------------------------------------------------------------------------------
// `serve` child processes

export type ServeProcess = ServiceProcess;

/**
 * Runs `node --import tsx app/serve.ts <service> [args]` (what `tourniquet serve <service>` runs),
 * configured by environment variables and/or `--config FILE`, logs at info on stderr.
 */
export function startServeProcess(
  service: string,
  env: Record<string, string>,
  args: string[] = [],
): ServeProcess {
  return spawnService(['--import', 'tsx', join(ROOT, 'app/serve.ts'), service, ...args], env);
}

export const stopServeProcess = stopService;
