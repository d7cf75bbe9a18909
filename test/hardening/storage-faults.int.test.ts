/**
 * Storage faults told truthfully, over HTTP with the real decider: a full disk (a small tmpfs this
 * test mounts itself, as root) and a locked database answer 503
 * STORE_UNAVAILABLE with Retry-After; /readyz is false until a write succeeds again; a metric
 * counts the faults; every acknowledged detection is still there afterwards and the chain verifies.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessBus } from '../../platform/bus/in-process.ts';
import { verifyChainDb } from '../../platform/eventstore/chain-verify.ts';
import { storageFault } from '../../platform/eventstore/health.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { generateAuthConfig, issueLocalAdminToken } from '../../services/api/auth.ts';
import { buildApi } from '../../services/api/server.ts';
import { loadDefaultPolicy } from '../../services/decider/policy/load.ts';
import { DeciderService } from '../../services/decider/service.ts';
import { BusIngestGateway } from '../../services/ingest/gateway.ts';
import { Projector } from '../../services/projector/projector.ts';

const isRoot = process.getuid?.() === 0;

// biome-ignore lint/suspicious/noExplicitAny: bodies are checked by assertions, not by types
type Json = any;

interface Stack {
  store: SqliteEventStore;
  api: FastifyInstance;
  call(
    method: 'GET' | 'POST',
    url: string,
    body?: unknown,
  ): Promise<{ status: number; json: Json; text: string; headers: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** The embedded wiring (in-process bus, real decider, projector, API) over a store at `path`. */
