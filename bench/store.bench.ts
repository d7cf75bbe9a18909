import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Durability, SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import type { NewEvent } from '../schemas/events.ts';

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

/** SQLite append throughput: single-event and batched appends, durable (FULL) and NORMAL. */
export async function benchStore(): Promise<Record<string, number>> {
  const results = {
    'store.append.single.full (events/s)': await measure('full', 1, 3000),
    'store.append.batch100.full (events/s)': await measure('full', 100, 200_000),
    'store.append.single.normal (events/s)': await measure('normal', 1, 20_000),
    'store.append.batch100.normal (events/s)': await measure('normal', 100, 200_000),
  };
  return results;
}
