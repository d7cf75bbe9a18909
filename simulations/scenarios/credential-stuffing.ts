import { ANALYSTS, forEachIncident, HOUR_MS, MIN_MS, type Scenario } from './common.ts';

/**
 * Credential stuffing that finds a reused password, followed by MFA push bombing until the user
 * gives in: a run of credential-abuse alerts, then several MFA-fatigue alerts. Malicious.
 */
export const credentialStuffing: Scenario = {
  name: 'credential-stuffing',
  description: 'credential stuffing followed by MFA fatigue (push bombing)',
  truth: 'malicious',
  generate(env) {
    const r = env.rng;
    forEachIncident(
      env,
      {
        scenario: 'credential-stuffing',
        idPrefix: 'cs',
        truth: 'malicious',
        victim: 'human',
        share: 0.2,
        perThousandPerMonth: 2,
      },
      (m, inc, t0) => {
        let t = t0;
        const attempts = r.int(2, 6);
        for (let i = 0; i < attempts; i++) {
          inc.detect(m, t, {
            source: m.entry.provider === 'okta' ? 'okta' : 'entra-id-protection',
            kind: 'credential_abuse',
            confidence: r.confidence(0.45, 0.8),
            title: 'Password spray / stuffing hit a valid account',
            evidence: { failedAttempts: r.int(20, 400), sourceIps: r.int(5, 120) },
          });
          t += r.int(1, 6) * MIN_MS;
        }
        const pushes = r.int(2, 8);
        for (let i = 0; i < pushes; i++) {
          inc.detect(m, t, {
            source: r.chance(0.5) ? 'okta' : 'duo',
            kind: 'mfa_fatigue',
            confidence: r.confidence(0.55, 0.9),
            title: `MFA push denied (${i + 1})`,
            evidence: { pushes: i + 1 },
          });
          t += r.int(1, 5) * MIN_MS;
        }
        if (r.chance(0.5)) inc.answer(m, t + r.int(10, 90) * MIN_MS, 'approve', r.pick(ANALYSTS));
        inc.verdict(m, t0 + r.int(2, 24) * HOUR_MS, r.pick(ANALYSTS));
      },
    );
  },
};
