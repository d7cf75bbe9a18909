import { ANALYSTS, DAY_MS, forEachIncident, HOUR_MS, LEADS, MIN_MS, type Scenario } from './common.ts';

/**
 * A production service account shared by several teams is compromised: unusual API use, then a
 * privilege escalation. Guards must keep a human in the loop (shared identity, production tier);
 * quarantine needs two people. The account had just been given to more consumers (a catalogue
 * change a few days before). Malicious.
 */
export const sharedServiceAccount: Scenario = {
  name: 'shared-service-account',
  description: 'a compromised shared production service account (API abuse + privilege escalation)',
  truth: 'malicious',
  generate(env) {
    const r = env.rng;
    forEachIncident(
      env,
      {
        scenario: 'shared-service-account',
        idPrefix: 'sa',
        truth: 'malicious',
        victim: 'shared_service_account',
        share: 0.1,
        perThousandPerMonth: 0.7,
        tailMs: 12 * HOUR_MS,
      },
      (m, inc, t0) => {
        const grew = Math.max(env.startMs, t0 - r.int(1, 4) * DAY_MS);
        if (grew > env.startMs)
          inc.recatalogue(m, grew, {
            consumers: Math.max(3, (m.entry.consumers ?? 1) + r.int(1, 4)),
            tags: ['shared'],
          });
        let t = t0;
        const probes = r.int(1, 3);
        for (let i = 0; i < probes; i++) {
          inc.detect(m, t, {
            source: 'cloudtrail',
            kind: 'suspicious_api_use',
            confidence: r.confidence(0.55, 0.9),
            title: 'Enumeration from a host outside the deploy fleet',
            evidence: {
              api: r.pick(['ListRoles', 'ListUsers', 'GetAccountAuthorizationDetails']),
              host: `10.9.${r.int(0, 255)}.${r.int(1, 254)}`,
            },
          });
          t += r.int(5, 30) * MIN_MS;
        }
        inc.detect(m, t, {
          source: 'guardduty',
          kind: 'privilege_escalation',
          confidence: r.confidence(0.8, 0.97),
          title: 'AttachUserPolicy AdministratorAccess',
          evidence: { api: 'AttachUserPolicy', policy: 'AdministratorAccess' },
        });
        // Two people answer the quarantine request.
        const at = t + r.int(15, 90) * MIN_MS;
        if (r.chance(0.8)) {
          inc.answer(m, at, 'approve', r.pick(ANALYSTS));
          inc.answer(m, at + r.int(2, 20) * MIN_MS, 'approve', LEADS[0]!);
        }
        inc.verdict(m, t + r.int(4, 48) * HOUR_MS, LEADS[0]!);
      },
    );
  },
};
