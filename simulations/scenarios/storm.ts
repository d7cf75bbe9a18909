import {
  ANALYSTS,
  DAY_MS,
  HOUR_MS,
  Incident,
  LEADS,
  type Member,
  MIN_MS,
  type Scenario,
  type ScenarioEnv,
} from './common.ts';
import { PARTS } from './mixed.ts';

/** Where the storm's detections say they come from: a threat-intel feed matched against sign-ins. */
const STORM_SOURCE = 'threatintel';
export const STORM_SCENARIO = 'ti-storm';
export const CAMPAIGN_SCENARIO = 'ti-campaign';

/**
 * A threat-intel feed update misfires: within one hour it marks several hundred identities, across
 * the IdPs and the cloud, as known-compromised with high confidence. All benign. The storm falls
 * mid-period; one real campaign runs during the storm hour, two others elsewhere.
 */
function tiStorm(env: ScenarioEnv, t0: number): void {
  const r = env.rng;
  const size = Math.max(300, Math.round(env.identities * 0.3));
  const inc = new Incident(env, STORM_SCENARIO, 'ti-storm-1', 'benign');
  const victims: Member[] = [];
  for (let k = 0; k < size; k++) {
    const m = env.population.take(r.chance(0.8) ? 'human' : 'machine', r);
    victims.push(m);
    inc.detect(m, t0 + r.int(0, 3599) * 1000, {
      source: STORM_SOURCE,
      kind: 'known_compromise',
      confidence: r.confidence(0.91, 0.99),
      title: 'Credential seen in a breach corpus (feed 2026.12.1)',
      evidence: { feed: 'breach-corpus', feedVersion: '2026.12.1' },
    });
  }
  const closeAt = t0 + r.int(4, 12) * HOUR_MS;
  for (const m of victims) inc.verdict(m, closeAt, LEADS[0]!);
}

/**
 * A real campaign: the IdP reports 2-5 identities of one team compromised within minutes (an AiTM
 * phishing kit), followed by token use. Malicious. An analyst approves what is pending.
 */
function campaign(env: ScenarioEnv, n: number, t0: number): void {
  const r = env.rng;
  const inc = new Incident(env, CAMPAIGN_SCENARIO, `ti-campaign-${n}`, 'malicious');
  const team = r.int(2, 5);
  for (let k = 0; k < team; k++) {
    const m = env.population.take('okta-human', r);
    const t = t0 + r.int(0, 20) * MIN_MS;
    inc.detect(m, t, {
      source: 'okta',
      kind: 'known_compromise',
      confidence: r.confidence(0.92, 0.99),
      title: 'Okta ThreatInsight: session hijacked via adversary-in-the-middle',
      evidence: { team: `team-${n}`, kit: 'evilginx' },
    });
    inc.answer(m, t + r.int(10, 40) * MIN_MS, 'approve', r.pick(ANALYSTS));
    inc.verdict(m, t + r.int(3, 10) * HOUR_MS, r.pick(ANALYSTS));
  }
}

export const storm: Scenario = {
  name: 'storm',
  description:
    'a misfiring threat-intel feed flags several hundred identities within an hour, inside a normal period with real campaigns',
  truth: 'both',
  generate(env) {
    for (const part of PARTS) part.generate({ ...env, rng: env.rng.child(part.name), mixed: true });
    const r = env.rng.child(STORM_SCENARIO);
    const mid = env.startMs + Math.floor(env.days / 2) * DAY_MS + 10 * HOUR_MS;
    const local = { ...env, rng: r };
    campaign(local, 1, env.startMs + 2 * DAY_MS + 14 * HOUR_MS);
    tiStorm(local, mid);
    campaign(local, 2, mid + 20 * MIN_MS);
    campaign(local, 3, Math.min(env.startMs + (env.days - 1) * DAY_MS, mid + 3 * DAY_MS) + 9 * HOUR_MS);
  },
};
