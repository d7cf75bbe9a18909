import fc from 'fast-check';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { javaCompatiblePartition } from './platformatic.ts';

describe('javaCompatiblePartition', () => {
  it('puts every key on the partition kafkajs (and the Java client) would', () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 120 }), fc.integer({ min: 1, max: 64 }), (key, n) => {
        const partitionMetadata = Array.from({ length: n }, (_, partitionId) => ({
          partitionId,
          leader: 1,
          partitionErrorCode: 0,
          replicas: [1],
          isr: [1],
        }));
        const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } });
        expect(javaCompatiblePartition(Buffer.from(key)) % n).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('spreads unkeyed messages over the partitions', () => {
    const seen = new Set(Array.from({ length: 12 }, () => javaCompatiblePartition(undefined) % 6));
    expect(seen.size).toBe(6);
  });
});
