/**
 * Why nothing happened, as the case view, its timeline and explain show it: the reasons of a
 * detection that opened a case (NoActionTaken) and of one that joined it (carried on its
 * DetectionReceived) read alike, and a store written before detections carried them (a
 * NoActionTaken for every such detection) reads the same.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { NewEvent } from '../../schemas/events.ts';
import { MINUTE, ofType, Scenario } from '../../test/support/decider-testkit.ts';
import { explainAction } from './explain.ts';
import { Projector } from './projector.ts';
import { getCase } from './queries.ts';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanup.length) await cleanup.pop()!();
});

/**
 * The same decisions as a store written before detections carried their reasons holds them: the
 * reasons of a detection that joined a case in a NoActionTaken of its own, last in its decision.
 */
function oneRecordPerDetection(decisions: NewEvent[][]): NewEvent[][] {
  return decisions.map((events) =>
    events
      .flatMap((e): NewEvent[] => {
        if (e.type !== 'DetectionReceived' || !e.data.noAction) return [e];
        const { noAction: reasons, ...data } = e.data;
        return [{ ...e, data }];
      })
      .concat(
        events.flatMap((e): NewEvent[] =>
          e.type === 'DetectionReceived' && e.data.noAction
            ? [
                {
                  ...e,
                  id: `${e.id}-no-action`,
                  type: 'NoActionTaken',
                  causationId: e.id,
                  data: {
                    caseId: e.correlationId!,
                    identity: e.data.detection.identity,
                    detectionId: e.data.detection.id,
                    reasons: e.data.noAction,
                  },
                },
              ]
            : [],
        ),
      ),
  );
}

/** Weak detections on ann's open case, then one an analyst must review (so there is an action to explain). */
function story(s: Scenario): { decisions: NewEvent[][]; actionId: string } {
  const decisions: NewEvent[][] = [];
  for (const [kind, confidence] of [
    ['other', 0.4], // opens the case: no rule acts on it
    ['other', 0.45], // the same reasons
    ['other', 0.1], // below the case floor
    ['other', 0.2], // the same reasons
    ['other', 0.25], // the same reasons
    ['credential_abuse', 0.55], // analyst-review proposes, an analyst decides
  ] as const) {
    decisions.push(s.detect('ann', kind, confidence));
    s.advance(MINUTE);
  }
  const [proposal] = ofType(decisions.at(-1)!, 'ActionProposed');
  return { decisions, actionId: proposal!.data.actionId };
}

async function project(decisions: NewEvent[][]) {
  const store = new SqliteEventStore({ path: ':memory:' });
  const projector = new Projector({ store, path: ':memory:' });
  cleanup.push(async () => {
    await projector.close();
    await store.close();
  });
  for (const events of decisions) if (events.length) await store.append(events[0]!.stream, events, 'any');
  await projector.start();
  return { store, projector };
}

const ann = { provider: 'okta', id: 'ann' };
const catalogue = [{ id: 'ann', tier: 'development' as const }];

describe('no-action reasons in the case view and explain', () => {
  it('lists every detection without action with its reasons, whether recorded in full or referred to', async () => {
    const { decisions, actionId } = story(new Scenario({ catalogue }));
    const events = decisions.flat();
    expect(ofType(events, 'NoActionTaken')).toHaveLength(1); // the detection that opened the case
    expect(ofType(events, 'DetectionReceived').filter((e) => e.data.noAction)).toHaveLength(5);

    const { store, projector } = await project(decisions);
    const caseId = ofType(events, 'CaseOpened')[0]!.data.caseId;
    const c = getCase(projector, caseId)!;
    const noRule = 'no rule acts on other at this confidence for this identity (lowest rule minimum 0.5)';
    const belowFloor = 'below the case floor 0.3: recorded only';
    expect(c.noActions.map((n) => [n.detectionId, n.reasons.map((r) => r.detail)])).toEqual([
      ['det-1', [noRule]],
      ['det-2', [noRule]],
      ['det-3', [belowFloor]],
      ['det-4', [belowFloor]],
      ['det-5', [belowFloor]],
      ['det-6', ['rule analyst-review: revoke_sessions needs analyst approval']],
    ]);
    const det4 = c.timeline.find((t) => t.type === 'DetectionReceived' && t.summary.includes('det-4'));
    expect(det4!.summary).toBe(
      `detection det-4 (other, confidence 0.2) from okta; no automatic action: ${belowFloor}`,
    );

    const explained = (await explainAction(store, { identity: ann }, actionId))!;
    expect(explained.case.noActions.map((n) => [n.detectionId, n.reasons[0]!.code])).toEqual([
      ['det-1', 'no_rule'],
      ['det-2', 'no_rule'],
      ['det-3', 'below_case_floor'],
      ['det-4', 'below_case_floor'],
      ['det-5', 'below_case_floor'],
      ['det-6', 'approval_required'],
    ]);
    expect(explained.narrative.join('\n')).toContain(
      `no automatic action on detection det-5: ${belowFloor}.`,
    );
  });

  it('reads a store holding a NoActionTaken for every detection the same', async () => {
    const compact = story(new Scenario({ catalogue }));
    const full = { ...compact, decisions: oneRecordPerDetection(compact.decisions) };
    const fullEvents = full.decisions.flat();
    expect(ofType(fullEvents, 'NoActionTaken')).toHaveLength(6);
    expect(ofType(fullEvents, 'DetectionReceived').filter((e) => e.data.noAction)).toEqual([]);

    const a = await project(compact.decisions);
    const b = await project(full.decisions);
    const caseId = ofType(fullEvents, 'CaseOpened')[0]!.data.caseId;
    const reasons = (p: Projector) =>
      getCase(p, caseId)!.noActions.map((n) => ({
        detectionId: n.detectionId,
        at: n.at,
        reasons: n.reasons,
      }));
    expect(reasons(b.projector)).toEqual(reasons(a.projector));
    expect(reasons(b.projector)).toHaveLength(6);

    const explain = async (store: SqliteEventStore, actionId: string) =>
      (await explainAction(store, { identity: ann }, actionId))!.case.noActions.map((n) => ({
        detectionId: n.detectionId,
        at: n.at,
        reasons: n.reasons,
      }));
    expect(await explain(b.store, full.actionId)).toEqual(await explain(a.store, compact.actionId));
  });
});
