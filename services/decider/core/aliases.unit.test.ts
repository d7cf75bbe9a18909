/**
 * One identity across sources: Okta, Entra and GitHub detections of one person, each naming her
 * under that source's own id, open one case and complete a count-3 rule together, live and in
 * replay; an identity the catalogue does not know stays as it is.
 */
import { describe, expect, it } from 'vitest';
import type { CatalogueEntryInput } from '../../../schemas/catalogue.ts';
import type { IdentityRef } from '../../../schemas/detection.ts';
import { type HistoryLine, historyFromLines } from '../../../simulations/history.ts';
import { replayHistory } from '../../../simulations/replay.ts';
import { summarize } from '../../../simulations/report.ts';
import {
  autoApprovals,
  detectionInput,
  iso,
  MINUTE,
  ofType,
  runCoreDetailed,
  T0,
} from '../../../test/support/decider-testkit.ts';
import { loadDefaultPolicy } from '../policy/load.ts';

const PRIYA: CatalogueEntryInput = {
  provider: 'okta',
  id: 'priya@acme.example',
  type: 'human',
  tenant: 'acme',
  tier: 'production',
  aliases: [
    { provider: 'entra', id: '6f1c2a9e-0b7d-4c1e-9a55-2d8e1f0c7b31' },
    { provider: 'github', id: 'priya-acme' },
  ],
};
const viaOkta: IdentityRef = { provider: 'okta', id: 'priya@acme.example', type: 'human' };
const viaEntra: IdentityRef = {
  provider: 'entra',
  id: '6f1c2a9e-0b7d-4c1e-9a55-2d8e1f0c7b31',
  type: 'human',
};
const viaGithub: IdentityRef = { provider: 'github', id: 'priya-acme', type: 'human' };

const three = [
  { identity: viaOkta, source: 'okta' },
  { identity: viaEntra, source: 'entra-id-protection' },
  { identity: viaGithub, source: 'github' },
].map((x, i) =>
  detectionInput({
    identity: x.identity,
    kind: 'credential_abuse',
    confidence: 0.7,
    atMs: T0 + i * 5 * MINUTE,
    source: x.source,
    id: `ca-${i}`,
  }),
);

describe('one identity across sources', () => {
  it('Okta, Entra and GitHub detections of one person open one case and complete the count-3 rule together', () => {
    const r = runCoreDetailed(three, { catalogue: [PRIYA] });
    const cases = ofType(r.events, 'CaseOpened');
    expect(cases).toHaveLength(1);
    expect(cases[0]!.data.identity).toMatchObject({ provider: 'okta', id: 'priya@acme.example' });
    const received = ofType(r.events, 'DetectionReceived');
    expect(new Set(received.map((e) => e.stream))).toEqual(new Set(['identity-okta:priya@acme.example']));
    expect(received.map((e) => e.data.detection.evidence.aliasOf ?? null)).toEqual([
      null,
      { provider: 'entra', id: viaEntra.id },
      { provider: 'github', id: 'priya-acme' },
    ]);
    const [auto] = autoApprovals(r.events);
    expect(auto).toBeDefined();
    const [p] = ofType(r.events, 'ActionProposed');
    expect(p!.data).toMatchObject({
      ruleId: 'mfa-fatigue',
      action: 'revoke_sessions',
      detectionIds: ['ca-0', 'ca-1', 'ca-2'],
    });
  });

  it('without the aliases they are three identities and the rule never completes', () => {
    const { aliases: _none, ...bare } = PRIYA;
    const r = runCoreDetailed(three, { catalogue: [bare] });
    expect(ofType(r.events, 'ActionProposed').filter((e) => e.data.ruleId === 'mfa-fatigue')).toEqual([]);
    expect(new Set(ofType(r.events, 'DetectionReceived').map((e) => e.stream)).size).toBe(3);
  });

  it('replay resolves aliases the same way, and counts identities it cannot resolve', () => {
    const lines: HistoryLine[] = [
      { type: 'identity', entry: PRIYA },
      ...three.map((input, i): HistoryLine => {
        if (input.type !== 'detection') throw new Error('detections only');
        return { type: 'detection', ...input.detection, at: iso(T0 + i * 5 * MINUTE) };
      }),
      {
        type: 'detection',
        id: 'stranger-1',
        source: 'okta',
        kind: 'other',
        confidence: 0.4,
        severity: 'low',
        identity: { provider: 'okta', id: 'stranger@else.example', type: 'human' },
        occurredAt: iso(T0),
      },
    ];
    const run = replayHistory(historyFromLines(lines), loadDefaultPolicy());
    const mfa = run.actions.filter((a) => a.ruleId === 'mfa-fatigue');
    expect(mfa).toHaveLength(1);
    expect(mfa[0]!.identityKey).toBe('okta:priya@acme.example');
    expect(mfa[0]!.mode).toBe('auto');
    expect(summarize(run).totals.identitiesUnresolved).toBe(1);
  });
});
