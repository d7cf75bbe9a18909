import { describe, expect, it } from 'vitest';
import { TourniquetError } from '../../../platform/errors.ts';
import { NormalizedDetection } from '../../../schemas/detection.ts';
import { fixture, loadFixtures } from '../../../test/support/normalizer-fixtures.ts';
import { detectFormat, FORMATS, type FormatName, normalize } from './index.ts';

type Expect = Pick<
  NormalizedDetection,
  'id' | 'source' | 'kind' | 'confidence' | 'severity' | 'identity' | 'occurredAt'
>;

/** Every fixture and exactly what it must normalize to. */
const EXPECTED: Record<string, Expect> = {
  'ocsf/human-impossible-travel.json': {
    id: 'f-7c1e2b9a-4d1f-4c1b-9d2e-1a2b3c4d5e6f',
    source: 'ocsf:identity_analytics',
    kind: 'impossible_travel',
    confidence: 0.82,
    severity: 'high',
    identity: {
      provider: 'okta',
      id: '00u1abvz4pYqdM8ms4x6',
      type: 'human',
      displayName: 'alice@example.com',
    },
    occurredAt: '2024-06-03T07:33:20.000Z',
  },
  'ocsf/aws-role-anomalous-api.json': {
    id: 'arn:aws:guardduty:us-east-1:123456789012:detector/12cc51e1c99e833adf5924c71ac591b2/finding/a4c7f0e2b1d84e6f9a3b2c1d0e9f8a7b',
    source: 'ocsf:amazon_guardduty',
    kind: 'suspicious_api_use',
    confidence: 0.6,
    severity: 'medium',
    identity: {
      provider: 'aws',
      id: 'AROAEXAMPLEROLEID1234:i-0abcd1234efgh5678',
      type: 'service_account',
      tenant: '123456789012',
      displayName: 'app-backend',
    },
    occurredAt: '2024-06-04T07:33:20.000Z',
  },
  'elastic/okta-mfa-bombing-flat.json': {
    id: '5f3c8a0d9e1b2c4a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a29180',
    source: 'elastic',
    kind: 'mfa_fatigue',
    confidence: 0.73,
    severity: 'high',
    identity: {
      provider: 'okta',
      id: '00u2b0bvz4pYqdM8ms4x7',
      type: 'human',
      displayName: 'bob@example.com',
    },
    occurredAt: '2024-06-03T09:12:44.118Z',
  },
  'elastic/aws-assumed-role-nested.json': {
    id: 'b71e0c6f2a9d4e3b8c7a6f5e4d3c2b1a0f9e8d7c6b5a49382716a5b4c3d2e1f0',
    source: 'elastic',
    kind: 'suspicious_api_use',
    confidence: 0.21,
    severity: 'low',
    identity: {
      provider: 'aws',
      id: 'arn:aws:sts::123456789012:assumed-role/app-deployer/ci-run-4411',
      type: 'service_account',
      tenant: '123456789012',
      displayName: 'app-deployer',
    },
    occurredAt: '2024-06-04T14:02:10.551Z',
  },
  'elastic/okta-client-app-search-hit.json': {
    id: '8c1f2e3d4c5b6a79808f7e6d5c4b3a2918273645546372819a0b1c2d3e4f5a6b',
    source: 'elastic',
    kind: 'credential_abuse',
    confidence: 0.47,
    severity: 'medium',
    identity: { provider: 'okta', id: '0oa4svcbill1ngSync7', type: 'oauth_app', displayName: 'billing-sync' },
    occurredAt: '2024-06-05T22:40:31.004Z',
  },
  'graph_alert/user-atypical-travel.json': {
    id: 'ad8c1a5e2f3b4c6d7e8f90a1b2c3d4e5f6a7b8c9_1',
    source: 'msgraph:azureAdIdentityProtection',
    kind: 'impossible_travel',
    confidence: 0.6,
    severity: 'medium',
    identity: {
      provider: 'entra',
      id: 'abcdefab-af90-4edf-ac4c-742ff06735d0',
      type: 'human',
      tenant: 'b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c',
      displayName: 'olack@adatum.com',
    },
    occurredAt: '2024-06-06T08:15:41.231Z',
  },
  'graph_alert/oauth-app-credentials.json': {
    id: 'ma2f9c7e1d3b5a7c9e1f3a5b7c9d1e3f5a7b9c1d3e',
    source: 'msgraph:microsoftAppGovernance',
    kind: 'privilege_escalation',
    confidence: 0.95,
    severity: 'high',
    identity: {
      provider: 'entra',
      id: '4d6f8a0b-2c4e-4f6a-8b0c-2d4e6f8a0b1c',
      type: 'oauth_app',
      tenant: 'b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c',
      displayName: 'Contoso Mail Sync',
    },
    occurredAt: '2024-06-07T11:02:09.880Z',
  },
  'entra_risk/user-unfamiliar-features.json': {
    id: '6a5874ca-abcd-4a2c-9d82-5ad39bd71600',
    source: 'entra_id_protection',
    kind: 'credential_abuse',
    confidence: 0.7,
    severity: 'medium',
    identity: {
      provider: 'entra',
      id: 'abcdefab-af90-4edf-ac4c-742ff06735d0',
      type: 'human',
      displayName: 'olack@adatum.com',
    },
    occurredAt: '2024-06-08T00:11:27.773Z',
  },
  'entra_risk/user-unlikely-travel.json': {
    id: '1b7e3f9a-2c4d-4e6f-8a0b-c1d2e3f4a5b6',
    source: 'entra_id_protection',
    kind: 'impossible_travel',
    confidence: 0.9,
    severity: 'high',
    identity: {
      provider: 'entra',
      id: '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0',
      type: 'human',
      displayName: 'meganb@adatum.com',
    },
    occurredAt: '2024-06-08T04:02:55.000Z',
  },
  'entra_risk/service-principal-leaked-credentials.json': {
    id: '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a',
    source: 'entra_id_protection',
    kind: 'secret_exposure',
    confidence: 0.9,
    severity: 'high',
    identity: {
      provider: 'entra',
      id: '2d4f6a8c-0e1f-4a3b-8c5d-7e9f0a1b2c3d',
      type: 'service_account',
      displayName: 'payments-batch',
    },
    occurredAt: '2024-06-09T10:20:31.000Z',
  },
  'okta/user-deny-push.json': {
    id: '9a1c4e10-2193-11ef-8d1f-4bb2b1e3c8a1',
    source: 'okta',
    kind: 'mfa_fatigue',
    confidence: 0.4,
    severity: 'medium',
    identity: {
      provider: 'okta',
      id: '00u2b0bvz4pYqdM8ms4x7',
      type: 'human',
      displayName: 'bob@example.com',
    },
    occurredAt: '2024-06-03T09:11:58.204Z',
  },
  'okta/user-session-roaming.json': {
    id: 'c0ffee01-2346-11ef-9a0b-6f1e2d3c4b5a',
    source: 'okta',
    kind: 'anomalous_token_use',
    confidence: 0.75,
    severity: 'high',
    identity: {
      provider: 'okta',
      id: '00u1abvz4pYqdM8ms4x6',
      type: 'human',
      displayName: 'alice@example.com',
    },
    occurredAt: '2024-06-05T16:20:11.731Z',
  },
  'okta/user-report-suspicious.json': {
    id: 'f1e2d3c4-2347-11ef-a1b2-3c4d5e6f7a8b',
    source: 'okta',
    kind: 'known_compromise',
    confidence: 0.85,
    severity: 'high',
    identity: {
      provider: 'okta',
      id: '00u3c4r0lwh1te00x4x8',
      type: 'human',
      displayName: 'carol@example.com',
    },
    occurredAt: '2024-06-06T07:02:45.118Z',
  },
  'okta/user-sign-on-threat-suspected.json': {
    id: '0d1e2f3a-2348-11ef-b2c3-4d5e6f7a8b9c',
    source: 'okta',
    kind: 'credential_abuse',
    confidence: 0.7,
    severity: 'high',
    identity: { provider: 'okta', id: '00u4d4v3br0wn00x4x9', type: 'human', displayName: 'dave@example.com' },
    occurredAt: '2024-06-07T02:14:09.500Z',
  },
  'okta/client-app-threat-suspected.json': {
    id: '5b6c7d8e-2349-11ef-c3d4-5e6f7a8b9c0d',
    source: 'okta',
    kind: 'credential_abuse',
    confidence: 0.55,
    severity: 'medium',
    identity: { provider: 'okta', id: '0oa4svcbill1ngSync7', type: 'oauth_app' },
    occurredAt: '2024-06-05T22:39:58.812Z',
  },
  'guardduty/iam-user-console-login.json': {
    id: '7ac8a1f3e0b24d5c9e6f1a2b3c4d5e6f',
    source: 'aws_guardduty',
    kind: 'impossible_travel',
    confidence: 0.7,
    severity: 'medium',
    identity: {
      provider: 'aws',
      id: 'arn:aws:iam::123456789012:user/alice',
      type: 'human',
      tenant: '123456789012',
      displayName: 'alice',
    },
    occurredAt: '2024-06-10T06:25:01.112Z',
  },
  'guardduty/role-instance-credential-exfiltration.json': {
    id: 'bec8d42f9a1e4b7c8d6e5f4a3b2c1d0e',
    source: 'aws_guardduty',
    kind: 'anomalous_token_use',
    confidence: 0.9,
    severity: 'high',
    identity: {
      provider: 'aws',
      id: 'arn:aws:iam::123456789012:role/web-app-role',
      type: 'workload',
      tenant: '123456789012',
      displayName: 'web-app-role',
    },
    occurredAt: '2024-06-11T12:09:57.311Z',
  },
  'guardduty/access-key-anomalous-behavior.json': {
    id: '0f1e2d3c4b5a69788796a5b4c3d2e1f0',
    source: 'aws_guardduty',
    kind: 'credential_abuse',
    confidence: 0.6,
    severity: 'medium',
    identity: {
      provider: 'aws',
      id: 'AKIAEXAMPLEREPORTS99',
      type: 'api_key',
      tenant: '210987654321',
      displayName: 'reports-bot',
    },
    occurredAt: '2024-06-12T19:40:11.007Z',
  },
  'github_secret_scanning/created-pat-active.json': {
    id: 'octo-org/payments-service/secret-scanning/42',
    source: 'github_secret_scanning',
    kind: 'secret_exposure',
    confidence: 0.95,
    severity: 'critical',
    identity: {
      provider: 'github',
      id: 'github_personal_access_token:octo-org/payments-service#42',
      type: 'api_key',
      tenant: 'octo-org',
      displayName: 'GitHub Personal Access Token in octo-org/payments-service',
    },
    occurredAt: '2024-06-13T08:44:17.000Z',
  },
  'github_secret_scanning/validated-slack-token-public.json': {
    id: 'octo-org/chatops-bot/secret-scanning/7:validated:unknown',
    source: 'github_secret_scanning',
    kind: 'secret_exposure',
    confidence: 0.9,
    severity: 'critical',
    identity: {
      provider: 'github',
      id: 'slack_api_token:octo-org/chatops-bot#7',
      type: 'api_key',
      tenant: 'octo-org',
      displayName: 'Slack API Token in octo-org/chatops-bot',
    },
    occurredAt: '2024-06-14T10:31:45.000Z',
  },
  'splunk_notable/webhook-improbable-access.json': {
    id: '8F2A1C3E-4B5D-4E6F-8A7B-9C0D1E2F3A4B@@notable@@7c0f3a2b1d4e5f6a7b8c9d0e1f2a3b4c',
    source: 'splunk_es',
    kind: 'impossible_travel',
    confidence: 0.75,
    severity: 'high',
    identity: { provider: 'okta', id: 'alice@example.com', type: 'human' },
    occurredAt: '2024-06-10T06:13:20.000Z',
  },
  'splunk_notable/bare-assumed-role-discovery.json': {
    id: '1D2C3B4A-5F6E-4D8C-9B0A-1F2E3D4C5B6A@@notable@@0a1b2c3d4e5f60718293a4b5c6d7e8f9',
    source: 'splunk_es',
    kind: 'suspicious_api_use',
    confidence: 0.6,
    severity: 'medium',
    identity: {
      provider: 'aws',
      id: 'arn:aws:sts::123456789012:assumed-role/etl-runner/i-0fedcba9876543210',
      type: 'service_account',
    },
    occurredAt: '2024-06-15T03:22:10.000Z',
  },
  'set/caep-session-revoked-complex.json': {
    id: '24c63fb56e5a2d77a6b512616ca9fa24',
    source: 'set:idp.example.com',
    kind: 'anomalous_token_use',
    confidence: 0.7,
    severity: 'medium',
    identity: {
      provider: 'idp.example.com',
      id: 'dMTlD|1600802906337.16|16008.16',
      type: 'human',
      tenant: '123456789',
    },
    occurredAt: '2024-06-11T09:59:51.000Z',
  },
  'set/risc-credential-compromise-email.json': {
    id: '756E69717565206964656E746966696572',
    source: 'set:idp.example.com',
    kind: 'known_compromise',
    confidence: 0.9,
    severity: 'high',
    identity: {
      provider: 'idp.example.com',
      id: 'carol@example.com',
      type: 'human',
      displayName: 'Carol@Example.com',
    },
    occurredAt: '2024-06-12T09:56:40.000Z',
  },
  'set/risc-account-disabled-legacy-subject.json': {
    id: '3d0c3cf797584bd193bd0fb1bd4e7d30',
    source: 'set:accounts.example.net',
    kind: 'known_compromise',
    confidence: 0.9,
    severity: 'high',
    identity: { provider: 'accounts.example.net', id: '7375626A656374', type: 'human' },
    occurredAt: '2024-06-13T10:00:00.000Z',
  },
  'set/caep-credential-change-application.json': {
    id: '07efd930f0977e4fcc1149a733ce7f78',
    source: 'set:idp.example.com',
    kind: 'other',
    confidence: 0.5,
    severity: 'low',
    identity: { provider: 'idp.example.com', id: 'client-7f3a9c2e', type: 'oauth_app', tenant: '123456789' },
    occurredAt: '2024-06-14T09:58:20.000Z',
  },
  'set/risc-credential-change-required-compact.json': {
    id: '4d3559ec67504aaba65d40b0363faad8',
    source: 'set:idp.example.com',
    kind: 'credential_abuse',
    confidence: 0.6,
    severity: 'medium',
    identity: { provider: 'idp.example.com', id: 'dave@example.com', type: 'human' },
    occurredAt: '2024-06-15T09:58:20.000Z',
  },
};

