import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainHash, GENESIS } from '../platform/eventstore/chain-hash.ts';
import { type Durability, SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import type { NewEvent } from '../schemas/events.ts';
import { guardDutyRecord, oktaRecord } from '../test/support/kafka.ts';

function event(stream: string, n: number): NewEvent {
  return {
    id: `${stream}-${n}`,
    type: 'DetectionReceived',
    stream,
    occurredAt: '2026-11-01T00:00:00.000Z',
    causationId: null,
    correlationId: null,
    schemaVersion: 1,
    data: {
      detection: {
        id: `d${n}`,
        source: 'bench',
        kind: 'anomalous_token_use',
        confidence: 0.8,
        severity: 'high',
        identity: { provider: 'okta', id: `user${n % 1000}`, type: 'human' },
        occurredAt: '2026-11-01T00:00:00.000Z',
        evidence: { ip: '203.0.113.7', country: 'NL' },
      },
    },
  };
}

async function measure(durability: Durability, batch: number, total: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'tq-bench-store-'));
  const store = new SqliteEventStore({ path: join(dir, 'e.db'), durability });
  const batches: NewEvent[][] = [];
  for (let i = 0; i < total / batch; i++) {
    const stream = `s${i % 500}`;
    batches.push(
      Array.from({ length: batch }, (_, j) => event(`${stream}`, i * batch + j)).map((e) => ({
        ...e,
        stream,
      })),
    );
  }
  const start = process.hrtime.bigint();
  for (const b of batches) await store.append(b[0]!.stream, b, 'any');
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return total / seconds;
}

function detectionOf(e: NewEvent) {
  if (e.type !== 'DetectionReceived') throw new Error('not a DetectionReceived');
  return e.data.detection;
}

/**
 * What the Kafka decider writes: per detection a DetectionReceived carrying the vendor's raw record
 * (~2.5 KB of JSON), and for every other one a CaseOpened and an ActionProposed too, to the identity's
 * stream (5,000 identities); the appends of a consumer batch go in as one appendMany of 800.
 */
async function measureDeciderShaped(
  durability: Durability,
  detections: number,
): Promise<{ eventsPerSecond: number; bytesPerEvent: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'tq-bench-store-'));
  const store = new SqliteEventStore({ path: join(dir, 'e.db'), durability });
  const raws = Array.from({ length: 64 }, (_, i) =>
    i % 2 ? oktaRecord('bench', i, `u${i}`, 'reported') : guardDutyRecord('bench', i, `role${i}`),
  );
  const appends = Array.from({ length: detections }, (_, n) => {
    const stream = `identity-okta:u${n % 5000}`;
    const base = { stream, occurredAt: '2026-11-01T00:00:00.000Z', schemaVersion: 1 };
    const received = {
      ...base,
      id: `det-${n.toString(16).padStart(16, '0')}-okta:${n}`,
      type: 'DetectionReceived',
      causationId: null,
      correlationId: null,
      data: { detection: { ...detectionOf(event(stream, n)), raw: raws[n % raws.length] } },
    } as NewEvent;
    if (n % 2 === 0) return { stream, events: [received] };
    const caseId = `case-${n}`;
    const opened = {
      ...base,
      id: `${caseId}-opened`,
      type: 'CaseOpened',
      causationId: received.id,
      correlationId: caseId,
      data: {
        caseId,
        identity: { provider: 'okta', id: `u${n % 5000}`, type: 'human' },
        detectionIds: [`d${n}`],
      },
    } as NewEvent;
    const proposed = {
      ...base,
      id: `act-${n}-1-proposed`,
      type: 'ActionProposed',
      causationId: received.id,
      correlationId: caseId,
      data: { actionId: `act-${n}-1`, caseId, note: 'x'.repeat(760) },
    } as unknown as NewEvent;
    return { stream, events: [received, opened, proposed] };
  });
  const events = appends.reduce((sum, a) => sum + a.events.length, 0);
  const start = process.hrtime.bigint();
  for (let i = 0; i < appends.length; i += 800) {
    await store.appendMany(
      appends
        .slice(i, i + 800)
        .map((a) => ({ stream: a.stream, events: a.events, expected: 'any' as const })),
    );
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const bytesPerEvent = storedBytes(store) / events;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return { eventsPerSecond: events / seconds, bytesPerEvent };
}

/** Bytes of stored event data and raw records (a store from before raw records were kept apart has none). */
function storedBytes(store: SqliteEventStore): number {
  const db = store.database;
  const data = db
    .prepare<[], { n: number }>('SELECT SUM(LENGTH(CAST(data AS BLOB))) AS n FROM events')
    .get()!.n;
  const hasRaw = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'raw_records'")
    .get();
  const raw = hasRaw
    ? (db
        .prepare<[], { n: number | null }>('SELECT SUM(LENGTH(CAST(body AS BLOB))) AS n FROM raw_records')
        .get()!.n ?? 0)
    : 0;
  return data + raw;
}

/**
 * The chain link alone over a decider-shaped DetectionReceived row carrying a raw record inline (the
 * size rows had before raw records were kept apart): format 1 (the data JSON-escaped inside an array)
 * against format 2 (a header, then the stored bytes), µs per link, same rows, same run.
 */
function measureChainLinks(): Record<string, number> {
  const raw = oktaRecord('bench', 1, 'u1', 'reported');
  const data = JSON.stringify({ detection: { ...detectionOf(event('identity-okta:u1', 1)), raw } });
  const row = {
    position: 1,
    id: 'det-0000000000000001-okta:1',
    stream: 'identity-okta:u1',
    revision: 0,
    type: 'DetectionReceived',
    occurred_at: '2026-11-01T00:00:00.000Z',
    recorded_at: '2026-11-01T00:00:00.001Z',
    causation_id: null,
    correlation_id: null,
    schema_version: 1,
    data,
  };
  const time = (link: number) => {
    let prev = GENESIS;
    const n = 50_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) prev = chainHash(prev, { ...row, position: i + 1, link });
    return Number(process.hrtime.bigint() - start) / 1e3 / n;
  };
  time(1);
  time(2); // warm both
  const v1 = time(1);
  const v2 = time(2);
  return {
    [`chain link, format 1, ${data.length}-byte data (µs/event)`]: v1,
    'chain link, format 2, same rows (µs/event)': v2,
  };
}

/** SQLite append throughput: single-event and batched appends, durable (FULL) and NORMAL. */
export async function benchStore(): Promise<Record<string, number>> {
  const results: Record<string, number> = {
    'store.append.single.full (events/s)': await measure('full', 1, 3000),
    'store.append.batch100.full (events/s)': await measure('full', 100, 200_000),
    'store.append.single.normal (events/s)': await measure('normal', 1, 20_000),
    'store.append.batch100.normal (events/s)': await measure('normal', 100, 200_000),
  };
  Object.assign(results, measureChainLinks());
  const shaped = await measureDeciderShaped('normal', 40_000);
  results['store.appendMany.deciderShaped.normal (events/s)'] = shaped.eventsPerSecond;
  results['store.appendMany.deciderShaped.normal (µs/event)'] = 1e6 / shaped.eventsPerSecond;
  results['store.appendMany.deciderShaped (stored bytes/event: data + raw records)'] = shaped.bytesPerEvent;
  return results;
}
