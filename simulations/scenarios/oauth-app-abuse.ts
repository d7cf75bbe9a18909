import { ANALYSTS, forEachIncident, HOUR_MS, MIN_MS, type Scenario } from './common.ts';

/**
 * A third-party OAuth application (a partner's integration) is abused: its grant is used to read
 * mail and files at volume, then to add itself permissions. Revoking the grant cuts a partner off,
 * so the policy must ask for external coordination. Malicious.
 */
export const oauthAppAbuse: Scenario = {
  name: 'oauth-app-abuse',
  description: 'third-party OAuth app abuse (bulk reads, consent escalation)',
  truth: 'malicious',
  generate(env) {
    const r = env.rng;
    forEachIncident(
      env,
      {
        scenario: 'oauth-app-abuse',
        idPrefix: 'oa',
        truth: 'malicious',
        victim: 'third_party_app',
        share: 0.1,
        perThousandPerMonth: 0.5,
      },
      (m, inc, t0) => {
        let t = t0;
        const reads = r.int(2, 6);
        for (let i = 0; i < reads; i++) {
          inc.detect(m, t, {
            source: 'defender-for-cloud-apps',
            kind: 'suspicious_api_use',
            confidence: r.confidence(0.7, 0.95),
            title: 'Bulk mailbox and file reads by an OAuth app',
            evidence: { scopes: ['Mail.Read', 'Files.Read.All'], objects: r.int(500, 20000) },
          });
          t += r.int(10, 50) * MIN_MS;
        }
        if (r.chance(0.5)) {
          inc.detect(m, t, {
            source: 'entra-audit',
            kind: 'privilege_escalation',
            confidence: r.confidence(0.75, 0.95),
            title: 'App granted itself Directory.ReadWrite.All',
            evidence: { scope: 'Directory.ReadWrite.All' },
          });
        }
        // The partner confirms (or not) within hours: the approval may arrive after the TTL.
        const partner = m.entry.thirdParty?.partner ?? 'partner';
        if (r.chance(0.7))
          inc.answer(m, t0 + r.int(1, 6) * HOUR_MS, 'approve', {
            id: `partner:${partner}`,
            role: 'external',
          });
        inc.verdict(m, t0 + r.int(6, 72) * HOUR_MS, r.pick(ANALYSTS));
      },
    );
  },
};
