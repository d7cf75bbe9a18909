/**
 * `tourniquet policy validate --providers`: each example providers file (examples/providers/) checked
 * against the policy it is meant for, and the refusals named by rule and provider.
 */
import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { capabilitiesOf, loadProvidersConfig } from '../../../app/providers-config.ts';
import { runPolicyValidate } from './cli.ts';

function sink(): Writable & { text: string } {
  const w = new Writable({
    write(chunk, _enc, cb) {
      w.text += String(chunk);
      cb();
    },
  }) as Writable & { text: string };
  w.text = '';
  return w;
}

function validate(policy: string, providers: string) {
  const out = sink();
  const err = sink();
  const code = runPolicyValidate(policy, out, err, {
    source: providers,
    capabilities: capabilitiesOf(loadProvidersConfig(providers, {})),
  });
  return { code, out: out.text, err: err.text };
}

describe('policy validate --providers', () => {
  test.each([
    ['policies/default.yaml', 'examples/providers/keycloak.yaml'],
    ['policies/default.yaml', 'examples/providers/webhook.yaml'],
    ['policies/default.yaml', 'examples/providers/dry-run.yaml'],
    ['examples/providers/aws-policy.yaml', 'examples/providers/aws.yaml'],
  ])('%s fits %s', (policy, providers) => {
    const r = validate(policy, providers);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`fits the providers in ${providers}`);
  });

  test('the default policy against AWS: every automatic irreversible stage and every action AWS cannot do, by rule', () => {
    const r = validate('policies/default.yaml', 'examples/providers/aws.yaml');
    expect(r.code).toBe(1);
    const lines = r.err
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
    // Automatic revoke_sessions on AWS (the token-issue-time deny) without irreversible: accept.
    expect(lines.filter((l) => l.includes('cannot undo it')).map((l) => l.split(':')[0])).toEqual([
      'rule known-compromise stage 1',
      'rule mfa-fatigue stage 1',
    ]);
    expect(
      lines.some((l) =>
        /^rule known-compromise stage 1: revoke_sessions is auto but aws cannot undo it/.test(l),
      ),
    ).toBe(true);
    // Actions IAM has no counterpart for, named with the rule and the provider.
    expect(lines.filter((l) => l.includes('cannot perform')).map((l) => l.split(';')[0])).toEqual([
      'rule stolen-token stage 2: aws cannot perform force_step_up',
      'rule leaked-secret stage 1: aws cannot perform rotate_credential',
      'rule oauth-app-abuse stage 1: aws cannot perform revoke_oauth_grant',
      'rule mfa-fatigue stage 2: aws cannot perform force_step_up',
    ]);
    // The dry-run fallback can do everything: it is never named.
    expect(r.err).not.toContain('dry-run');
  });

  test('rules narrowed to a provider (identities.providers) are checked only against it', () => {
    const r = validate('examples/providers/aws-policy.yaml', 'examples/providers/keycloak.yaml');
    // The AWS rules only reach identities of provider "aws": here the '*' dry run, which can do all.
    expect(r.code).toBe(0);
  });
});
