import { describe, expect, it } from 'vitest';
import { loadDefaultPolicy } from '../../services/decider/policy/load.ts';
import { type HistoryLine, historyFromLines } from '../history.ts';
import { runReplay } from '../run-replay.ts';
import { generateHistory, SCENARIO_NAMES, simulate } from './index.ts';

const policy = loadDefaultPolicy();
const gen = (scenario: string, seed: number, identities = 80, days = 14) => [
  ...generateHistory({ scenario, seed, identities, days }),
];

interface Truths {
  verdicts: Map<string, Set<string>>;
  /** Identities that play an incident (not background noise). */
  incident: Set<string>;
  claimed: Map<string, Set<string>>;
  scenarios: Set<string>;
  firstDetection: Map<string, string>;
  lastVerdict: Map<string, string>;
}

/** What the lines claim: verdicts per identity, and the truth each incident detection carries. */
function truths(lines: readonly HistoryLine[]): Truths {
  const t: Truths = {
    verdicts: new Map(),
    incident: new Set(),
    claimed: new Map(),
    scenarios: new Set(),
    firstDetection: new Map(),
    lastVerdict: new Map(),
  };
  const add = (m: Map<string, Set<string>>, k: string, v: string) => m.set(k, (m.get(k) ?? new Set()).add(v));
  for (const l of lines) {
    if (l.type === 'detection') {
      const key = `${l.identity.provider}:${l.identity.id}`;
      const ev = (l.evidence ?? {}) as { truth?: string; scenario?: string };
      t.scenarios.add(ev.scenario ?? '?');
      if (ev.truth === 'malicious' || ev.truth === 'benign') add(t.claimed, key, ev.truth);
      if (ev.scenario !== 'background') t.incident.add(key);
      if (!t.firstDetection.has(key)) t.firstDetection.set(key, l.at ?? l.occurredAt);
    } else if (l.type === 'verdict') {
      const key = `${l.identity.provider}:${l.identity.id}`;
      add(t.verdicts, key, l.verdict);
      t.lastVerdict.set(key, l.at);
    }
  }
  return t;
}

describe('scenario generators', () => {
  it.each(SCENARIO_NAMES)('%s is deterministic for a seed and differs across seeds', (name) => {
    const a = JSON.stringify(gen(name, 1));
    expect(JSON.stringify(gen(name, 1))).toBe(a);
    expect(JSON.stringify(gen(name, 2))).not.toBe(a);
  });

  it.each(SCENARIO_NAMES)('%s produces the ground truth it claims', (name) => {
    const lines = gen(name, 3);
    // Valid history, in time order, catalogue first.
    const history = historyFromLines(lines);
    expect(history.invalid).toBe(0);
    for (let i = 1; i < history.records.length; i++)
      expect(history.records[i]!.atMs).toBeGreaterThanOrEqual(history.records[i - 1]!.atMs);
    const catalogued = new Set(
      lines.flatMap((l) => (l.type === 'identity' ? [`${l.entry.provider}:${l.entry.id}`] : [])),
    );
    const t = truths(lines);
    for (const key of t.firstDetection.keys()) expect(catalogued, key).toContain(key);

    // Every incident identity has exactly the verdict its detections claim, after its first detection;
    // every verdict belongs to an identity whose detections claim it.
    expect(t.claimed.size).toBeGreaterThan(0);
    for (const [key, claimed] of t.claimed) {
      expect([...claimed], key).toHaveLength(1);
      expect([...(t.verdicts.get(key) ?? [])], key).toEqual([...claimed]);
      expect(t.lastVerdict.get(key)! > t.firstDetection.get(key)!, key).toBe(true);
    }
    for (const key of t.verdicts.keys()) expect(t.claimed.has(key), key).toBe(true);

    // Background noise triaged by analysts is benign; incidents carry the scenario's truth.
    const verdicts = [...t.incident].map((key) => [...(t.verdicts.get(key) ?? [])][0]);
    expect(verdicts.every((v) => v !== undefined)).toBe(true);
    const malicious = verdicts.filter((v) => v === 'malicious').length;
    const benign = verdicts.filter((v) => v === 'benign').length;
    if (name === 'benign-noise') {
      expect(malicious).toBe(0);
      expect(benign).toBeGreaterThan(0);
      for (const s of ['vpn-travel', 'ci-burst', 'pentest', 'alert-storm']) expect(t.scenarios).toContain(s);
    } else if (name === 'storm') {
      expect(malicious).toBeGreaterThan(0);
      expect(benign).toBeGreaterThan(300);
      for (const s of ['ti-storm', 'ti-campaign', 'alert-storm', 'token-theft', 'background']) {
        expect(t.scenarios).toContain(s);
      }
    } else if (name === 'mixed') {
      expect(malicious).toBeGreaterThan(0);
      expect(benign).toBeGreaterThan(0);
      for (const s of [
        'token-theft',
        'leaked-ci-secret',
        'credential-stuffing',
        'shared-service-account',
        'oauth-app-abuse',
        'vpn-travel',
        'ci-burst',
        'pentest',
        'alert-storm',
        'background',
      ]) {
        expect(t.scenarios).toContain(s);
      }
    } else {
      expect(malicious).toBeGreaterThan(0);
      expect(benign).toBe(0);
      expect(t.scenarios).toContain(name);
    }
  });

  it('attacks look like their story under the default policy', () => {
    const replay = (name: string) => runReplay({ history: historyFromLines(gen(name, 4, 100, 14)), policy });
    const types = (name: string) => new Set(replay(name).actions.map((a) => `${a.type}/${a.approval.mode}`));
    // Stolen tokens are revoked automatically; most victims are contained.
    expect(types('token-theft')).toContain('revoke_tokens/auto');
    expect(replay('token-theft').metrics.recall).toBeGreaterThan(0.5);
    // Leaked secrets are rotated (or, unmanaged, their tokens revoked).
    expect(
      [...types('leaked-ci-secret')].some(
        (t) => t === 'rotate_credential/auto' || t === 'revoke_tokens/auto',
      ),
    ).toBe(true);
    // MFA fatigue: sessions revoked.
    expect(types('credential-stuffing')).toContain('revoke_sessions/auto');
    // A shared production service account is never actioned automatically.
    expect([...types('shared-service-account')].every((t) => !t.endsWith('/auto'))).toBe(true);
    // Revoking a partner's OAuth grant needs external coordination.
    expect(types('oauth-app-abuse')).toContain('revoke_oauth_grant/external');
    // Benign noise: the alert storm is held as a storm (before any budget is spent); the automatic
    // actions taken before it are rolled back.
    const noise = replay('benign-noise');
    expect(noise.totals.stormsDetected).toBeGreaterThan(0);
    expect(noise.totals.rolledBack).toBeGreaterThan(0);
    expect(noise.metrics.maliciousIdentities).toBe(0);
  });

  it('simulate streams the same lines and rejects unknown scenarios', async () => {
    const streamed: HistoryLine[] = [];
    for await (const l of simulate({ scenario: 'token-theft', seed: 9, identities: 30, days: 7 }))
      streamed.push(l);
    expect(streamed).toEqual(gen('token-theft', 9, 30, 7));
    expect(() => gen('nope', 1)).toThrow(/unknown scenario "nope"/);
    expect(() => [...generateHistory({ scenario: 'mixed', seed: 1, identities: 0, days: 1 })]).toThrow(
      /--identities/,
    );
  });
});
