import type { CatalogueEntryInput } from '../../schemas/catalogue.ts';
import type { NormalizedDetectionInput } from '../../schemas/detection.ts';

/**
 * The built-in demo: a small company's morning. Times are relative to the demo start so the
 * policy's windows behave as they would live.
 */
export const DEMO_CATALOGUE: CatalogueEntryInput[] = [
  { provider: 'okta', id: 'alice@acme.example', type: 'human', owner: 'alice', tier: 'development' },
  { provider: 'okta', id: 'bob@acme.example', type: 'human', owner: 'bob', tier: 'production' },
  { provider: 'okta', id: 'carol@acme.example', type: 'human', owner: 'carol', tier: 'development' },
  {
    provider: 'okta',
    id: 'breakglass-admin',
    type: 'human',
    owner: 'it-ops',
    tier: 'production',
    breakGlass: true,
  },
  {
    provider: 'github',
    id: 'ci-deployer',
    type: 'service_account',
    owner: 'platform-team',
    tier: 'staging',
    consumers: 1,
    secrets: 'unmanaged',
  },
  {
    provider: 'okta',
    id: 'partner-sync-app',
    type: 'oauth_app',
    owner: 'integrations',
    tier: 'production',
    thirdParty: { partner: 'PayrollCo', grant: 'okta.users.read' },
  },
];

export function demoDetections(now: Date): {
  first: NormalizedDetectionInput[];
  later: NormalizedDetectionInput[];
} {
  const t = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
  const human = (id: string) => ({ provider: 'okta', id, type: 'human' as const });
  const first: NormalizedDetectionInput[] = [
    {
      id: 'okta-evt-1001',
      source: 'okta',
      kind: 'known_compromise',
      confidence: 0.96,
      severity: 'critical',
      identity: human('alice@acme.example'),
      occurredAt: t(12),
      title: 'Okta ThreatInsight: credentials seen in a stealer log',
      evidence: { ip: '198.51.100.23', country: 'RO' },
    },
    {
      id: 'sentinel-7f3a',
      source: 'sentinel',
      kind: 'impossible_travel',
      confidence: 0.62,
      severity: 'medium',
      identity: human('bob@acme.example'),
      occurredAt: t(10),
      title: 'Sign-in from two countries 40 minutes apart',
      evidence: { from: 'NL', to: 'BR' },
    },
    {
      id: 'elastic-a1',
      source: 'elastic',
      kind: 'anomalous_token_use',
      confidence: 0.86,
      severity: 'high',
      identity: human('carol@acme.example'),
      occurredAt: t(9),
      title: 'Refresh token replayed from a new ASN',
      evidence: { asn: 'AS64500' },
    },
    {
      id: 'elastic-a2',
      source: 'elastic',
      kind: 'anomalous_token_use',
      confidence: 0.88,
      severity: 'high',
      identity: human('carol@acme.example'),
      occurredAt: t(8),
      title: 'Refresh token replayed from a new ASN (again)',
      evidence: { asn: 'AS64500' },
    },
    {
      id: 'okta-evt-1002',
      source: 'okta',
      kind: 'known_compromise',
      confidence: 0.97,
      severity: 'critical',
      identity: human('breakglass-admin'),
      occurredAt: t(7),
      title: 'Break-glass credential reported compromised',
      evidence: {},
    },
    {
      id: 'ghss-42',
      source: 'github_secret_scanning',
      kind: 'secret_exposure',
      confidence: 0.9,
      severity: 'high',
      identity: { provider: 'github', id: 'ci-deployer', type: 'service_account' },
      occurredAt: t(6),
      title: 'Deploy key committed to a public repository',
      evidence: { repository: 'acme/website' },
    },
    {
      id: 'okta-evt-1003',
      source: 'okta',
      kind: 'suspicious_api_use',
      confidence: 0.85,
      severity: 'high',
      identity: { provider: 'okta', id: 'partner-sync-app', type: 'oauth_app' },
      occurredAt: t(5),
      title: 'Partner app enumerating all users',
      evidence: { calls: 12000 },
    },
    {
      id: 'okta-evt-1004',
      source: 'okta',
      kind: 'suspicious_api_use',
      confidence: 0.88,
      severity: 'high',
      identity: { provider: 'okta', id: 'partner-sync-app', type: 'oauth_app' },
      occurredAt: t(4),
      title: 'Partner app reading admin roles',
      evidence: { calls: 800 },
    },
  ];
  // The SIEM re-sends an alert it already sent: it must be recorded once.
  const later: NormalizedDetectionInput[] = [first[0]!];
  return { first, later };
}
