import {
  ANALYSTS,
  DAY_MS,
  forEachIncident,
  HOUR_MS,
  Incident,
  incidentStart,
  LEADS,
  type Member,
  MIN_MS,
  type Scenario,
  type ScenarioEnv,
} from './common.ts';

/** Employees travelling on a corporate VPN: impossible travel that is not. Benign. */
function vpnTravel(env: ScenarioEnv): void {
  const r = env.rng;
  forEachIncident(
    env,
    {
      scenario: 'vpn-travel',
      idPrefix: 'vpn',
      truth: 'benign',
      victim: 'human',
      share: 0.15,
      perThousandPerMonth: 8,
    },
    (m, inc, t0) => {
      const exit = r.pick(['SG', 'US', 'JP', 'AU', 'BR']);
      inc.detect(m, t0, {
        source: m.entry.provider === 'okta' ? 'okta' : 'entra-id-protection',
        kind: 'impossible_travel',
        confidence: r.confidence(0.6, 0.9),
        title: `Sign-in from ${exit} via corporate VPN exit`,
        evidence: { country: exit, vpn: 'corp-gw', ip: `203.0.113.${r.int(1, 254)}` },
      });
      if (r.chance(0.7)) {
        inc.detect(m, t0 + r.int(3, 50) * MIN_MS, {
          source: 'sentinel',
          kind: 'anomalous_token_use',
          confidence: r.confidence(0.55, 0.88),
          title: 'Token used from a new ASN',
          evidence: { country: exit, vpn: 'corp-gw' },
        });
      }
      if (r.chance(0.4))
        inc.answer(m, t0 + r.int(20, 120) * MIN_MS, 'reject', r.pick(ANALYSTS), 'user is travelling (VPN)');
      inc.verdict(m, t0 + r.int(2, 20) * HOUR_MS, r.pick(ANALYSTS));
    },
  );
}

/** CI pipelines bursting API calls during a release: suspicious-looking, routine. Benign. */
function ciBursts(env: ScenarioEnv): void {
  const r = env.rng;
  forEachIncident(
    env,
    {
      scenario: 'ci-burst',
      idPrefix: 'ci',
      truth: 'benign',
      victim: 'workload',
      share: 0.1,
      perThousandPerMonth: 6,
    },
    (m, inc, t0) => {
      // Releases happen in working hours.
      const day = Math.floor((t0 - env.startMs) / DAY_MS);
      let t = env.startMs + day * DAY_MS + r.int(8, 17) * HOUR_MS + r.int(0, 59) * MIN_MS;
      const n = r.int(8, 30);
      for (let i = 0; i < n; i++) {
        inc.detect(m, t, {
          source: 'guardduty',
          kind: 'suspicious_api_use',
          confidence: r.confidence(0.3, 0.62),
          title: 'Unusual API call volume',
          evidence: { calls: r.int(200, 5000), pipeline: `release-${r.int(100, 999)}` },
        });
        t += r.int(10, 90) * 1000;
      }
      if (r.chance(0.5))
        inc.answer(m, t + r.int(10, 60) * MIN_MS, 'reject', r.pick(ANALYSTS), 'release pipeline');
      inc.verdict(m, t + r.int(1, 12) * HOUR_MS, r.pick(ANALYSTS));
    },
  );
}

/** An announced penetration test: two days of real attack techniques against chosen identities. Benign. */
function pentestWindow(env: ScenarioEnv): void {
  const r = env.rng;
  const windowStart = incidentStart(env, 3 * DAY_MS);
  const targets = env.mixed ? r.int(6, 14) : Math.max(3, Math.round(env.identities * 0.08));
  for (let k = 0; k < targets; k++) {
    const human = r.chance(0.6);
    const m: Member = env.population.take(human ? 'human' : 'service_account', r);
    const inc = new Incident(env, 'pentest', `pt-${k + 1}`, 'benign');
    let t = windowStart + r.int(0, 40) * HOUR_MS;
    if (human) {
      const sprays = r.int(3, 6);
      for (let i = 0; i < sprays; i++) {
        inc.detect(m, t, {
          source: 'okta',
          kind: 'credential_abuse',
          confidence: r.confidence(0.6, 0.85),
          title: 'Password spray (red team)',
        });
        t += r.int(1, 4) * MIN_MS;
      }
      for (let i = 0; i < 2; i++) {
        inc.detect(m, t, {
          source: 'sentinel',
          kind: 'anomalous_token_use',
          confidence: r.confidence(0.8, 0.95),
          title: 'Token replay from the red team host',
        });
        t += r.int(2, 10) * MIN_MS;
      }
    } else {
      inc.detect(m, t, {
        source: 'guardduty',
        kind: 'privilege_escalation',
        confidence: r.confidence(0.85, 0.97),
        title: 'Privilege escalation (red team)',
      });
    }
    if (r.chance(0.5)) inc.answer(m, t + r.int(10, 60) * MIN_MS, 'reject', LEADS[0]!, 'announced pentest');
    inc.verdict(m, windowStart + 2 * DAY_MS + r.int(1, 8) * HOUR_MS, LEADS[0]!);
  }
}

/**
 * A detection rule misfires after a SIEM content update: within an hour it flags token reuse for
 * a large share of the workforce at a confidence just above the policy threshold. The blast-radius
 * budget must trip and degrade to analyst approval. Benign.
 */
function alertStorm(env: ScenarioEnv): void {
  const r = env.rng;
  const size = env.mixed
    ? Math.min(400, Math.max(80, Math.round(env.identities * 0.01)))
    : Math.max(70, Math.round(env.identities * 0.3));
  const t0 = incidentStart(env, DAY_MS);
  const inc = new Incident(env, 'alert-storm', 'storm-1', 'benign');
  const victims: Member[] = [];
  for (let k = 0; k < size; k++) {
    const m = env.population.take('okta-human', r);
    victims.push(m);
    let t = t0 + r.int(0, 50) * MIN_MS;
    for (let i = 0; i < 2; i++) {
      inc.detect(m, t, {
        source: 'splunk',
        kind: 'anomalous_token_use',
        confidence: r.confidence(0.8, 0.88),
        title: 'Anomalous Token Reuse v2 (misfiring after content update)',
        evidence: { rule: 'ATR-v2', contentVersion: '2026.11.3' },
      });
      t += r.int(1, 8) * MIN_MS;
    }
  }
  const closeAt = t0 + r.int(6, 30) * HOUR_MS;
  for (const m of victims) inc.verdict(m, closeAt, LEADS[0]!);
}

export const benignNoise: Scenario = {
  name: 'benign-noise',
  description: 'benign noise: VPN travel, CI bursts, a pentest window and a misfiring rule alert storm',
  truth: 'benign',
  generate(env) {
    vpnTravel(env);
    ciBursts(env);
    pentestWindow(env);
    alertStorm(env);
  },
};
