/**
 * Memory soak of the decider: N distinct identities (default 500,000), one detection each, through
 * the decider engine against a real SQLite store, with the identity cache bounded (default 50,000).
 * Prints the cache size and the process RSS as it goes and at the end: the cache never exceeds the
 * bound, and RSS levels off once the cache is full instead of growing with the identities seen.
 * A measurement, not a test (no assertion on timings):
 *   node --expose-gc --import tsx bench/identity-soak.ts [--identities 500000] [--bound 50000] [--concurrency 64]
 * `--bound 0` runs without a bound (the engine's cache then holds every identity), for comparison.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CoalescingEventStore } from '../platform/eventstore/coalescing.ts';
import { SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import { DeciderEngine } from '../services/decider/engine.ts';
import { loadDefaultPolicy } from '../services/decider/policy/load.ts';

const { values } = parseArgs({
  options: {
    identities: { type: 'string', default: '500000' },
    bound: { type: 'string', default: '50000' },
    concurrency: { type: 'string', default: '64' },
  },
});
const N = Number(values.identities);
const bound = Number(values.bound);
const concurrency = Number(values.concurrency);

const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);
const gc = (globalThis as { gc?: () => void }).gc;
function rss(): number {
  gc?.();
  return process.memoryUsage().rss;
}

const dir = mkdtempSync(join(tmpdir(), 'tq-soak-'));
const sqlite = new SqliteEventStore({ path: join(dir, 'events.db'), durability: 'normal' });
const store = new CoalescingEventStore(sqlite);
const engine = new DeciderEngine({
  store,
  policy: loadDefaultPolicy(),
  maxCachedIdentities: bound > 0 ? bound : Number.MAX_SAFE_INTEGER,
});
await engine.start();

const T0 = Date.UTC(2026, 11, 1, 0, 0, 0);
const startRss = rss();
let peakCache = 0;
let peakRss = startRss;
let next = 0;
const started = Date.now();
console.log(`identities ${N}, bound ${bound > 0 ? bound : 'none'}, start rss ${mb(startRss)} MB`);

async function worker(): Promise<void> {
  for (;;) {
    const i = next++;
    if (i >= N) return;
    const at = new Date(T0 + i * 10).toISOString();
    await engine.handle({
      type: 'detection',
      at,
      detection: {
        id: `soak-${i}`,
        source: 'okta',
        kind: 'impossible_travel',
        confidence: 0.3,
        severity: 'medium',
        identity: { provider: 'okta', id: `user-${i}@soak.example`, type: 'human' },
        occurredAt: at,
        evidence: { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` },
      },
    });
    peakCache = Math.max(peakCache, engine.cachedIdentities);
    if ((i + 1) % 50_000 === 0) {
      const r = rss();
      peakRss = Math.max(peakRss, r);
      console.log(
        `${i + 1} identities: cache ${engine.cachedIdentities}, rss ${mb(r)} MB, heap ${mb(process.memoryUsage().heapUsed)} MB, ${Math.round((i + 1) / ((Date.now() - started) / 1000))} detections/s`,
      );
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
const endRss = rss();
peakRss = Math.max(peakRss, endRss);
console.log(
  JSON.stringify({
    identities: N,
    bound: bound > 0 ? bound : null,
    peakCache,
    cacheAtEnd: engine.cachedIdentities,
    startRssMb: mb(startRss),
    peakRssMb: mb(peakRss),
    endRssMb: mb(endRss),
    endHeapMb: mb(process.memoryUsage().heapUsed),
    events: await store.headPosition(),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  }),
);
if (bound > 0 && peakCache > bound) {
  console.error(`the cache exceeded its bound: ${peakCache} > ${bound}`);
  process.exitCode = 1;
}
await store.close();
rmSync(dir, { recursive: true, force: true });
