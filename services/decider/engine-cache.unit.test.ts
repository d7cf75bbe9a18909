import { describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { DeciderEngine } from './engine.ts';
import { loadDefaultPolicy } from './policy/load.ts';

const detection = (identity: string, n: number) => ({
  type: 'detection' as const,
  at: new Date(Date.UTC(2026, 10, 1, 8, 0, n)).toISOString(),
  detection: {
    id: `d-${identity}-${n}`,
    source: 'okta',
    kind: 'impossible_travel' as const,
    confidence: 0.82,
    severity: 'high' as const,
    identity: { provider: 'okta', id: identity, type: 'human' as const },
    occurredAt: new Date(Date.UTC(2026, 10, 1, 8, 0, n)).toISOString(),
    evidence: {},
  },
});

describe('decider engine state cache', () => {
  it('stays within its bound and decides the same after an identity was dropped and re-read', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    const engine = new DeciderEngine({ store, policy: loadDefaultPolicy(), maxCachedIdentities: 2 });
    await engine.start();
    await engine.handle(detection('alice', 1));
    await engine.handle(detection('bob', 2));
    await engine.handle(detection('carol', 3)); // alice's state is dropped here
    expect(engine.cachedIdentities).toBeLessThanOrEqual(2);

    // alice again: the duplicate is still recognised, and the second detection completes the
    // stolen-token rule (count 2 within 1h) from evidence re-read from her stream.
    const dup = await engine.handle(detection('alice', 1));
    expect(dup.events).toEqual([]);
    const second = await engine.handle(detection('alice', 4));
    expect(second.events.map((e) => e.type)).toEqual([
      'DetectionReceived',
      'ActionProposed',
      'ActionApproved',
    ]);
    expect(engine.cachedIdentities).toBeLessThanOrEqual(2);
    await store.close();
  });

  it('drops a state not read lately before one read since it was loaded (second chance)', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    const reads: string[] = [];
    const readStream = store.readStream.bind(store);
    store.readStream = (stream, ...rest) => {
      reads.push(stream);
      return readStream(stream, ...rest);
    };
    const engine = new DeciderEngine({ store, policy: loadDefaultPolicy(), maxCachedIdentities: 2 });
    await engine.start();
    await engine.handle(detection('alice', 1));
    await engine.handle(detection('bob', 2));
    await engine.handle(detection('alice', 3)); // alice read again: bob is now the one not read lately
    await engine.handle(detection('carol', 4)); // over the bound: bob goes, not alice
    reads.length = 0;
    await engine.handle(detection('alice', 5));
    expect(reads).toEqual([]);
    await engine.handle(detection('bob', 6));
    expect(reads).toEqual(['identity-okta:bob']);
    expect(engine.cachedIdentities).toBeLessThanOrEqual(2);
    await store.close();
  });
});
