/**
 * Decisions the engine makes concurrently (the pipeline decides identities side by side while
 * earlier ones are still being appended) must see each other in what spans identities: a burst
 * never spends a budget twice nor raises one storm per identity.
 */
import { describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { NewEvent } from '../../schemas/events.ts';
import { DeciderEngine } from './engine.ts';
import { loadDefaultPolicy } from './policy/load.ts';

const compromise = (n: number) => ({
  type: 'detection' as const,
  at: new Date(Date.UTC(2026, 10, 1, 8, 0, 0, n)).toISOString(),
  detection: {
    id: `ti-${n}`,
    source: 'threat-intel',
    kind: 'known_compromise' as const,
    confidence: 0.95,
    severity: 'high' as const,
    identity: { provider: 'okta', id: `user-${n}@example.com`, type: 'human' as const },
    occurredAt: new Date(Date.UTC(2026, 10, 1, 8, 0, 0, n)).toISOString(),
    evidence: {},
  },
});

async function burst(n: number, storm: boolean): Promise<NewEvent[]> {
  const base = loadDefaultPolicy();
  const policy = storm
    ? base
    : {
        ...base,
        policy: {
          ...base.policy,
          guards: { ...base.policy.guards, storm: { ...base.policy.guards.storm, enabled: false } },
        },
      };
  const store = new SqliteEventStore({ path: ':memory:' });
  const engine = new DeciderEngine({ store, policy });
  await engine.start();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => engine.handle(compromise(i))));
  await store.close();
  return results.flatMap((r) => r.events);
}

describe('decider engine under concurrent decisions', () => {
  it('spends the global budget once across a burst decided side by side', async () => {
    const events = await burst(120, false);
    const auto = events.filter((e) => e.type === 'ActionApproved' && e.data.by.kind === 'policy');
    expect(auto.length).toBe(50);
    expect(events.filter((e) => e.type === 'GuardTripped').length).toBeGreaterThan(0);
  });

  it('raises one storm for a burst and holds the rest under it', async () => {
    const events = await burst(120, true);
    const storms = events.filter((e) => e.type === 'StormDetected');
    expect(storms.length).toBe(1);
    const auto = events.filter((e) => e.type === 'ActionApproved' && e.data.by.kind === 'policy');
    expect(auto.length).toBeLessThan(10);
  });
});
