import { describe, expect, it } from 'vitest';
import {
  detectionInput,
  identityRef,
  MINUTE,
  proposals,
  runCore,
  T0,
} from '../../../test/support/decider-testkit.ts';

// The default policy's stolen-token rule: impossible_travel / anomalous_token_use ≥ 0.8, twice within 1h, humans.
const alice = identityRef('alice');

describe('evidence windows when detections arrive out of event-time order', () => {
  it('counts an earlier detection that arrives after a later one (Kafka partitions, SIEM batches)', () => {
    const events = runCore([
      detectionInput({
        identity: alice,
        kind: 'impossible_travel',
        confidence: 0.82,
        atMs: T0,
        occurredAtMs: T0 + 10 * MINUTE,
      }),
      detectionInput({
        identity: alice,
        kind: 'impossible_travel',
        confidence: 0.82,
        atMs: T0 + 1000,
        occurredAtMs: T0,
      }),
    ]);
    const p = proposals(events);
    expect(p.map((x) => [x.ruleId, x.action, x.detectionIds.length])).toEqual([
      ['stolen-token', 'revoke_tokens', 2],
    ]);
  });

  it('still needs both inside one window: two detections 61 minutes apart, in either arrival order, fire nothing', () => {
    for (const [first, second] of [
      [0, 61 * MINUTE],
      [61 * MINUTE, 0],
    ] as const) {
      const events = runCore([
        detectionInput({
          identity: alice,
          kind: 'anomalous_token_use',
          confidence: 0.9,
          atMs: T0,
          occurredAtMs: T0 + first,
        }),
        detectionInput({
          identity: alice,
          kind: 'anomalous_token_use',
          confidence: 0.9,
          atMs: T0 + 1000,
          occurredAtMs: T0 + second,
        }),
      ]);
      expect(proposals(events).filter((x) => x.ruleId === 'stolen-token')).toEqual([]);
    }
  });
});
