/**
 * Scale-out (issue 8, part 3): every service as its own process, started the way an operator starts it
 * (`node bin/tourniquet.js serve <service> --config FILE`), over the real Kafka broker and schema
 * registry and ONE SQLite event store file (WAL) shared by all of them:
 *
 *   producer (this test) ─► raw topic ─► ingest ─► detections (6 partitions) ─► decider A, decider B
 *                                                                                     │
 *                                                        events.db (one file) ◄───────┘
 *                                  executor A, executor B ◄──┘  └──► projector A, projector B (+ API)
 *
 * 2,000 OCSF detections across 300 identities, 40 % of them known compromises at 0.95 (auto-approved
 * revoke_sessions), the rest impossible travel at 0.82 (auto-approved revoke_tokens, then force_step_up).
 * Mid-stream one decider and one executor are SIGKILLed; the survivors finish. Then: no detection lost
 * or doubled, no decision doubled, no effect doubled (the dry-run journals of both executors, summed),
 * both deciders had partitions, both projectors show the same actions.
 *
 * TQ_MEASURE_DECIDERS=1 also runs the decider throughput measurement (1 vs 2 decider processes) that
 * docs/deployment.md's sizing table quotes; it is skipped otherwise (it takes a few minutes).
 */

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafka, ensureTopics, KafkaBus } from '../../platform/bus/kafka.ts';
import { TOPICS } from '../../platform/bus/port.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { identityKey, type NormalizedDetection } from '../../schemas/detection.ts';
import type { RecordedEvent } from '../../schemas/events.ts';
import type { DetectionMessage } from '../../schemas/messages.ts';
import { DryRunProvider } from '../../services/executor/providers/dry-run.ts';
import { normalize } from '../../services/ingest/normalizers/index.ts';
import {
  ensureKafka,
  ensureRegistry,
  groupCaughtUp,
  ocsfRecord,
  ROOT,
  uniqueName,
  waitFor,
} from '../support/kafka.ts';
import { apiOf, type CliServe, serving, startCliServe, stopCli } from '../support/serve-child.ts';

const N = 2000;
const IDENTITIES = 300;
const PARTITIONS = 6;

/** Detection n: identity u-(n mod 300); 2 in 5 a known compromise (0.95), else impossible travel (0.82), mixed per identity. */
function rawRecord(run: string, n: number, baseMs: number, identities = IDENTITIES): Record<string, unknown> {
  const user = `u-${n % identities}-${run}`;
  const r = ocsfRecord(run, n, user, baseMs + Math.floor(n / identities) * 1000 + (n % identities));
  if ((n + Math.floor(n / identities)) % 5 < 2) {
    const fi = r.finding_info as Record<string, unknown>;
    fi.types = ['Known Compromise'];
    fi.title = 'Account credentials confirmed compromised (threat intel)';
    (fi.analytic as Record<string, unknown>).name = 'Threat intel match';
    r.confidence_score = 95;
  }
  return r;
}
const detectionId = (run: string, n: number) => `f-${run}-${n}`;

/** The default policy with the blast-radius budget for automatic actions raised: 300 identities at once is the load here, not a bad rule. */
function writePolicy(dir: string): string {
  const text = readFileSync(join(ROOT, 'policies/default.yaml'), 'utf8');
  const raised = text.replace(/- action: "\*"\n(\s+)limit: 50\n/, '- action: "*"\n$1limit: 100000\n');
  if (raised === text) throw new Error('policies/default.yaml changed: the "*" budget of 50 was not found');
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, raised);
  return path;
}

function writeConfig(
  dir: string,
  o: {
    bootstrap: string;
    registryUrl: string;
    run: string;
    raw?: string;
    storePath: string;
    policy: string;
    journals: string;
  },
): string {
  const file = join(dir, 'tourniquet.yaml');
  writeFileSync(
    file,
    [
      'kafka:',
      `  brokers: [${o.bootstrap}]`,
      `  partitions: ${PARTITIONS}`,
      '  sessionTimeoutMs: 6000',
      '  heartbeatIntervalMs: 1000',
      '  maxBatch: 200',
      'schemaRegistry:',
      `  url: ${o.registryUrl}`,
      'topics:',
      `  detections: ${o.run}.detections`,
      `  deadLetters: ${o.run}.dlq`,
      'groups:',
      `  ingest: ${o.run}.ingest`,
      `  decider: ${o.run}.decider`,
      ...(o.raw
        ? ['ingest:', '  rawTopics:', `    - { topic: ${o.raw}, format: ocsf, encoding: json }`]
        : []),
      'store:',
      '  kind: sqlite',
      `  path: ${o.storePath}`,
      'decider:',
      `  policy: ${o.policy}`,
      '  tickMs: 1000',
      'executor:',
      '  leaseMs: 5000',
      `  dryRunJournalDir: ${o.journals}`,
      'api:',
      '  port: 0',
      '',
    ].join('\n'),
  );
  return file;
}

