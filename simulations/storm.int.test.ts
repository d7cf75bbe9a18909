/**
 * The storm scenario under the default policy: several hundred benign identities flagged by one
 * rule within an hour, inside a fortnight with real campaigns. The storm must cost at most 20
 * automatic actions across every provider, reach a human as one grouped decision, and cost no
 * campaign identity its containment.
 */
import { describe, expect, it } from 'vitest';
import { loadDefaultPolicy } from '../services/decider/policy/load.ts';
import type { DetectionLine, HistoryLine } from './history.ts';
import { historyFromLines } from './history.ts';
import { replayHistory } from './replay.ts';
import { summarize } from './report.ts';
import { generateHistory } from './scenarios/index.ts';
import { CAMPAIGN_SCENARIO, STORM_SCENARIO } from './scenarios/storm.ts';

describe('storm scenario under the default policy', () => {
  const lines: HistoryLine[] = [
    ...generateHistory({ scenario: 'storm', seed: 1, identities: 1000, days: 14 }),
  ];
  const scenarioOf = (l: DetectionLine) => (l.evidence as { scenario?: string } | undefined)?.scenario;
  const identitiesOf = (scenario: string) =>
    new Set(
      lines
        .filter((l): l is DetectionLine => l.type === 'detection' && scenarioOf(l) === scenario)
        .map((l) => `${l.identity.provider}:${l.identity.id}`),
    );
  const stormIds = identitiesOf(STORM_SCENARIO);
  const campaignIds = identitiesOf(CAMPAIGN_SCENARIO);
  const run = replayHistory(historyFromLines(lines), loadDefaultPolicy());

  it('flags several hundred identities across providers, and real campaigns of a few identities', () => {
    expect(stormIds.size).toBeGreaterThanOrEqual(300);
    expect(new Set([...stormIds].map((k) => k.split(':')[0])).size).toBeGreaterThanOrEqual(3);
    expect(campaignIds.size).toBeGreaterThanOrEqual(6);
  });

  it('acts automatically on at most 20 storm identities in total, across all providers', () => {
    const auto = run.actions.filter((a) => stormIds.has(a.identityKey) && a.mode === 'auto');
    expect(auto.length).toBeLessThanOrEqual(20);
    expect(run.storms).toBeGreaterThanOrEqual(1);
  });

  it('puts the storm in front of a human as one grouped decision instead of hundreds', () => {
    const asked = run.actions.filter((a) => stormIds.has(a.identityKey) && a.mode !== 'auto');
    expect(asked.length).toBeGreaterThan(250);
    // Held by the storm: one group. Before it tripped, an identity another guard sent to an analyst
    // (break-glass, shared) sits in its rule's group: at most a couple of decisions in all.
    const held = asked.filter((a) => a.guards.includes('storm_hold'));
    expect(held.length).toBeGreaterThan(250);
    const stormGroups = new Set(held.map((a) => a.group));
    expect(stormGroups.size).toBe(1);
    expect([...stormGroups][0]).toMatch(/^storm:storm-known-compromise-/);
    expect(new Set(asked.map((a) => a.group)).size).toBeLessThanOrEqual(2);
    const s = summarize(run);
    expect(s.metrics.approvalDecisionsPeakHour).toBeLessThan(s.metrics.approvalsPeakHour / 50);
  });

  it('misses no campaign identity because of the hold, the campaign inside the storm hour included', () => {
    const contained = new Set(
      run.actions
        .filter((a) => a.executedAtMs !== null && campaignIds.has(a.identityKey))
        .map((a) => a.identityKey),
    );
    expect([...campaignIds].filter((k) => !contained.has(k))).toEqual([]);
  });
});
