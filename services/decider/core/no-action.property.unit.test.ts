/**
 * Why nothing happened, recorded once per case while the reasons stay the same: over generated
 * worlds and policies, expanding each reference (DetectionReceived.noAction) into the NoActionTaken
 * it stands for gives, event for event, what a decider that records every detection's reasons in
 * full decides. So no detection's reasons are lost, and a reference always names the case's latest
 * NoActionTaken, whose reasons are the detection's own.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from '../../../schemas/events.ts';
import {
  arbAnyPolicy,
  arbWorld,
  type CoreOptions,
  CoreRunner,
  type KitInput,
} from '../../../test/support/decider-testkit.ts';

const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 300) };

/** A decider that never refers to earlier reasons: every decision records its own in full. */
class ReasonsInFull extends CoreRunner {
  override step(input: KitInput): NewEvent[] {
    for (const s of this.states.values()) if (s.openCase) s.openCase.lastNoAction = null;
    return super.step(input);
  }
}

/** Each input's decision (refused commands decide nothing). */
function decideAll(runner: CoreRunner, inputs: readonly KitInput[]): NewEvent[][] {
  return inputs.map((input) => runner.offer(input));
}

/**
 * Each decision with its reference replaced by the NoActionTaken it stands for (last in the
 * decision, where the decider records one), checking on the way that it names the latest
 * NoActionTaken of the detection's case.
 */
function expand(decisions: readonly NewEvent[][]): NewEvent[][] {
  const latest = new Map<string, Extract<NewEvent, { type: 'NoActionTaken' }>>();
  return decisions.map((events) => {
    const out: NewEvent[] = [];
    let stood: NewEvent | undefined;
    for (const e of events) {
      if (e.type === 'NoActionTaken') latest.set(e.data.caseId, e);
      if (e.type !== 'DetectionReceived' || !e.data.noAction) {
        out.push(e);
        continue;
      }
      const { noAction, ...rest } = e.data;
      const caseId = e.correlationId;
      expect(caseId, 'a reference is made only by a detection joining an open case').not.toBeNull();
      const recorded = latest.get(caseId!);
      expect(recorded?.id, "a reference names the case's latest NoActionTaken").toBe(noAction.asOf);
      expect(noAction.code).toBe(recorded!.data.reasons[0]!.code);
      out.push({ ...e, data: rest });
      stood = {
        ...recorded!,
        id: `${e.id}-no-action`,
        occurredAt: e.occurredAt,
        causationId: e.id,
        data: { ...recorded!.data, detectionId: e.data.detection.id },
      };
    }
    if (stood) out.push(stood);
    return out;
  });
}

const count = (decisions: readonly NewEvent[][]) => decisions.reduce((n, d) => n + d.length, 0);

describe('NoActionTaken recorded once per case while the reasons stay the same', () => {
  it('loses nothing: references expanded give what recording every detection in full gives', () => {
    let references = 0;
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld({ maxInputs: 120 }), (policy, world) => {
        const opts: CoreOptions = { policy, catalogue: world.catalogue };
        const compact = decideAll(new CoreRunner(opts), world.inputs);
        const full = decideAll(new ReasonsInFull(opts), world.inputs);
        expect(expand(compact)).toEqual(full);
        const saved = count(full) - count(compact);
        expect(saved).toBeGreaterThanOrEqual(0);
        references += saved;
      }),
      RUNS,
    );
    // The generated worlds do make references (the property is not met by never making one).
    expect(references).toBeGreaterThan(RUNS.numRuns);
  });

  it('refers to earlier reasons in a stream of weak detections on an open case', () => {
    // Not left to chance: a world where references certainly happen, so the property above is not
    // satisfied by never making one.
    const runner = new CoreRunner();
    const identity = { provider: 'okta', id: 'ann', type: 'human' as const };
    const t0 = Date.parse('2026-03-02T09:00:00.000Z');
    const inputs: KitInput[] = Array.from({ length: 10 }, (_, i) => ({
      type: 'detection',
      at: new Date(t0 + i * 60_000).toISOString(),
      detection: {
        id: `d-${i}`,
        source: 'okta',
        kind: 'other',
        confidence: 0.4,
        severity: 'low',
        identity,
        occurredAt: new Date(t0 + i * 60_000).toISOString(),
        evidence: {},
      },
    }));
    const decisions = decideAll(runner, inputs);
    const events = decisions.flat();
    expect(events.filter((e) => e.type === 'NoActionTaken')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'DetectionReceived' && e.data.noAction)).toHaveLength(9);
    expect(expand(decisions)).toEqual(decideAll(new ReasonsInFull(), inputs));
  });
});
