/**
 * For any input the boundary accepts, the embedded store keeps exactly what it hashed: `audit
 * verify` passes and a read gives back the same event. Inputs come from hostile generators (lone
 * surrogates, NUL, astral text, deep and wide JSON, extreme numbers); what the boundary refuses
 * never reaches the store, and the store itself refuses envelope text it could not keep as hashed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { verifyChainDb } from '../../platform/eventstore/chain-verify.ts';
import { detectionWithRaw } from '../../platform/eventstore/raw-records.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { safeParseDetection } from '../../schemas/detection.ts';
import { hostileDetection, receivedEvent } from '../support/hostile-input.ts';

describe('stored as hashed (SQLite)', () => {
  it('every accepted detection verifies and reads back unchanged', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    let accepted = 0;
    let refused = 0;
    try {
      await fc.assert(
        fc.asyncProperty(hostileDetection(), async (input) => {
          const r = safeParseDetection(input);
          if (!r.success) {
            refused += 1;
            return;
          }
          accepted += 1;
          const e = receivedEvent(r.data);
          const holder = await store.findDetection(r.data.source, r.data.id);
          if (holder) {
            // source + id is unique across the store, whatever identity it names (the same event id
            // again is an idempotent retry, answered from what is stored)
            if (holder.id !== e.id)
              await expect(store.append(e.stream, [e], 'any')).rejects.toMatchObject({
                code: 'DUPLICATE_CONFLICT',
              });
            return;
          }
          await store.append(e.stream, [e], 'any');
          const back = (await store.readStream(e.stream)).find((s) => s.id === e.id);
          expect(back?.stream).toBe(e.stream);
          // the raw record is kept apart (raw-records.ts), chained by its digest, and reads back whole
          expect(back?.type).toBe('DetectionReceived');
          if (back?.type !== 'DetectionReceived') return;
          expect('raw' in back.data.detection).toBe(false);
          expect(back.data.rawRecord !== undefined).toBe(r.data.raw !== undefined);
          expect({ detection: await detectionWithRaw(store, back.data) }).toEqual(
            JSON.parse(JSON.stringify(e.data)),
          );
        }),
        { numRuns: 600 },
      );
      const verdict = verifyChainDb(store.database);
      expect(verdict.firstBad).toBeUndefined();
      expect(verdict.ok).toBe(true);
      expect(verdict.checked).toBeGreaterThan(50);
      // the generators reach both sides of the boundary
      expect(accepted).toBeGreaterThan(50);
      expect(refused).toBeGreaterThan(50);
    } finally {
      await store.close();
    }
  });

  it('refuses, before writing, an envelope it could not store as hashed', async () => {
    const store = new SqliteEventStore({ path: ':memory:' });
    const e = receivedEvent({
      id: 'x',
      source: 's',
      identity: { provider: 'okta', id: 'a\ud800' },
      occurredAt: '2026-01-01T00:00:00.000Z',
    });
    await expect(store.append(e.stream, [e], 'any')).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    expect(await store.headPosition()).toBe(0);
    await store.close();
  });
});