const fixtures = loadFixtures();

async function rejection(
  record: unknown,
  opts: Parameters<typeof normalize>[1] = {},
): Promise<TourniquetError> {
  try {
    await normalize(record, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(TourniquetError);
    const err = e as TourniquetError;
    expect(err.code).toBe('NORMALIZE_FAILED');
    expect(err.status).toBe(400);
    return err;
  }
  throw new Error('expected the record to be rejected');
}

/** Fixtures are mutated freely in tests: any path, any value. */
// biome-ignore lint/suspicious/noExplicitAny: test-only free-form mutation of JSON fixtures
type Loose = Record<string, any>;

/** A deep copy of a fixture with `mutate` applied. */
function variant(format: FormatName, name: string, mutate: (r: Loose) => void): unknown {
  const r = structuredClone(fixture(format, name)) as Loose;
  mutate(r);
  return r;
}

describe('fixtures', () => {
  it('covers every format with at least two fixtures, and every fixture has an expectation', () => {
    for (const f of FORMATS) expect(fixtures.filter((x) => x.format === f).length).toBeGreaterThanOrEqual(2);
    expect(fixtures.map((f) => `${f.format}/${f.name}`).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it('covers a non-human identity in every format', async () => {
    for (const f of FORMATS) {
      const types = fixtures
        .filter((x) => x.format === f)
        .map((x) => EXPECTED[`${x.format}/${x.name}`]!.identity.type);
      expect(
        types.some((t) => t !== 'human'),
        f,
      ).toBe(true);
    }
  });

  for (const f of fixtures) {
    const key = `${f.format}/${f.name}`;
    it(`${key} normalizes to the expected detection`, async () => {
      const d = await normalize(f.record);
      expect(NormalizedDetection.parse(d)).toEqual(d);
      expect({
        id: d.id,
        source: d.source,
        kind: d.kind,
        confidence: d.confidence,
        severity: d.severity,
        identity: d.identity,
        occurredAt: d.occurredAt,
      }).toEqual(EXPECTED[key]);
      expect(d.raw).toEqual(f.record);
      expect(d.title).toBeTruthy();
    });

    it(`${key} is auto-detected as ${f.format}`, () => {
      expect(detectFormat(f.record)).toBe(f.format);
    });

    it(`${key} normalizes the same with format forced`, async () => {
      expect(await normalize(f.record, { format: f.format })).toEqual(await normalize(f.record));
    });
  }
});

describe('detectFormat on junk', () => {
  it.each([
    ['null', null],
    ['number', 42],
    ['boolean', true],
    ['plain string', 'hello world'],
    ['array', [1, 2, 3]],
    ['empty object', {}],
    ['unrelated object', { foo: 'bar', id: 1 }],
    ['other OCSF class', { class_uid: 3002, finding_info: { uid: 'x' } }],
    ['two-segment token', 'abc.def'],
    [
      'EventBridge event of another type',
      { 'detail-type': 'EC2 Instance State-change Notification', source: 'aws.ec2', detail: {} },
    ],
  ])('%s → undefined', (_name, rec) => {
    expect(detectFormat(rec)).toBeUndefined();
  });
});

describe('evidence', () => {
  it('OCSF carries the IP, country, user agent, rule and techniques', async () => {
    const d = await normalize(fixture('ocsf', 'human-impossible-travel.json'));
    expect(d.evidence).toMatchObject({
      ip: '203.0.113.45',
      country: 'SG',
      city: 'Singapore',
      ruleName: 'Impossible travel',
      mitreTechniques: ['T1078.004'],
      url: 'https://analytics.example.com/findings/f-7c1e2b9a',
    });
    expect(d.evidence.userAgent).toMatch(/^Mozilla\/5\.0/);
  });

  it('Okta carries client IP, geography, user agent, outcome, and the ThreatInsight / risk debug data', async () => {
    const d = await normalize(fixture('okta', 'user-sign-on-threat-suspected.json'));
    expect(d.evidence).toMatchObject({
      ip: '203.0.113.131',
      country: 'Nigeria',
      city: 'Lagos',
      userAgent: 'python-requests/2.31.0',
      outcome: 'DENY',
      threatSuspected: true,
      risk: '{reasons=Anomalous Device, Anomalous Location, level=HIGH}',
      isProxy: true,
      ruleName: 'policy.evaluate_sign_on',
    });
    const reported = await normalize(fixture('okta', 'user-report-suspicious.json'));
    expect(reported.evidence).toMatchObject({
      reportedEventType: 'system.email.new_device_notification.sent_message',
      reportedIp: '198.51.100.201',
    });
  });

  it('GuardDuty carries the API call, remote IP and country', async () => {
    const d = await normalize(fixture('guardduty', 'role-instance-credential-exfiltration.json'));
    expect(d.evidence).toMatchObject({
      ruleName: 'UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS',
      api: 'ListBuckets',
      ip: '198.51.100.99',
      country: 'NL',
      account: '123456789012',
      region: 'eu-west-1',
      guardDutySeverity: 8,
      count: 7,
    });
  });

  it('Entra carries the location, user agent from additionalInfo, and risk state', async () => {
    const d = await normalize(fixture('entra_risk', 'user-unfamiliar-features.json'));
    expect(d.evidence).toMatchObject({
      ip: '203.0.113.89',
      country: 'US',
      city: 'Seattle',
      riskLevel: 'medium',
      riskState: 'atRisk',
      userAgent: expect.stringMatching(/^Mozilla\/5\.0 \(Windows NT 10\.0/),
    });
    const sp = await normalize(fixture('entra_risk', 'service-principal-leaked-credentials.json'));
    expect(sp.evidence).toMatchObject({
      url: 'https://github.com/example/payments/blob/main/config/app.env',
      keyIds: ['a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d'],
    });
  });

  it('Graph alert carries IP evidence and the portal URL', async () => {
    const d = await normalize(fixture('graph_alert', 'user-atypical-travel.json'));
    expect(d.evidence).toMatchObject({
      ip: '203.0.113.200',
      country: 'BR',
      category: 'InitialAccess',
      mitreTechniques: ['T1078'],
    });
    expect(d.evidence.url).toMatch(/^https:\/\/security\.microsoft\.com\/alerts\//);
  });

  it('GitHub carries the alert URL, validity and public-leak flag', async () => {
    const d = await normalize(fixture('github_secret_scanning', 'validated-slack-token-public.json'));
    expect(d.evidence).toMatchObject({
      url: 'https://github.com/octo-org/chatops-bot/security/secret-scanning/7',
      validity: 'unknown',
      publiclyLeaked: true,
      pushProtectionBypassed: true,
      action: 'validated',
    });
  });

  it('Splunk carries the source IP, security domain, urgency and results link', async () => {
    const d = await normalize(fixture('splunk_notable', 'webhook-improbable-access.json'));
    expect(d.evidence).toMatchObject({
      ip: '203.0.113.45',
      securityDomain: 'access',
      urgency: 'high',
      riskScore: 80,
    });
    expect(d.evidence.url).toMatch(/^https:\/\/splunk\.example\.com/);
  });

  it('Elastic carries source IP, country, user agent, rule id and techniques', async () => {
    const d = await normalize(fixture('elastic', 'okta-mfa-bombing-flat.json'));
    expect(d.evidence).toMatchObject({
      ip: '203.0.113.77',
      country: 'RO',
      ruleId: 'a9b05f4d-6c2a-4a1b-9f7e-3c2d1e0f9a8b',
      mitreTechniques: ['T1621'],
      riskScore: 73,
    });
  });

  it('SET carries the event type, reasons and the unverified-signature mark', async () => {
    const d = await normalize(fixture('set', 'caep-session-revoked-complex.json'));
    expect(d.evidence).toMatchObject({
      signatureVerified: false,
      eventType: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
      reasonAdmin: 'Landspeed Policy Violation: C076E82F',
      reasonUser: 'Access attempt from multiple regions.',
      initiatingEntity: 'policy',
      txn: '8675309',
    });
    const compact = await normalize(fixture('set', 'risc-credential-change-required-compact.json'));
    expect(compact.evidence).toMatchObject({ signatureVerified: false, alg: 'none' });
  });
});

describe('format variants', () => {
  it('Elastic: flat, nested, mixed and `fields`-API shapes of one alert normalize alike', async () => {
    const flat = {
      '@timestamp': '2024-06-03T09:12:44.118Z',
      'kibana.alert.uuid': 'u-1',
      'kibana.alert.rule.name': 'Okta User Session Impersonation',
      'kibana.alert.severity': 'high',
      'kibana.alert.risk_score': 73,
      'user.name': 'bob@example.com',
      'user.id': '00u2',
      'event.module': 'okta',
    };
    const nested = {
      '@timestamp': '2024-06-03T09:12:44.118Z',
      kibana: {
        alert: {
          uuid: 'u-1',
          severity: 'high',
          risk_score: 73,
          rule: { name: 'Okta User Session Impersonation' },
        },
      },
      user: { name: 'bob@example.com', id: '00u2' },
      event: { module: 'okta' },
    };
    const mixed = {
      '@timestamp': '2024-06-03T09:12:44.118Z',
      kibana: {
        'alert.uuid': 'u-1',
        alert: { 'rule.name': 'Okta User Session Impersonation', severity: 'high' },
        'alert.risk_score': 73,
      },
      'user.name': 'bob@example.com',
      user: { id: '00u2' },
      'event.module': 'okta',
    };
    const fields = { _id: 'u-1', fields: Object.fromEntries(Object.entries(flat).map(([k, v]) => [k, [v]])) };
    const a = await normalize(flat);
    for (const shape of [nested, mixed, fields]) {
      const b = await normalize(shape);
      expect({ ...b, raw: undefined }).toEqual({ ...a, raw: undefined });
    }
    expect(a.kind).toBe('privilege_escalation');
    expect(a.identity).toEqual({
      provider: 'okta',
      id: '00u2',
      type: 'human',
      displayName: 'bob@example.com',
    });
  });

  it('GuardDuty: a bare finding (no EventBridge envelope) normalizes like the enveloped one', async () => {
    const env = fixture('guardduty', 'role-instance-credential-exfiltration.json') as { detail: unknown };
    expect(detectFormat(env.detail)).toBe('guardduty');
    const a = await normalize(env);
    const b = await normalize(env.detail);
    expect({ ...b, raw: undefined }).toEqual({ ...a, raw: undefined });
  });

  it('GuardDuty: root and federated users, and EC2 findings through the instance profile', async () => {
    const root = await normalize(
      variant('guardduty', 'iam-user-console-login.json', (r) => {
        r.detail.resource.accessKeyDetails = {
          principalId: '123456789012',
          userName: 'Root',
          userType: 'Root',
        };
      }),
    );
    expect(root.identity).toMatchObject({ id: 'arn:aws:iam::123456789012:root', type: 'human' });
    const ec2 = await normalize(
      variant('guardduty', 'iam-user-console-login.json', (r) => {
        r.detail.type = 'Backdoor:EC2/C&CActivity.B';
        r.detail.severity = 8;
        r.detail.resource = {
          resourceType: 'Instance',
          instanceDetails: {
            instanceId: 'i-0abc',
            iamInstanceProfile: { arn: 'arn:aws:iam::123456789012:instance-profile/web', id: 'AIPA' },
          },
        };
      }),
    );
    expect(ec2.identity).toMatchObject({
      id: 'arn:aws:iam::123456789012:instance-profile/web',
      type: 'workload',
      displayName: 'i-0abc',
    });
    expect(ec2.kind).toBe('other');
    expect(ec2.severity).toBe('high');
  });

  it('GuardDuty severity bands: 1–3.9 low, 4–6.9 medium, 7–8.9 high, 9–10 critical', async () => {
    const sev = async (n: number) =>
      (await normalize(variant('guardduty', 'iam-user-console-login.json', (r) => (r.detail.severity = n))))
        .severity;
    expect([
      await sev(2),
      await sev(3.9),
      await sev(4),
      await sev(6.9),
      await sev(7),
      await sev(8.9),
      await sev(9),
      await sev(10),
    ]).toEqual(['low', 'low', 'medium', 'medium', 'high', 'high', 'critical', 'critical']);
  });

  it('Entra: risk state overrides the level (confirmed compromised, dismissed, remediated)', async () => {
    const with_ = async (riskState: string) =>
      normalize(variant('entra_risk', 'user-unlikely-travel.json', (r) => (r.riskState = riskState)));
    expect(await with_('confirmedCompromised')).toMatchObject({ confidence: 0.99, severity: 'critical' });
    expect(await with_('dismissed')).toMatchObject({ confidence: 0.05 });
    expect(await with_('confirmedSafe')).toMatchObject({ confidence: 0.02 });
    expect(await with_('remediated')).toMatchObject({ confidence: 0.5 });
    const report = await normalize(
      variant(
        'entra_risk',
        'user-unlikely-travel.json',
        (r) => (r.riskEventType = 'userReportedSuspiciousActivity'),
      ),
    );
    expect(report.kind).toBe('mfa_fatigue');
    const token = await normalize(
      variant('entra_risk', 'user-unlikely-travel.json', (r) => (r.riskEventType = 'anomalousToken')),
    );
    expect(token.kind).toBe('anomalous_token_use');
  });

  it('Graph alert: classification and determination override severity-based confidence', async () => {
    const fp = await normalize(
      variant('graph_alert', 'user-atypical-travel.json', (r) => (r.classification = 'falsePositive')),
    );
    expect(fp.confidence).toBe(0.05);
    const comp = await normalize(
      variant('graph_alert', 'user-atypical-travel.json', (r) => (r.determination = 'compromisedAccount')),
    );
    expect(comp.confidence).toBe(0.95);
  });

  it('GitHub: a resolved alert is informational; inactive secrets are low', async () => {
    const resolved = await normalize(
      variant('github_secret_scanning', 'created-pat-active.json', (r) => {
        r.action = 'resolved';
        r.alert.resolution = 'false_positive';
        r.alert.updated_at = '2024-06-13T09:00:00Z';
      }),
    );
    expect(resolved).toMatchObject({
      id: 'octo-org/payments-service/secret-scanning/42:resolved',
      confidence: 0.05,
      severity: 'info',
      occurredAt: '2024-06-13T09:00:00.000Z',
    });
    const inactive = await normalize(
      variant('github_secret_scanning', 'created-pat-active.json', (r) => (r.alert.validity = 'inactive')),
    );
    expect(inactive).toMatchObject({ confidence: 0.3, severity: 'low' });
  });

  it('Okta: a sign-on evaluation without a threat flag is informational', async () => {
    const d = await normalize(
      variant('okta', 'user-sign-on-threat-suspected.json', (r) => {
        r.debugContext.debugData = { threatSuspected: 'false' };
      }),
    );
    expect(d).toMatchObject({ kind: 'other', confidence: 0.05, severity: 'info' });
  });

  it('Okta: a system event names its user through target[]', async () => {
    const d = await normalize(
      variant('okta', 'user-session-roaming.json', (r) => {
        r.actor = { id: '0oa1sys', type: 'SystemPrincipal', alternateId: 'system@okta.com' };
        r.target = [{ id: '00u9target', type: 'User', alternateId: 'target@example.com' }];
      }),
    );
    expect(d.identity).toEqual({
      provider: 'okta',
      id: '00u9target',
      type: 'human',
      displayName: 'target@example.com',
    });
  });

  it('Splunk: a bare row and its webhook envelope normalize to the same detection', async () => {
    const env = fixture('splunk_notable', 'webhook-improbable-access.json') as {
      result: Record<string, unknown>;
    };
    const bare = await normalize(env.result);
    const wrapped = await normalize(env);
    expect({
      ...bare,
      raw: undefined,
      evidence: { ...bare.evidence, url: undefined, sid: undefined },
    }).toEqual({
      ...wrapped,
      raw: undefined,
      evidence: { ...wrapped.evidence, url: undefined, sid: undefined },
    });
  });

  it('Splunk: urgency maps to severity; Security Content confidence (0–100) is used when present', async () => {
    const d = await normalize(
      variant('splunk_notable', 'bare-assumed-role-discovery.json', (r) => {
        r.urgency = 'critical';
        r.confidence = '90';
      }),
    );
    expect(d).toMatchObject({ severity: 'critical', confidence: 0.9 });
  });

  it('OCSF: a user with type_id 4 (Service) is a service account; an app actor is an OAuth app', async () => {
    const svc = await normalize(
      variant('ocsf', 'human-impossible-travel.json', (r) => (r.actor.user.type_id = 4)),
    );
    expect(svc.identity.type).toBe('service_account');
    const app = await normalize(
      variant('ocsf', 'human-impossible-travel.json', (r) => {
        r.actor = { app_uid: '0oa4svc', app_name: 'billing-sync', idp: { name: 'Okta' } };
      }),
    );
    expect(app.identity).toEqual({
      provider: 'okta',
      id: '0oa4svc',
      type: 'oauth_app',
      displayName: 'billing-sync',
    });
  });

  it('OCSF: confidence_id maps when no confidence_score; severity_id 6 (Fatal) is critical', async () => {
    const d = await normalize(
      variant('ocsf', 'human-impossible-travel.json', (r) => {
        delete r.confidence_score;
        r.confidence_id = 1;
        r.severity_id = 6;
      }),
    );
    expect(d).toMatchObject({ confidence: 0.35, severity: 'critical' });
  });
});

describe('untrusted keys', () => {
  it('values such as constructor / toString / __proto__ never resolve to prototype members of the mapping tables', async () => {
    const entra = await normalize(
      variant('entra_risk', 'user-unlikely-travel.json', (r) => {
        r.riskEventType = 'constructor';
        r.riskLevel = 'toString';
      }),
    );
    expect(entra).toMatchObject({ kind: 'other', confidence: 0.6, severity: 'medium' });
    const okta = await normalize(
      variant('okta', 'user-deny-push.json', (r) => (r.eventType = 'constructor')),
    );
    expect(okta).toMatchObject({ kind: 'other', confidence: 0.05 });
    const graph = await normalize(
      variant('graph_alert', 'user-atypical-travel.json', (r) => (r.severity = 'hasOwnProperty')),
    );
    expect(graph).toMatchObject({ severity: 'medium', confidence: 0.5 });
    const set = await normalize(
      {
        iss: 'https://idp.example.com/',
        jti: 'p',
        iat: 1718186400,
        sub: 'u',
        events: { __proto__x: {}, constructor: {} },
      },
      { format: 'set' },
    );
    expect(set).toMatchObject({ kind: 'other', confidence: 0.3 });
  });
});

describe('rejections name the problem', () => {
  it('not an object', async () => {
    for (const rec of [42, null, true, [1, 2]]) {
      expect((await rejection(rec)).message).toMatch(/not a JSON object/);
    }
    expect((await rejection([{}], { format: 'okta' })).message).toMatch(/not a JSON object \(got array\)/);
  });

  it('unrecognized shape', async () => {
    expect((await rejection({ hello: 'world' })).message).toMatch(/unrecognized record/);
  });

  it('missing identity, per format, listing the fields looked at', async () => {
    const ocsf = await rejection(variant('ocsf', 'human-impossible-travel.json', (r) => delete r.actor));
    expect(ocsf.message).toMatch(/^ocsf: missing identity: none of actor\.user\.uid, actor\.user\.uid_alt/);
    expect(ocsf.details).toMatchObject({ format: 'ocsf' });

    const elastic = await rejection(variant('elastic', 'okta-mfa-bombing-flat.json', (r) => delete r.user));
    expect(elastic.message).toMatch(/missing identity: none of user\.id, user\.email, user\.name/);

    const graph = await rejection(
      variant('graph_alert', 'user-atypical-travel.json', (r) => (r.evidence = [])),
    );
    expect(graph.message).toMatch(/missing identity: no evidence\[\] of @odata\.type userEvidence/);

    const entra = await rejection(
      variant('entra_risk', 'user-unfamiliar-features.json', (r) => {
        delete r.userId;
        delete r.userPrincipalName;
      }),
    );
    expect(entra.message).toMatch(
      /missing identity: none of userId, userPrincipalName, servicePrincipalId, appId/,
    );

    const okta = await rejection(
      variant('okta', 'user-deny-push.json', (r) => {
        r.eventType = 'security.threat.detected';
        r.actor = { id: 'unknown', type: 'SystemPrincipal', alternateId: 'unknown' };
        r.target = null;
      }),
    );
    expect(okta.message).toMatch(/security\.threat\.detected names no user \(actor\.type=SystemPrincipal\)/);

    const gd = await rejection(
      variant(
        'guardduty',
        'iam-user-console-login.json',
        (r) => (r.detail.resource = { resourceType: 'S3Bucket' }),
      ),
    );
    expect(gd.message).toMatch(/missing identity: none of detail\.resource\.accessKeyDetails/);

    const splunk = await rejection(
      variant('splunk_notable', 'bare-assumed-role-discovery.json', (r) => {
        delete r.user;
        delete r.risk_object;
      }),
    );
    expect(splunk.message).toMatch(/missing identity: none of src_user, user, risk_object/);

    const set = await rejection(
      variant('set', 'risc-credential-compromise-email.json', (r) => delete r.sub_id),
    );
    expect(set.message).toMatch(/missing identity: none of sub_id, events\[…\]\.subject, sub present/);
  });

  it('wrong types', async () => {
    expect(
      (await rejection(variant('ocsf', 'human-impossible-travel.json', (r) => (r.time = 'yesterday'))))
        .message,
    ).toMatch(/invalid time: 'yesterday' is not a timestamp/);
    expect(
      (await rejection(variant('entra_risk', 'user-unfamiliar-features.json', (r) => (r.riskLevel = 3))))
        .message,
    ).toMatch(/invalid riskLevel: expected string, got number/);
    expect(
      (
        await rejection(
          variant('guardduty', 'iam-user-console-login.json', (r) => (r.detail.severity = 'high')),
        )
      ).message,
    ).toMatch(/invalid detail\.severity: expected number, got string 'high'/);
    expect(
      (await rejection(variant('guardduty', 'iam-user-console-login.json', (r) => (r.detail.severity = 12))))
        .message,
    ).toMatch(/detail\.severity: 12 outside 0–10/);
    expect(
      (await rejection(variant('okta', 'user-deny-push.json', (r) => (r.client = 'web')))).message,
    ).toMatch(/invalid client: expected object, got string/);
    expect(
      (
        await rejection(
          variant('graph_alert', 'user-atypical-travel.json', (r) => (r.evidence = { a: 1 })),
          { format: 'graph_alert' },
        )
      ).message,
    ).toMatch(/invalid evidence: expected array, got object/);
    expect(
      (
        await rejection(
          variant('github_secret_scanning', 'created-pat-active.json', (r) => (r.alert.number = 'x')),
        )
      ).message,
    ).toMatch(/invalid alert\.number: expected number/);
    expect(
      (
        await rejection(
          variant('set', 'risc-credential-compromise-email.json', (r) => (r.events = 'x')),
          { format: 'set' },
        )
      ).message,
    ).toMatch(/invalid events: expected object, got string/);
  });

  it('missing ids and times', async () => {
    expect(
      (await rejection(variant('ocsf', 'human-impossible-travel.json', (r) => delete r.finding_info.uid)))
        .message,
    ).toMatch(/missing finding_info\.uid/);
    expect(
      (
        await rejection(
          variant('okta', 'user-deny-push.json', (r) => delete r.published),
          { format: 'okta' },
        )
      ).message,
    ).toMatch(/missing published/);
    expect(
      (await rejection(variant('set', 'risc-credential-compromise-email.json', (r) => delete r.jti))).message,
    ).toMatch(/missing jti/);
  });

  it('a forced format that does not fit the record', async () => {
    const err = await rejection(fixture('okta', 'user-deny-push.json'), { format: 'guardduty' });
    expect(err.message).toMatch(/^guardduty: missing id/);
  });
});
