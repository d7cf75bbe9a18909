/**
 * Why nothing happened, over generated worlds and policies: every detection that opens or joins a
 * case and leads to no automatic action records why exactly once (NoActionTaken when it opens the
 * case, its own DetectionReceived when it joins one), in that case; no other detection records a
 * reason.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../../../schemas/events.ts';
import { arbAnyPolicy, arbWorld, CoreRunner } from '../../../test/support/decider-testkit.ts';

const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 300) };

describe('why nothing happened: one record per detection that led to no automatic action', () => {
  it('records the reasons exactly once, in the case the detection opened or joined, and only then', () => {
    const seen = { opened: 0, joined: 0 };
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld({ maxInputs: 120 }), (policy, world) => {
        const runner = new CoreRunner({ policy, catalogue: world.catalogue });
        for (const input of world.inputs) {
          const events: NewEvent[] = runner.offer(input);
          const received = events.find((e) => e.type === 'DetectionReceived');
          const recorded = events.filter((e) => e.type === 'NoActionTaken');
          if (!received) {
            expect(recorded).toEqual([]);
            continue;
          }
          const opened = events.find((e) => e.type === 'CaseOpened');
          const caseId = opened ? opened.data.caseId : received.correlationId;
          const automatic = events.some(
            (e) => e.type === 'ActionApproved' && e.data.by.kind === 'policy' && e.data.final,
          );
          const carried = received.data.noAction;
          if (caseId === null || automatic) {
            expect(recorded).toEqual([]);
            expect(carried).toBeUndefined();
          } else if (opened) {
            expect(carried).toBeUndefined();
            expect(recorded).toHaveLength(1);
            expect(recorded[0]!.data).toMatchObject({ caseId, detectionId: received.data.detection.id });
            expect(recorded[0]!.data.reasons.length).toBeGreaterThan(0);
            seen.opened++;
          } else {
            expect(recorded).toEqual([]);
            expect(carried?.length ?? 0).toBeGreaterThan(0);
            seen.joined++;
          }
        }
      }),
      RUNS,
    );
    // Both situations do happen in the generated worlds.
    expect(seen.opened).toBeGreaterThan(RUNS.numRuns / 10);
    expect(seen.joined).toBeGreaterThan(RUNS.numRuns / 10);
  });
});
