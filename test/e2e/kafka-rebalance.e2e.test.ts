import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafka, ensureTopics } from '../../platform/bus/kafka.ts';
import { createKafkaBus } from '../../platform/bus/kafka-clients.ts';
import { TOPICS } from '../../platform/bus/port.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { identityKey, type NormalizedDetection } from '../../schemas/detection.ts';
import type { DetectionMessage } from '../../schemas/messages.ts';
import {
  E2E_KAFKA_CLIENTS,
  ensureKafka,
  ensureRegistry,
  groupCaughtUp,
  type ServeProcess,
  startServeProcess,
  stopServeProcess,
  uniqueName,
  waitFor,
} from '../support/kafka.ts';

const N = 3000;
const IDENTITIES = 300;

/** Per identity: a known compromise (revoke_sessions, auto) and stolen-token evidence (revoke_tokens, force_step_up). */
function detection(run: string, n: number): NormalizedDetection {
  const user = `user-${n % IDENTITIES}`;
  const round = Math.floor(n / IDENTITIES);
  const at = new Date(Date.UTC(2026, 10, 1, 8, 0, 0) + round * 60_000 + (n % IDENTITIES)).toISOString();
  return {
    id: `${run}-${n}`,
    source: 'e2e-rebalance',
    kind: round % 3 === 0 ? 'known_compromise' : 'anomalous_token_use',
    confidence: 0.95,
    severity: 'high',
    identity: { provider: 'okta', id: user, type: 'human' },
    occurredAt: at,
    evidence: { round },
  };
}

/**
 * Must show (b): two decider processes (`serve decider`) in one group over a 6-partition topic, sharing
 * one SQLite file. Both get partitions; one is SIGKILLed mid-stream; after the rebalance every detection
 * is decided exactly once: every produced detection has one DetectionReceived and no ActionProposed is
 * duplicated for the same identity, rule and stage.
 */
describe.each(E2E_KAFKA_CLIENTS)('two decider processes, one killed mid-stream (%s client)', (client) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-e2e-rebalance-'));
  const procs: ServeProcess[] = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => stopServeProcess(p)));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('decides every detection exactly once across a SIGKILL and the rebalance', async () => {
    const [bootstrap, registryUrl] = await Promise.all([ensureKafka(), ensureRegistry()]);
    const run = uniqueName('e2e-rebalance');
    const topic = `${run}.detections`;
    const group = `${run}.decider`;
    const kafka = createKafka({ brokers: [bootstrap], clientId: 'tq-e2e-rebalance' });
    await ensureTopics(kafka, [topic, `${run}.dlq`], { partitions: 6 });
    const storePath = join(dataDir, 'events.db');
    // the file holds most settings (paths relative to it); the environment overrides some
    const configFile = join(dataDir, 'tourniquet.yaml');
    writeFileSync(
      configFile,
      [
        'kafka:',
        `  brokers: [${bootstrap}]`,
        '  sessionTimeoutMs: 30000',
        '  heartbeatIntervalMs: 1000',
        '  maxBatch: 200',
        'schemaRegistry:',
        `  url: ${registryUrl}`,
        'topics:',
        `  detections: ${topic}`,
        `  deadLetters: ${run}.dlq`,
        'groups:',
        `  decider: ${group}`,
        'store:',
        '  dataDir: .',
        '  path: events.db',
        'decider:',
        '  tickMs: 1000',
        '',
      ].join('\n'),
    );
    const env = { TOURNIQUET_KAFKA_SESSION_TIMEOUT_MS: '6000', TOURNIQUET_KAFKA_CLIENT: client };
    const args = ['--config', configFile];
    const a = startServeProcess('decider', env, args);
    procs.push(a);
    await waitFor(
      () => a.assignment(topic).length === 6,
      60_000,
      `decider A to join (${a.output().slice(-2000)})`,
    );
    const b = startServeProcess('decider', env, args);
    procs.push(b);
    await waitFor(
      () => {
        const pa = a.assignment(topic);
        const pb = b.assignment(topic);
        return (
          pa.length > 0 && pb.length > 0 && new Set([...pa, ...pb]).size === 6 && pa.length + pb.length === 6
        );
      },
      60_000,
      `both deciders to hold partitions (A: ${a.assignment(topic)}, B: ${b.assignment(topic)})`,
    );
    const heldByB = b.assignment(topic);
    expect(heldByB.length).toBeGreaterThan(0);
    expect(a.assignment(topic).length).toBeGreaterThan(0);

    // the producer: ingest's side of the topic (Avro through the registry, keyed by identity)
    const bus = createKafkaBus(client, {
      brokers: [bootstrap],
      registryUrl,
      clientId: 'tq-e2e-rebalance-producer',
      topics: { [TOPICS.detections]: topic, [TOPICS.deadLetters]: `${run}.dlq` },
    });
    const store = new SqliteEventStore({ path: storePath });
    const received = async () => (await store.readAll({ types: ['DetectionReceived'] })).length;
    let killedAt = -1;
    try {
      for (let i = 0; i < N; i += 100) {
        const batch = Array.from({ length: 100 }, (_, j) => detection(run, i + j));
        await bus.publish<DetectionMessage>(
          TOPICS.detections,
          batch.map((d) => ({ key: identityKey(d.identity), value: { at: d.occurredAt, detection: d } })),
        );
        if (killedAt < 0 && i >= N / 3) {
          // B must have decided something before it dies: mid-stream, not before the stream
          await waitFor(async () => (await received()) > N / 6, 60_000, 'decisions before the kill');
          killedAt = await received();
          b.child.kill('SIGKILL');
          await b.exited;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(killedAt).toBeGreaterThan(0);
      expect(killedAt).toBeLessThan(N);

      // A takes over B's partitions after the session timeout and finishes the stream
      await waitFor(() => a.assignment(topic).length === 6, 60_000, 'A to take over all partitions');
      await waitFor(async () => (await received()) >= N, 120_000, `all ${N} detections decided`);
      const admin = kafka.admin();
      await admin.connect();
      await waitFor(
        async () => (await groupCaughtUp(admin, group, topic)).done,
        30_000,
        'the group to commit to the end',
      );
      await admin.disconnect();
      await new Promise((r) => setTimeout(r, 1000)); // room for a late duplicate to show up

      const detections = (await store.readAll({ types: ['DetectionReceived'] })).flatMap((e) =>
        e.type === 'DetectionReceived' ? [e.data.detection.id] : [],
      );
      expect(detections).toHaveLength(N);
      expect(new Set(detections).size).toBe(N);
      const ids = new Set(detections);
      for (let n = 0; n < N; n++) expect(ids.has(`${run}-${n}`), `detection ${n}`).toBe(true);

      const proposals = (await store.readAll({ types: ['ActionProposed'] })).flatMap((e) =>
        e.type === 'ActionProposed'
          ? [`${identityKey(e.data.identity)}|${e.data.ruleId}|${e.data.stage}`]
          : [],
      );
      expect(proposals.length).toBeGreaterThanOrEqual(IDENTITIES); // every identity had a known compromise
      const counts = new Map<string, number>();
      for (const p of proposals) counts.set(p, (counts.get(p) ?? 0) + 1);
      const duplicates = [...counts].filter(([, c]) => c > 1);
      expect(duplicates).toEqual([]);
      expect(a.child.exitCode).toBeNull(); // the survivor is alive and well
    } finally {
      await bus.close();
      await store.close();
    }
  }, 240_000);
});
