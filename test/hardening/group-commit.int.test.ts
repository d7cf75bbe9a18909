/**
 * Concurrent ingest requests share commits (group commit), and still each one is applied whole or
 * not at all: a request that fails — invalid, a conflicting duplicate, a fault injected inside the
 * transaction — fails alone, the requests written beside it land, and every detection answered 202
 * is in the store once the stack is closed.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { RecordedEvent } from '../../schemas/events.ts';
import { type EmbeddedHttp, embeddedHttp } from '../support/embedded-http.ts';

const det = (id: string, identity: string, patch: Record<string, unknown> = {}) => ({
  id,
  source: 'siem',
  kind: 'anomalous_token_use',
  confidence: 0.6,
  severity: 'medium',
  identity: { provider: 'okta', id: identity, type: 'human' },
  occurredAt: new Date().toISOString(),
  evidence: { ip: '203.0.113.7' },
  ...patch,
});

let env: EmbeddedHttp;
beforeEach(async () => {
  env = await embeddedHttp({ durability: 'full' });
});
afterEach(async () => {
  await env.close();
});

/** The detection ids the store holds, read from the file after the stack closed. */
async function storedAfterClose(): Promise<string[]> {
  await env.stack.close();
  const store = new SqliteEventStore({ path: join(env.dataDir, 'events.db') });
  try {
    return (await store.readAll({ types: ['DetectionReceived'] })).map(
      (e) => (e as RecordedEvent<'DetectionReceived'>).data.detection.id,
    );
  } finally {
    await store.close();
  }
}

describe('group commit over HTTP', () => {
  it('one bad request among many concurrent ones is refused whole; the others land', async () => {
    expect((await env.post('/v1/detections', det('held', 'alice'))).status).toBe(202);
    // a fault inside the transaction, for one detection only
    env.stack.store.database.exec(`CREATE TRIGGER inject_failure BEFORE INSERT ON events
      WHEN NEW.type = 'DetectionReceived' AND NEW.data LIKE '%"id":"poison"%'
      BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    const good = Array.from({ length: 30 }, (_, i) =>
      i % 3 === 0
        ? [det(`g${i}-a`, `user-${i}`), det(`g${i}-b`, `user-${i}`)]
        : [det(`g${i}`, `user-${i % 7}`)],
    );
    const bad = {
      conflict: [det('c-good', 'carol'), det('held', 'mallory')],
      invalid: [det('i-good', 'ivan'), det('i-bad', 'ivan', { confidence: 7 })],
      injected: [det('p-good', 'peggy'), det('poison', 'peggy')],
      sameKeyOtherContent: [det('g1', 'user-1', { confidence: 0.9 })],
    };
    const requests = [...good, ...Object.values(bad)];
    const answers = await Promise.all(requests.map((body) => env.post('/v1/detections', body)));
    const byBody = new Map(requests.map((body, i) => [body, answers[i]!]));

    for (const body of good) if (body !== good[1]) expect(byBody.get(body)!.status).toBe(202);
    expect(byBody.get(bad.conflict)!.status).toBe(409);
    expect(byBody.get(bad.invalid)!.status).toBe(400);
    expect(byBody.get(bad.injected)!.status).toBeGreaterThanOrEqual(500);
    // the same key with other content, sent beside the first copy: whichever is written first
    // holds the key, the other is refused; never both, never silently dropped
    const g1 = byBody.get(good[1]!)!;
    const other = byBody.get(bad.sameKeyOtherContent)!;
    expect([g1.status, other.status].sort()).toEqual([202, 409]);

    expect(env.verify().ok).toBe(true);
    const stored = await storedAfterClose();
    const acknowledged = requests
      .filter((body) => byBody.get(body)!.status === 202)
      .flatMap((body) => body.map((d) => d.id));
    expect(new Set(stored)).toEqual(new Set(['held', ...acknowledged]));
    expect(stored.length).toBe(new Set(stored).size); // nothing twice
    for (const refused of ['c-good', 'i-good', 'i-bad', 'p-good', 'poison'])
      expect(stored).not.toContain(refused);
  });

  it('every detection answered 202 under concurrent load is in the store after close', async () => {
    let n = 0;
    const acknowledged: string[] = [];
    const client = async () => {
      for (let k = 0; k < 15; k++) {
        const body = Array.from({ length: 1 + (k % 3) }, () => det(`load-${n++}`, `user-${n % 11}`));
        const r = await env.post('/v1/detections', body);
        expect(r.status).toBe(202);
        acknowledged.push(...body.map((d) => d.id));
      }
    };
    await Promise.all(Array.from({ length: 12 }, client));
    const stored = await storedAfterClose();
    expect(stored.slice().sort()).toEqual(acknowledged.slice().sort());
  });
});
