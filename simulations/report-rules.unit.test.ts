/** The per-rule rows of a replay report add up, and say where identities count under two rules. */
import { describe, expect, it } from 'vitest';
import { loadDefaultPolicy } from '../services/decider/policy/load.ts';
import { historyFromLines } from './history.ts';
import { renderReplayHtml } from './html.ts';
import { replayWithDetails } from './run-replay.ts';
import { generateHistory } from './scenarios/index.ts';

describe('per-rule numbers', () => {
  const history = historyFromLines([
    ...generateHistory({ scenario: 'mixed', seed: 3, identities: 400, days: 7 }),
  ]);
  const details = replayWithDetails({ history, policy: loadDefaultPolicy() });
  const s = details.summary;
  const sum = (f: (r: (typeof s.rules)[number]) => number) => s.rules.reduce((n, r) => n + f(r), 0);

  it('action columns add up to the totals exactly', () => {
    expect(sum((r) => r.proposed)).toBe(s.totals.actionsProposed);
    expect(sum((r) => r.auto)).toBe(s.totals.autoApproved);
    expect(sum((r) => r.approvalsRequested)).toBe(s.totals.approvalsRequested);
    expect(sum((r) => r.executed)).toBe(s.totals.executed);
    expect(sum((r) => r.rolledBack)).toBe(s.totals.rolledBack);
  });

  it('identity columns exceed the distinct totals by exactly the identities counted under several rules', () => {
    expect(s.ruleTotals.identitiesUnderSeveralRules).toBeGreaterThan(0);
    const rowSum = sum((r) => r.maliciousContained + r.benignActioned);
    const distinct = s.ruleTotals.maliciousContained + s.ruleTotals.benignActioned;
    // Each identity under n rules is counted n times in the rows and once in the totals; the rows'
    // shared counts hold n for each such identity.
    expect(rowSum - distinct).toBe(sum((r) => r.sharedIdentities) - s.ruleTotals.identitiesUnderSeveralRules);
    expect(s.ruleTotals.benignActioned).toBe(s.benignDisrupted);
  });

  it('the HTML shows the totals row and says how many identities count under two or more rules', () => {
    const html = renderReplayHtml(details);
    expect(html).toContain('<th class="l">all rules</th>');
    expect(html).toContain(`${s.ruleTotals.identitiesUnderSeveralRules} identit`);
    expect(html).toContain('under two or more rules');
  });
});
