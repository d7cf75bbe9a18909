/**
 * `tourniquet policy validate --providers` over the SaaS example providers files (examples/providers/
 * github, okta, entra, google): each example policy fits its providers file; the default policy does not,
 * and every refusal names the rule, the stage and the provider; an automatic irreversible stage without
 * `irreversible: accept` is refused with the provider's own reason.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('SaaS example providers files', () => {
  test.each(['github', 'okta', 'entra', 'google'])(
    'examples/providers/%s-policy.yaml fits %s.yaml',
    (name) => {
      const providers = `examples/providers/${name}.yaml`;
      const r = validate(`examples/providers/${name}-policy.yaml`, providers);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`fits the providers in ${providers}`);
    },
  );

  test('the default policy against GitHub: what GitHub cannot do and what it cannot undo, by rule', () => {
    const r = validate('policies/default.yaml', 'examples/providers/github.yaml');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /rule stolen-token stage 1: revoke_tokens is auto but github cannot undo it \(GitHub cannot reactivate/,
    );
    expect(r.err).toMatch(/rule leaked-secret stage 1: github cannot perform rotate_credential/);
    expect(r.err).toMatch(/rule known-compromise stage 1: github cannot perform revoke_sessions/);
  });

  test('the default policy against Okta: an automatic password expiry is refused (Okta cannot un-expire)', () => {
    const r = validate('policies/default.yaml', 'examples/providers/okta.yaml');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /rule stolen-token stage 2: force_step_up is auto but okta cannot undo it \(Okta cannot un-expire/,
    );
    expect(r.err).toMatch(/rule leaked-secret stage 2: okta cannot perform disable_service_account/);
  });

  test('without irreversible: accept, the automatic GitHub token revocation is refused by name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-saas-validate-'));
    const policy = join(dir, 'github-policy.yaml');
    const text = readFileSync('examples/providers/github-policy.yaml', 'utf8');
    expect(text).toContain('irreversible: accept');
    writeFileSync(policy, text.replace(/\n\s+irreversible: accept/, ''));
    const r = validate(policy, 'examples/providers/github.yaml');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /rule github-leaked-token stage 1: revoke_tokens is auto but github cannot undo it/,
    );
  });

  test('Entra and Google: the default policy names each action they lack', () => {
    for (const name of ['entra', 'google']) {
      const r = validate('policies/default.yaml', `examples/providers/${name}.yaml`);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`rule stolen-token stage 1: ${name} cannot perform revoke_tokens`);
      expect(r.err).toContain(`rule privilege-escalation stage 1: ${name} cannot perform quarantine`);
    }
  });
});