function countByType(store: SqliteEventStore): Record<string, number> {
  const rows = store.database.prepare('SELECT type, COUNT(*) AS n FROM events GROUP BY type').all() as Array<{
    type: string;
    n: number;
  }>;
  return Object.fromEntries(rows.map((r) => [r.type, r.n]));
}

async function eventsOf<T extends RecordedEvent['type']>(
  store: SqliteEventStore,
  type: T,
): Promise<Array<Extract<RecordedEvent, { type: T }>>> {
  return (await store.readAll({ types: [type] })) as Array<Extract<RecordedEvent, { type: T }>>;
}

/** What is left undone: counts, and the approved actions without an outcome with their claims. */
async function stuck(store: SqliteEventStore): Promise<string> {
  const outcomes = new Set(
    (await store.readAll({ types: ['ActionExecuted', 'ActionFailed'] })).map(
      (e) => (e.data as { actionId: string }).actionId,
    ),
  );
  const claims = new Map<string, string[]>();
  for (const c of await eventsOf(store, 'ExecutionClaimed'))
    claims.set(c.data.actionId, [
      ...(claims.get(c.data.actionId) ?? []),
      `${c.data.executor}#${c.data.attempt}`,
    ]);
  const open = (await eventsOf(store, 'ActionApproved'))
    .filter((a) => a.data.final && !outcomes.has(a.data.actionId))
    .map((a) => `${a.data.actionId} claims=[${claims.get(a.data.actionId) ?? []}]`);
  return `${JSON.stringify(countByType(store))}; ${open.length} approved without an outcome: ${open.slice(0, 10).join('; ')}`;
}

