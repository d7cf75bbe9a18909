import { ANALYSTS, forEachIncident, HOUR_MS, MIN_MS, type Scenario } from './common.ts';

const COUNTRIES = ['BR', 'NG', 'RU', 'VN', 'KP', 'IR', 'CN', 'RO'];
const HOME = ['DE', 'US', 'GB', 'FR', 'NL'];

/**
 * A session token stolen (infostealer, AiTM phishing) and replayed from a new country: an
 * impossible-travel alert from the IdP, then anomalous token use from the new location, repeated
 * while the attacker works. Malicious.
 */
export const tokenTheft: Scenario = {
  name: 'token-theft',
  description: 'a stolen session token used from a new country (impossible travel + anomalous token use)',
  truth: 'malicious',
  generate(env) {
    const r = env.rng;
    forEachIncident(
      env,
      {
        scenario: 'token-theft',
        idPrefix: 'tt',
        truth: 'malicious',
        victim: 'human',
        share: 0.2,
        perThousandPerMonth: 2,
      },
      (m, inc, t0) => {
        const country = r.pick(COUNTRIES);
        const home = r.pick(HOME);
        const ip = `185.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`;
        const idp = m.entry.provider === 'okta' ? 'okta' : 'entra-id-protection';
        inc.detect(m, t0, {
          source: idp,
          kind: 'impossible_travel',
          confidence: r.confidence(0.72, 0.97),
          title: `Sign-in from ${country} ${r.int(20, 90)} minutes after ${home}`,
          evidence: { country, previousCountry: home, ip },
        });
        // The attacker keeps using the token: anomalous use every few minutes for a while.
        let t = t0 + r.int(2, 25) * MIN_MS;
        const uses = r.int(2, 6);
        for (let i = 0; i < uses; i++) {
          inc.detect(m, t, {
            source: i % 2 === 0 ? 'entra-id-protection' : 'sentinel',
            kind: 'anomalous_token_use',
            confidence: r.confidence(0.7, 0.96),
            title: 'Token replayed from an unfamiliar ASN',
            evidence: { country, ip, userAgent: 'python-requests/2.32' },
          });
          t += r.int(5, 45) * MIN_MS;
        }
        if (r.chance(0.6)) inc.answer(m, t0 + r.int(35, 120) * MIN_MS, 'approve', r.pick(ANALYSTS));
        inc.verdict(m, t0 + r.int(3, 30) * HOUR_MS, r.pick(ANALYSTS));
      },
    );
  },
};
