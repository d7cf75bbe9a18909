/**
 * The rule-name table (brute force / password spray followed by a success → credential_abuse) and
 * a leaked cloud access key named by its key id.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { githubSecretScanning } from './github-secret-scanning.ts';
import { CREDENTIAL_ABUSE_RULE_NAMES, kindFromRuleName } from './rule-names.ts';
import { kindFromText } from './util.ts';

describe('SIEM rule names that mean credential abuse', () => {
  it.each(CREDENTIAL_ABUSE_RULE_NAMES.map((r) => [r.siem, r.example]))('%s: "%s"', (_siem, example) => {
    expect(kindFromRuleName(example)).toBe('credential_abuse');
  });

  it('names the generic patterns would call other are now credential abuse', () => {
    for (const name of [
      'Access - Excessive Failed Logins - Rule',
      'Failed logon attempts followed by a successful logon',
    ]) {
      expect(kindFromText(name)).toBeUndefined();
      expect(kindFromRuleName(name)).toBe('credential_abuse');
    }
  });

  it('leaves other rule names to the generic patterns', () => {
    for (const name of ['Okta MFA push denied', 'Impossible travel activity', 'Unusual API call volume']) {
      expect(kindFromRuleName(name)).toBeUndefined();
    }
  });
});

describe('a leaked cloud access key', () => {
  const fixture = JSON.parse(
    readFileSync(
      new URL('./fixtures/github_secret_scanning/created-pat-active.json', import.meta.url),
      'utf8',
    ),
  );

  it('is named by its key id (provider aws, as GuardDuty names a long-term key), never by the secret', async () => {
    const record = {
      ...fixture,
      alert: {
        ...fixture.alert,
        secret_type: 'aws_access_key_id',
        secret_type_display_name: 'Amazon AWS Access Key ID',
        secret: 'AKIAIOSFODNN7EXAMPLE',
      },
    };
    const d = await githubSecretScanning.normalize(record, {});
    expect(d.identity).toMatchObject({ provider: 'aws', id: 'AKIAIOSFODNN7EXAMPLE', type: 'api_key' });
  });

  it('other secrets keep their GitHub alert identity', async () => {
    const d = await githubSecretScanning.normalize(fixture, {});
    expect(d.identity).toMatchObject({
      provider: 'github',
      id: 'github_personal_access_token:octo-org/payments-service#42',
    });
  });
});
