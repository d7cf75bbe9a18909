import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadDefaultPolicy } from '../services/decider/policy/load.ts';
import { readHistory, withoutConflictingDetections } from './history.ts';
import { replayHistory } from './replay.ts';

const line = (id: string, identity: string, patch: Record<string, unknown> = {}) =>
  JSON.stringify({
    type: 'detection',
    id,
    source: 'splunk',
    kind: 'known_compromise',
    confidence: 0.97,
    severity: 'critical',
    identity: { provider: 'okta', id: identity, type: 'human' },
    occurredAt: '2026-03-01T10:00:00.000Z',
    ...patch,
  });

describe('replay refuses conflicting duplicates as the live system does', () => {
  it('drops a source + id taken by another identity or other content, keeps re-deliveries, and counts them', async () => {
    const text = [
      line('k-1', 'alice'),
      line('k-1', 'mallory', { occurredAt: '2026-03-01T10:01:00.000Z' }),
      line('k-1', 'alice', { occurredAt: '2026-03-01T10:02:00.000Z' }),
      line('k-1', 'alice'),
      line('k-2', 'bob'),
    ].join('\n');
    const history = await readHistory(Readable.from([text]));
    expect(history.conflictsRemoved).toBe(2);
    expect(history.conflicts).toEqual([
      { source: 'splunk', id: 'k-1', reason: 'other_identity' },
      { source: 'splunk', id: 'k-1', reason: 'different_content' },
    ]);
    const ids = history.records.flatMap((r) =>
      r.type === 'detection' ? [`${r.detection.identity.id}:${r.detection.id}`] : [],
    );
    expect(ids).toEqual(['alice:k-1', 'bob:k-2']); // the re-delivery is removed as a repeat
    expect(withoutConflictingDetections(history)).toBe(history);
    const run = replayHistory(history, loadDefaultPolicy());
    expect(run.conflicts).toBe(2);
    expect(run.detections).toBe(2);
    expect([...run.firstDetectionMs.keys()].sort()).toEqual(['okta:alice', 'okta:bob']);
  });
});
