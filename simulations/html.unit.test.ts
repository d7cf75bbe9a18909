/** The replay report's HTML: the policy diff summarised by action type and stage before the lists. */
import { describe, expect, it } from 'vitest';
import { loadDefaultPolicy, parsePolicy } from '../services/decider/policy/load.ts';
import { historyFromLines } from './history.ts';
import { renderReplayHtml } from './html.ts';
import { replayWithDetails } from './run-replay.ts';
import { generateHistory } from './scenarios/index.ts';

describe('replay HTML', () => {
  it('summarises the policy diff by action type and stage before the lists, and shows storms and approval load', () => {
    const history = historyFromLines([
      ...generateHistory({ scenario: 'storm', seed: 2, identities: 300, days: 7 }),
    ]);
    const base = loadDefaultPolicy();
    const noStorms = parsePolicy(
      JSON.stringify({
        ...base.policy,
        version: 'no-storms',
        guards: { ...base.policy.guards, storm: { enabled: false } },
      }),
      'no-storms.json',
    );
    const details = replayWithDetails({ history, policy: base, baseline: noStorms });
    const html = renderReplayHtml(details);
    const summaryAt = html.indexOf('<h3>By action type and stage</h3>');
    expect(summaryAt).toBeGreaterThan(0);
    const firstList = Math.min(
      ...['<h3>Added</h3>', '<h3>Removed</h3>', '<h3>Changed</h3>']
        .map((h) => html.indexOf(h))
        .filter((i) => i >= 0),
    );
    expect(summaryAt).toBeLessThan(firstList);
    expect(html).toMatch(
      /<tr><td class="l">revoke_sessions<\/td><td>1<\/td><td>\d+<\/td><td>\d+<\/td><td>[1-9]\d*<\/td><\/tr>/,
    );
    expect(html).toContain('storms detected');
    expect(html).toContain('grouped approval decisions in the busiest hour');
    expect(details.summary.totals.stormsDetected).toBeGreaterThan(0);
    expect(details.baseline!.summary.totals.stormsDetected).toBe(0);
  });
});