async function allActions(api: { url: string; token: string }): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  let cursor: string | null = null;
  do {
    const q: string = `limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const r = await fetch(`${api.url}/v1/actions?${q}`, {
      headers: { authorization: `Bearer ${api.token}` },
    });
    if (r.status !== 200) throw new Error(`GET /v1/actions: ${r.status} ${await r.text()}`);
    const page = (await r.json()) as { items: Array<{ id: string }>; nextCursor: string | null };
    for (const a of page.items) out.set(a.id, a);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

const journalApplies = (path: string): number => {
  try {
    return readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"phase":"apply"')).length;
  } catch {
    return 0;
  }
};

describe('scale-out: 2 deciders, 2 executors, 2 projectors and ingest as processes over Kafka and one SQLite file', () => {
  const root = mkdtempSync(join(tmpdir(), 'tq-e2e-scale-'));
  const procs: CliServe[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => stopCli(p)));
    rmSync(root, { recursive: true, force: true });
  });

  it('loses nothing, decides and acts once, across a SIGKILLed decider and executor', async () => {
    const t0 = Date.now();
    const [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
    const run = uniqueName('e2e-scale');
    const raw = `${run}.raw.ocsf`;
    const detections = `${run}.detections`;
    const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-e2e-scale' });
    await ensureTopics(kafka, [raw], { partitions: 3 });
    await ensureTopics(kafka, [detections, `${run}.dlq`], { partitions: PARTITIONS });

    const storePath = join(root, 'events.db');
    const journals = join(root, 'journals');
    mkdirSync(journals, { recursive: true });
    const config = writeConfig(root, {
      bootstrap,
      registryUrl,
      run,
      raw,
      storePath,
      policy: writePolicy(root),
      journals,
    });
    const start = (name: string, service: 'ingest' | 'decider' | 'executor' | 'projector', env = {}) => {
      const dataDir = join(root, name);
      mkdirSync(dataDir, { recursive: true });
      const p = startCliServe(name, service, config, { TOURNIQUET_DATA_DIR: dataDir, ...env });
      procs.push(p);
      return p;
    };

    // deciders first: both must hold partitions before anything flows
    const deciderA = start('decider-a', 'decider');
    const deciderB = start('decider-b', 'decider');
    const executorA = start('executor-a', 'executor', { TOURNIQUET_EXECUTOR_ID: 'executor-a' });
    const executorB = start('executor-b', 'executor', { TOURNIQUET_EXECUTOR_ID: 'executor-b' });
    const projectorA = start('projector-a', 'projector');
    const projectorB = start('projector-b', 'projector');
    const ingest = start('ingest', 'ingest');
    await Promise.all(
      [deciderA, deciderB, executorA, executorB, projectorA, projectorB, ingest].map((p) => serving(p)),
    );
    await waitFor(
      () => {
        const a = deciderA.assignment(detections);
        const b = deciderB.assignment(detections);
        return (
          a.length > 0 &&
          b.length > 0 &&
          new Set([...a, ...b]).size === PARTITIONS &&
          a.length + b.length === PARTITIONS
        );
      },
      90_000,
      `both deciders to hold partitions (A: ${deciderA.assignment(detections)}, B: ${deciderB.assignment(detections)})`,
    );
    const heldBeforeKill = { a: deciderA.assignment(detections), b: deciderB.assignment(detections) };
    const [apiA, apiB] = await Promise.all([apiOf(projectorA), apiOf(projectorB)]);
    const started = Date.now();

    const store = new SqliteEventStore({ path: storePath });
    const producer: Producer = kafka.producer();
    await producer.connect();
    const baseMs = Date.now() - 30 * 60_000;
    let killed:
      | {
          at: number;
          received: number;
          executed: number;
          position: number;
          appliesB: number;
          openClaimsOfB: number;
        }
      | undefined;
    try {
      const produce = async (from: number, to: number, pauseMs: number) => {
        for (let i = from; i < to; i += 100) {
          await producer.send({
            topic: raw,
            messages: Array.from({ length: Math.min(100, to - i) }, (_, j) => ({
              value: JSON.stringify(rawRecord(run, i + j, baseMs)),
            })),
          });
          if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        }
      };
      // The first half at once, so that work is in flight when B's processes die: decider B once a fifth
      // of the stream is decided; executor B, while the second half flows, once it has carried out a few
      // actions, preferably at a moment it holds a claim without an outcome (left for the survivor).
      await produce(0, N / 2, 0);
      let deciderKilledAt = -1;
      await waitFor(
        () => {
          const received = countByType(store).DetectionReceived ?? 0;
          if (received < N / 5) return false;
          deciderB.child.kill('SIGKILL');
          deciderKilledAt = received;
          return true;
        },
        60_000,
        'a fifth of the detections decided',
        2,
      );
      const secondHalf = produce(N / 2, N, 50);
      const openClaimsOfB = store.database.prepare(
        `SELECT COUNT(*) AS n FROM events c WHERE c.type = 'ExecutionClaimed' AND json_extract(c.data, '$.executor') = 'executor-b'
         AND NOT EXISTS (SELECT 1 FROM events o WHERE o.stream = c.stream AND o.type IN ('ActionExecuted', 'ActionFailed'))`,
      );
      let executorKilledAt = -1;
      let readySince = 0;
      await waitFor(
        () => {
          if (journalApplies(join(journals, 'dry-run-executor-b.jsonl')) < 3) return false;
          readySince ||= Date.now();
          const open = (openClaimsOfB.get() as { n: number }).n;
          if (open === 0 && Date.now() - readySince < 5000) return false;
          executorB.child.kill('SIGKILL');
          executorKilledAt = countByType(store).ActionExecuted ?? 0;
          return true;
        },
        60_000,
        'executor B to carry out some actions',
        2,
      );
      await Promise.all([deciderB.exited, executorB.exited]);
      {
        const outcomes = new Set(
          (await store.readAll({ types: ['ActionExecuted', 'ActionFailed'] })).map(
            (e) => (e.data as { actionId: string }).actionId,
          ),
        );
        const claimsOfB = (await eventsOf(store, 'ExecutionClaimed')).filter(
          (c) => c.data.executor === 'executor-b',
        );
        killed = {
          at: Date.now(),
          received: deciderKilledAt,
          executed: executorKilledAt,
          position: await store.headPosition(),
          appliesB: journalApplies(join(journals, 'dry-run-executor-b.jsonl')),
          openClaimsOfB: claimsOfB.filter((c) => !outcomes.has(c.data.actionId)).length,
        };
      }
      await secondHalf;
      expect(killed).toBeDefined();
      expect(killed!.received).toBeLessThan(N);

      // quiet: every detection decided, the decider group committed to the end, every approval acted on
      await waitFor(
        () => deciderA.assignment(detections).length === PARTITIONS,
        60_000,
        'A to take over all partitions',
      );
      await waitFor(
        () => (countByType(store).DetectionReceived ?? 0) >= N,
        120_000,
        `all ${N} detections decided (${JSON.stringify(countByType(store))})`,
        250,
      );
      const admin = kafka.admin();
      await admin.connect();
      await waitFor(
        async () => (await groupCaughtUp(admin, `${run}.decider`, detections)).done,
        60_000,
        'the decider group to commit to the end',
      );
      await waitFor(
        async () => (await groupCaughtUp(admin, `${run}.ingest`, raw)).done,
        60_000,
        'the ingest group to commit to the end',
      );
      await admin.disconnect();
      await waitFor(
        () => {
          const c = countByType(store);
          return (
            (c.ActionApproved ?? 0) > 0 &&
            (c.ActionExecuted ?? 0) + (c.ActionFailed ?? 0) >= (c.ActionApproved ?? 0)
          );
        },
        60_000,
        'every approved action executed',
        250,
      ).catch(async (e: Error) => {
        throw new Error(`${e.message}: ${await stuck(store)}`);
      });
      // and verified (an executed action whose executor died before verifying is verified by the survivor)
      await waitFor(
        () => {
          const c = countByType(store);
          return (c.ActionVerified ?? 0) >= (c.ActionExecuted ?? 0);
        },
        30_000,
        'every executed action verified',
        250,
      ).catch(() => undefined); // asserted below, by action id
      await new Promise((r) => setTimeout(r, 1500)); // room for a late duplicate to show up
      const elapsed = Date.now() - started;

      // --- no loss: every produced detection has exactly one DetectionReceived
      const received = (await eventsOf(store, 'DetectionReceived')).map((e) => e.data.detection.id);
      const perDetection = new Map<string, number>();
      for (const id of received) perDetection.set(id, (perDetection.get(id) ?? 0) + 1);
      const missing = Array.from({ length: N }, (_, n) => detectionId(run, n)).filter(
        (id) => !perDetection.has(id),
      );
      expect(missing).toEqual([]);
      expect([...perDetection].filter(([, c]) => c > 1)).toEqual([]);
      expect(received).toHaveLength(N);

      // --- no duplicate decision: one ActionProposed per identity, case, rule and stage
      const proposals = await eventsOf(store, 'ActionProposed');
      const perDecision = new Map<string, number>();
      for (const p of proposals) {
        const k = `${identityKey(p.data.identity)}|${p.data.caseId}|${p.data.ruleId}|${p.data.stage}`;
        perDecision.set(k, (perDecision.get(k) ?? 0) + 1);
      }
      expect([...perDecision].filter(([, c]) => c > 1)).toEqual([]);
      const identitiesActedOn = new Set(proposals.map((p) => identityKey(p.data.identity)));
      expect(identitiesActedOn.size).toBe(IDENTITIES);

      // --- no duplicate effect: one ActionExecuted per approved action, one provider effect per action
      const approved = new Set(
        (await eventsOf(store, 'ActionApproved')).filter((e) => e.data.final).map((e) => e.data.actionId),
      );
      const executed = new Map<string, number>();
      for (const e of await eventsOf(store, 'ActionExecuted'))
        executed.set(e.data.actionId, (executed.get(e.data.actionId) ?? 0) + 1);
      expect(await eventsOf(store, 'ActionFailed')).toEqual([]);
      expect(approved.size).toBeGreaterThanOrEqual(IDENTITIES); // every identity had an automatic action
      expect([...executed.keys()].sort()).toEqual([...approved].sort());
      expect([...executed].filter(([, c]) => c !== 1)).toEqual([]);
      const verified = new Set((await eventsOf(store, 'ActionVerified')).map((e) => e.data.actionId));
      expect(
        [...executed.keys()].filter((id) => !verified.has(id)),
        'executed actions nobody verified',
      ).toEqual([]);
      const effects = new Map<string, number>();
      const perExecutor: Record<string, number> = {};
      for (const id of ['executor-a', 'executor-b']) {
        const journal = new DryRunProvider({ journalPath: join(journals, `dry-run-${id}.jsonl`) });
        let n = 0;
        for (const [actionId, c] of journal.effectsByAction()) {
          effects.set(actionId, (effects.get(actionId) ?? 0) + c);
          n += c;
        }
        perExecutor[id] = n;
      }
      expect([...effects.keys()].sort()).toEqual([...approved].sort());
      expect([...effects].filter(([, c]) => c !== 1)).toEqual([]);

      // --- the work was shared, and the survivors finished it
      expect(heldBeforeKill.a.length).toBeGreaterThan(0);
      expect(heldBeforeKill.b.length).toBeGreaterThan(0);
      expect(perExecutor['executor-a']).toBeGreaterThan(0);
      expect(perExecutor['executor-b']).toBeGreaterThan(0);
      const claims = await eventsOf(store, 'ExecutionClaimed');
      const takeovers = claims.filter((c) => c.data.attempt > 1 && c.data.executor === 'executor-a').length;
      const reconciled = (await eventsOf(store, 'ActionExecuted')).filter((e) => e.data.reconciled).length;
      expect(takeovers).toBeGreaterThanOrEqual(killed!.openClaimsOfB);
      const afterKill = (
        await store.readAll({ after: killed!.position, types: ['DetectionReceived', 'ActionExecuted'] })
      ).length;
      expect(afterKill).toBeGreaterThan(0);
      expect(deciderA.child.exitCode).toBeNull();
      expect(executorA.child.exitCode).toBeNull();

      // --- both projectors show the same actions, and all of them
      const [viewA, viewB] = await waitFor(
        async () => {
          const [a, b] = await Promise.all([allActions(apiA), allActions(apiB)]);
          return a.size === proposals.length && b.size === proposals.length ? [a, b] : undefined;
        },
        60_000,
        'both projectors to show every action',
        500,
      );
      expect([...viewB.keys()].sort()).toEqual([...viewA.keys()].sort());
      for (const [id, a] of viewA) expect(viewB.get(id), id).toEqual(a);
      const statuses = (v: Map<string, unknown>) => {
        const s: Record<string, number> = {};
        for (const a of v.values()) {
          const st = (a as { status: string }).status;
          s[st] = (s[st] ?? 0) + 1;
        }
        return s;
      };
      expect(statuses(viewA).executed).toBe(approved.size);

      console.log(
        `[scale-out] ${N} detections, ${IDENTITIES} identities, ${proposals.length} proposals, ${approved.size} approved and executed ` +
          `(effects: ${JSON.stringify(perExecutor)}; claims of executor-b open at the kill: ${killed!.openClaimsOfB}, taken over by executor-a: ${takeovers}, reconciled without a second call: ${reconciled}); partitions before the kill A=${heldBeforeKill.a} B=${heldBeforeKill.b}; ` +
          `killed decider-b at ${killed!.received}/${N} detections decided, executor-b at ${killed!.executed} actions executed; flow to quiet ${(elapsed / 1000).toFixed(1)} s; ` +
          `total ${((Date.now() - t0) / 1000).toFixed(1)} s; projector statuses ${JSON.stringify(statuses(viewA))}`,
      );
    } finally {
      await producer.disconnect();
      await store.close();
    }
  }, 240_000);
});

// ---------------------------------------------------------------------------------------------------
// Decider throughput per instance: 1 vs 2 `serve decider` processes draining the same backlog.

const MEASURE = process.env.TQ_MEASURE_DECIDERS === '1';

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
if (!MEASURE)
  console.warn('[scale-out.e2e] decider throughput measurement skipped: set TQ_MEASURE_DECIDERS=1 to run it');

describe.skipIf(!MEASURE)('decider throughput, 1 vs 2 processes (TQ_MEASURE_DECIDERS=1)', () => {
  const root = mkdtempSync(join(tmpdir(), 'tq-e2e-measure-'));
  const procs: CliServe[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => stopCli(p)));
    rmSync(root, { recursive: true, force: true });
  });

  it('drains a backlog of detections with a balanced group', async () => {
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
    console.log(
      `[measure] load average ${readFileSync('/proc/loadavg', 'utf8').trim()}\n${results.join('\n')}`,
    );
  }, 1_200_000);
});
