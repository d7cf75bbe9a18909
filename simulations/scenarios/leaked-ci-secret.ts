import { ANALYSTS, forEachIncident, HOUR_MS, MIN_MS, type Scenario } from './common.ts';

const NETWORKS = [
  { asn: 'AS14061', org: 'DigitalOcean', country: 'SG' },
  { asn: 'AS16276', org: 'OVH', country: 'FR' },
  { asn: 'AS9009', org: 'M247', country: 'RO' },
  { asn: 'AS45102', org: 'Alibaba', country: 'CN' },
];

/**
 * A CI secret leaked into a public repository or a build log, found by secret scanning, then used
 * from a foreign hosting network before anyone rotates it. Malicious.
 */
export const leakedCiSecret: Scenario = {
  name: 'leaked-ci-secret',
  description: 'a leaked CI secret used from a foreign network (secret scanning + foreign API use)',
  truth: 'malicious',
  generate(env) {
    const r = env.rng;
    forEachIncident(
      env,
      {
        scenario: 'leaked-ci-secret',
        idPrefix: 'ls',
        truth: 'malicious',
        victim: 'machine',
        share: 0.2,
        perThousandPerMonth: 1.5,
      },
      (m, inc, t0) => {
        const net = r.pick(NETWORKS);
        inc.detect(m, t0, {
          source: 'github-secret-scanning',
          kind: 'secret_exposure',
          confidence: r.confidence(0.65, 0.99),
          title: `Secret for ${m.entry.id} pushed to a public repository`,
          evidence: {
            repository: `acme/${r.pick(['infra', 'deploy-tools', 'website', 'mobile'])}`,
            file: '.github/workflows/deploy.yml',
          },
        });
        let t = t0 + r.int(4, 240) * MIN_MS;
        const uses = r.int(2, 5);
        for (let i = 0; i < uses; i++) {
          inc.detect(m, t, {
            source: 'guardduty',
            kind: 'suspicious_api_use',
            confidence: r.confidence(0.6, 0.95),
            title: `API calls from ${net.org} (${net.country})`,
            evidence: {
              asn: net.asn,
              country: net.country,
              api: r.pick(['ListBuckets', 'GetSecretValue', 'CreateAccessKey', 'DescribeInstances']),
            },
          });
          t += r.int(3, 40) * MIN_MS;
        }
        // A second exposure report (the scanner re-finds it in a fork) arrives later in some cases.
        if (r.chance(0.4)) {
          inc.detect(m, t + r.int(30, 90) * MIN_MS, {
            source: 'github-secret-scanning',
            kind: 'secret_exposure',
            confidence: r.confidence(0.7, 0.99),
            title: 'Same secret found in a fork',
            evidence: { repository: 'someone/fork-of-acme' },
          });
        }
        if (r.chance(0.5)) inc.answer(m, t0 + r.int(40, 150) * MIN_MS, 'approve', r.pick(ANALYSTS));
        inc.verdict(m, t0 + r.int(2, 36) * HOUR_MS, r.pick(ANALYSTS));
      },
    );
  },
};