async function stackAt(path: string, opts: { busyTimeoutMs?: number } = {}): Promise<Stack> {
  const store = new SqliteEventStore({ path, durability: 'full', ...opts });
  const bus = new InProcessBus();
  const log = pino({ level: 'silent' });
  const decider = new DeciderService({ store, bus, policy: loadDefaultPolicy(), log, wholeBatches: true });
  await decider.start();
  const projector = new Projector({ store, path: ':memory:' });
  await projector.start();
  const auth = generateAuthConfig();
  const api = await buildApi({
    store,
    projector,
    ingest: new BusIngestGateway(bus),
    decider,
    automation: decider,
    auth,
    log,
  });
  const admin = { authorization: `Bearer ${await issueLocalAdminToken(auth)}` };
  return {
    store,
    api,
    async call(method, url, body) {
      const res = await api.inject({
        method,
        url,
        headers: { ...admin, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      });
      let json: unknown;
      try {
        json = res.json();
      } catch {
        json = undefined;
      }
      return { status: res.statusCode, json, text: res.body, headers: res.headers };
    },
    async close() {
      await api.close();
      await decider.stop();
      await projector.close();
      await bus.close();
      await store.close();
    },
  };
}

const det = (id: string, blob = 0) => ({
  id,
  source: 'edr',
  kind: 'suspicious_api_use',
  confidence: 0.3,
  severity: 'low',
  identity: { provider: 'okta', id: `user-${id}`, type: 'human' },
  occurredAt: '2026-03-01T10:00:00.000Z',
  evidence: blob > 0 ? { blob: 'z'.repeat(blob) } : {},
});

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function mountTmpfs(sizeKiB: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'tq-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir]);
  cleanups.push(() => {
    execFileSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

async function expectUnavailable(
  s: Stack,
  r: Awaited<ReturnType<Stack['call']>>,
  codes: RegExp,
): Promise<void> {
  expect(r.status).toBe(503);
  expect(r.json.error).toMatchObject({ code: 'STORE_UNAVAILABLE', retriable: true });
  expect(r.json.error.cause).toMatch(codes);
  expect(r.headers['retry-after']).toBe('5');
  const ready = await s.call('GET', '/readyz');
  expect(ready.status).toBe(503);
  expect(ready.json).toMatchObject({ ready: false, writable: false });
  const metrics = await s.call('GET', '/metrics');
  expect(metrics.text).toMatch(/^tourniquet_store_writable 0$/m);
  expect(metrics.text).toMatch(/^tourniquet_store_faults_total\{code="SQLITE_[A-Z_]+"\} [1-9]/m);
}

async function expectRecovered(s: Stack, acknowledged: string[], next: string): Promise<void> {
  const ready = await s.call('GET', '/readyz');
  expect(ready.json).toMatchObject({ ready: true, writable: true });
  const r = await s.call('POST', '/v1/detections', det(next));
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  acknowledged.push(next);
  const stored = (await s.store.readAll({ types: ['DetectionReceived'] })).map(
    (e) => (e.data as { detection: { id: string } }).detection.id,
  );
  expect(stored.sort()).toEqual([...acknowledged].sort());
  expect(verifyChainDb(s.store.database).ok).toBe(true);
}

describe('storage faults', () => {
  it.skipIf(!isRoot)(
    'a full disk: 503 STORE_UNAVAILABLE, not ready until a write succeeds, nothing acknowledged lost',
    async () => {
      const dir = mountTmpfs(4 * 1024);
      const filler = join(dir, 'filler');
      writeFileSync(filler, Buffer.alloc(1536 * 1024)); // freed later, to let the store recover
      const path = join(dir, 'events.db');
      let s = await stackAt(path);
      cleanups.push(() => s.close());
      const acknowledged: string[] = [];
      let failed: Awaited<ReturnType<Stack['call']>> | undefined;
      for (let i = 0; i < 60 && !failed; i++) {
        const r = await s.call('POST', '/v1/detections', det(`d-${i}`, 200_000));
        if (r.status === 202) acknowledged.push(`d-${i}`);
        else failed = r;
      }
      expect(acknowledged.length).toBeGreaterThan(0);
      expect(failed).toBeDefined();
      await expectUnavailable(s, failed!, /^SQLITE_(FULL|IOERR)/);
      // still full: still not ready, and another write is refused the same way
      expect((await s.call('POST', '/v1/detections', det('more', 200_000))).status).toBe(503);
      rmSync(filler);
      await new Promise((r) => setTimeout(r, 1100)); // the readiness probe runs at most once a second
      await expectRecovered(s, acknowledged, 'after-1');
      // reopened from disk: everything acknowledged is there. (Closing checkpoints the WAL into the
      // database file, which needs room for both for a moment: the operator has added space by then.)
      execFileSync('mount', ['-o', 'remount,size=16m', dir]);
      await s.close();
      s = await stackAt(path);
      await expectRecovered(s, acknowledged, 'after-2');
    },
  );

  it('a database locked by another connection: 503 after the busy timeout, then recovery', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-locked-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'events.db');
    const s = await stackAt(path, { busyTimeoutMs: 200 });
    cleanups.push(() => s.close());
    expect((await s.call('POST', '/v1/detections', det('l-1'))).status).toBe(202);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    const failed = await s.call('POST', '/v1/detections', det('l-2'));
    await expectUnavailable(s, failed, /^SQLITE_BUSY/);
    other.exec('ROLLBACK');
    other.close();
    await new Promise((r) => setTimeout(r, 1100));
    await expectRecovered(s, ['l-1'], 'l-3');
  });

  it('maps storage error codes, and only those, to STORE_UNAVAILABLE', () => {
    for (const code of [
      'SQLITE_FULL',
      'SQLITE_IOERR_WRITE',
      'SQLITE_READONLY_DBMOVED',
      'SQLITE_BUSY',
      'SQLITE_CORRUPT',
      'SQLITE_NOTADB',
      'ENOSPC',
      'EROFS',
    ])
      expect(storageFault({ code }), code).toBeDefined();
    for (const code of [
      'SQLITE_CONSTRAINT_UNIQUE',
      'SQLITE_CONSTRAINT_TRIGGER',
      'SQLITE_ERROR',
      'ECONNRESET',
      undefined,
    ])
      expect(storageFault({ code }), String(code)).toBeUndefined();
  });
});
