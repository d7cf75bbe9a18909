/**
 * Requests are atomic and `source` + `id` is unique across the system, on the whole embedded stack
 * (HTTP → in-process bus → decider → SQLite) and on the decider service as a Kafka consumer drives it.
 */
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InProcessBus } from '../../platform/bus/in-process.ts';
import { verifyChainDb } from '../../platform/eventstore/chain-verify.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { DETECTION_CONFLICTS_STREAM, type RecordedEvent } from '../../schemas/events.ts';
import { loadDefaultPolicy } from '../../services/decider/policy/load.ts';
import { DeciderService } from '../../services/decider/service.ts';
import { type EmbeddedHttp, embeddedHttp } from '../support/embedded-http.ts';

const det = (id: string, identity: string, patch: Record<string, unknown> = {}) => ({
  id,
  source: 'splunk',
  kind: 'known_compromise',
  confidence: 0.97,
  severity: 'critical',
  identity: { provider: 'okta', id: identity, type: 'human' },
  occurredAt: '2026-03-01T10:00:00.000Z',
  evidence: { ip: '203.0.113.7' },
  ...patch,
});

let env: EmbeddedHttp;
beforeEach(async () => {
  env = await embeddedHttp();
});
afterEach(async () => {
  await env.close();
});

const received = async () =>
  (await env.stack.store.readAll({ types: ['DetectionReceived'] })).map((e) => detectionOf(e).id);

const detectionOf = (e: RecordedEvent) => (e as RecordedEvent<'DetectionReceived'>).data.detection;

describe('atomic requests', () => {
  it('a failure injected after the first item’s events leaves the store as before; the same request then succeeds whole', async () => {
    const db = env.stack.store.database;
    // The second detection's row fails inside the transaction, after the first one's events
    // (DetectionReceived, CaseOpened, ActionProposed) were inserted.
    db.exec(`CREATE TRIGGER inject_failure BEFORE INSERT ON events
             WHEN NEW.type = 'DetectionReceived' AND NEW.data LIKE '%"id":"poison-2"%'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
    const head = await env.stack.store.headPosition();
    const batch = [det('good-1', 'alice'), det('poison-2', 'bob')];
    const failed = await env.post('/v1/detections', batch);
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(await env.stack.store.headPosition()).toBe(head);
    expect(await received()).toEqual([]);
    expect(env.verify().ok).toBe(true);

    db.exec('DROP TRIGGER inject_failure');
    const ok = await env.post('/v1/detections', batch);
    expect(ok.status).toBe(202);
    // not "duplicate": the failed attempt left nothing behind in the decider either
    expect(ok.json).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(await received()).toEqual(['good-1', 'poison-2']);
    await env.views();
    const cases = await env.get('/v1/cases');
    expect(cases.json.items).toHaveLength(2);
    expect(env.verify().ok).toBe(true);
  });

  it('a batch with one invalid item appends nothing', async () => {
    const r = await env.post('/v1/detections', [det('a-1', 'alice'), det('a-2', 'bob', { confidence: 7 })]);
    expect(r.status).toBe(400);
    expect(await received()).toEqual([]);
  });
});

describe('dedupe across the system', () => {
  it('the same content again is a duplicate', async () => {
    expect((await env.post('/v1/detections', det('k-1', 'alice'))).json).toMatchObject({ accepted: 1 });
    expect((await env.post('/v1/detections', det('k-1', 'alice'))).json).toMatchObject({
      accepted: 0,
      duplicates: 1,
    });
    expect(await received()).toEqual(['k-1']);
  });

  it('the same source + id for another identity is refused with 409 naming both, and recorded', async () => {
    await env.post('/v1/detections', det('k-1', 'alice'));
    const r = await env.post('/v1/detections', [det('k-2', 'carol'), det('k-1', 'mallory')]);
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({
      code: 'DUPLICATE_CONFLICT',
      source: 'splunk',
      id: 'k-1',
      reason: 'other_identity',
      recorded: { identity: { provider: 'okta', id: 'alice' } },
      refused: { identity: { provider: 'okta', id: 'mallory' } },
    });
    expect(r.json.error.message).toMatch(/okta:alice.*okta:mallory/);
    expect(await received()).toEqual(['k-1']); // k-2 went with the refused request
    const conflicts = await env.stack.store.readStream(DETECTION_CONFLICTS_STREAM);
    expect(conflicts.map((e) => [e.type, e.data])).toEqual([
      ['DetectionConflicted', expect.objectContaining({ id: 'k-1', reason: 'other_identity' })],
    ]);
    // visible to the auditor
    await env.views();
    const audit = await env.get('/v1/audit/events?type=DetectionConflicted');
    expect(audit.json.items).toHaveLength(1);
    expect(env.verify().ok).toBe(true);
  });

  it('the same source + id with other content (same identity) is refused, not dropped silently', async () => {
    await env.post('/v1/detections', det('k-1', 'alice'));
    const r = await env.post('/v1/detections', det('k-1', 'alice', { confidence: 0.1 }));
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ code: 'DUPLICATE_CONFLICT', reason: 'different_content' });
    const conflicts = await env.stack.store.readStream(DETECTION_CONFLICTS_STREAM);
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]!.data).toMatchObject({ refused: { detection: { confidence: 0.1 } } });
  });

  it('holds within one batch, across identities and within one identity', async () => {
    const across = await env.post('/v1/detections', [det('k-1', 'alice'), det('k-1', 'bob')]);
    expect(across.status).toBe(409);
    const within = await env.post('/v1/detections', [
      det('k-2', 'alice'),
      det('k-2', 'alice', { severity: 'low' }),
    ]);
    expect(within.status).toBe(409);
    expect(await received()).toEqual([]);
    const same = await env.post('/v1/detections', [det('k-3', 'alice'), det('k-3', 'alice')]);
    expect(same.json).toMatchObject({ accepted: 1, duplicates: 1 });
  });
});

describe('dedupe on the Kafka consumer path (batches are not refused whole)', () => {
  it('refuses only the conflicting detection, records it, and appends the rest in one transaction', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    const bus = new InProcessBus();
    const decider = new DeciderService({
      store,
      bus,
      policy: loadDefaultPolicy(),
      log: pino({ level: 'silent' }),
    });
    await decider.start();
    try {
      const at = '2026-03-01T10:00:01.000Z';
      const msg = (d: ReturnType<typeof det>) => ({
        key: `okta:${d.identity.id}`,
        value: { at, detection: d },
      });
      // @ts-expect-error the test's detections are literal objects of the schema's shape
      await decider.handleDetections([msg(det('k-1', 'alice'))]);
      const outcomes = await decider.handleDetections([
        // @ts-expect-error as above
        msg(det('k-2', 'bob')),
        // @ts-expect-error as above
        msg(det('k-1', 'mallory')),
        // @ts-expect-error as above
        msg(det('k-1', 'alice')),
      ]);
      expect(outcomes.map((o) => o.status)).toEqual(['accepted', 'conflict', 'duplicate']);
      const ids = (await store.readAll({ types: ['DetectionReceived'] })).map(
        (e) => detectionOf(e).identity.id,
      );
      expect(ids).toEqual(['alice', 'bob']);
      expect(await store.readStream(DETECTION_CONFLICTS_STREAM)).toHaveLength(1);
      expect(verifyChainDb(store.database).ok).toBe(true);
    } finally {
      await decider.stop();
      await bus.close();
      await store.close();
    }
  });
});
