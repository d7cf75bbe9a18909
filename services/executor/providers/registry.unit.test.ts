/** The provider registry: definitions are consistent, and the providers file builds any of them by `type`. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { buildProviders, parseProvidersConfig } from '../../../app/providers-config.ts';
import { ACTION_TYPES } from '../../../schemas/events.ts';
import { capabilityOf, PROVIDERS, providerDefinition } from './index.ts';

describe('provider registry', () => {
  test.each(PROVIDERS.map((p) => [p.name, p] as const))(
    '%s: every declared action is a Tourniquet action and states its residue honestly',
    (_name, def) => {
      const declared = Object.entries(def.actions);
      expect(declared.length).toBeGreaterThan(0);
      for (const [action, cap] of declared) {
        expect(ACTION_TYPES).toContain(action);
        // "reversible" means nothing is left behind; anything less must say what is.
        if (cap!.reversibility === 'reversible') expect(cap!.residue).toEqual([]);
        else expect(cap!.residue.length).toBeGreaterThan(0);
        for (const r of cap!.residue) expect(r.trim().length).toBeGreaterThan(10);
      }
    },
  );

  test('lookups: by type, and by (type, action)', () => {
    expect(providerDefinition('keycloak')?.name).toBe('keycloak');
    expect(providerDefinition('nope')).toBeUndefined();
    expect(capabilityOf('keycloak', 'revoke_sessions')?.reversibility).toBe('partially');
    expect(capabilityOf('keycloak', 'rotate_credential')?.reversibility).toBe('irreversible');
    expect(capabilityOf('dry-run', 'disable_account')).toEqual({ reversibility: 'reversible', residue: [] });
    expect(capabilityOf('nope', 'revoke_sessions')).toBeUndefined();
  });

  test('an unknown type is refused naming the entry and the registered types', () => {
    expect(() => parseProvidersConfig({ providers: { x: { type: 'nope' } } }, { env: {} })).toThrow(
      /providers\.x\.type.*unknown provider type "nope".*keycloak/,
    );
  });

  test('secrets from an environment variable (…Env), read when the provider is built, never kept in the config', () => {
    const config = parseProvidersConfig(
      {
        providers: {
          hook: { type: 'webhook', url: 'http://127.0.0.1:9/hook', secretEnv: 'TQ_TEST_HOOK_SECRET' },
        },
      },
      { env: {} },
    );
    expect(JSON.stringify(config)).not.toContain('0123456789abcdef');
    const d = mkdtempSync(join(tmpdir(), 'tq-registry-'));
    expect(() => buildProviders(config, d)).toThrow(/TQ_TEST_HOOK_SECRET is not set/);
    process.env.TQ_TEST_HOOK_SECRET = '0123456789abcdef0123';
    try {
      expect(buildProviders(config, d).hook!.name).toBe('hook');
    } finally {
      delete process.env.TQ_TEST_HOOK_SECRET;
    }
  });

  test('a dry-run journal lives in the data dir', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tq-registry-'));
    writeFileSync(join(d, 'j.jsonl'), '');
    const providers = buildProviders(
      parseProvidersConfig({ providers: { '*': { type: 'dry-run', journal: 'j.jsonl' } } }, { env: {} }),
      d,
    );
    expect(providers['*']!.name).toBe('dry-run');
    await providers['*']!.capture({
      actionId: 'a1',
      action: 'revoke_sessions',
      identity: { provider: 'okta', id: 'u1', type: 'human' },
      args: {},
    });
    expect(readFileSync(join(d, 'j.jsonl'), 'utf8')).toContain('"actionId":"a1"');
  });
});
