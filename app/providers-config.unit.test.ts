/** app/providers-config.ts: YAML + env → validated config → providers keyed by IdentityRef.provider. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { TourniquetError } from '../platform/errors.ts';
import { DryRunProvider } from '../services/executor/providers/dry-run.ts';
import { KeycloakProvider } from '../services/executor/providers/keycloak.ts';
import { WebhookProvider } from '../services/executor/providers/webhook.ts';
import {
  buildProviders,
  executorTuning,
  loadProvidersConfig,
  parseProvidersConfig,
  providersConfigFromEnv,
} from './providers-config.ts';

const dir = () => mkdtempSync(join(tmpdir(), 'tq-providers-'));

function invalid(fn: () => unknown): TourniquetError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TourniquetError);
    expect((e as TourniquetError).code).toBe('CONFIG_INVALID');
    return e as TourniquetError;
  }
  throw new Error('expected CONFIG_INVALID');
}

describe('provider configuration', () => {
  test('a YAML file with env interpolation and secret files builds one provider per name', () => {
    const d = dir();
    writeFileSync(join(d, 'hook.secret'), 'a-webhook-secret-of-32-characters\n');
    const file = join(d, 'providers.yaml');
    writeFileSync(
      file,
      `providers:
  keycloak:
    type: keycloak
    baseUrl: \${KC_URL:-http://127.0.0.1:18080}
    username: admin
    password: \${KC_PASSWORD}
    defaultRealm: acme
    timeoutMs: 5000
  okta:
    type: webhook
    url: https://soar.example/tourniquet
    secretFile: hook.secret
    actions: [revoke_sessions, disable_account]
  "*":
    type: dry-run
executor:
  retry: { maxAttempts: 3, initialDelayMs: 100 }
  breaker: { consecutiveFailures: 4, halfOpenAfterMs: 2000 }
  leaseMs: 30000
  concurrency: 4
`,
    );
    const config = loadProvidersConfig(file, { KC_PASSWORD: 's3cret' });
    expect(config.providers.keycloak).toMatchObject({
      baseUrl: 'http://127.0.0.1:18080',
      password: 's3cret',
      adminRealm: 'master',
    });
    expect(config.providers.okta).toMatchObject({ secretFile: join(d, 'hook.secret') });
    expect(executorTuning(config)).toEqual({
      retry: { maxAttempts: 3, initialDelayMs: 100 },
      breaker: { consecutiveFailures: 4, halfOpenAfterMs: 2000 },
      leaseMs: 30000,
      concurrency: 4,
    });

    const providers = buildProviders(config, d);
    expect(providers.keycloak).toBeInstanceOf(KeycloakProvider);
    expect(providers.keycloak!.name).toBe('keycloak');
    expect(providers.okta).toBeInstanceOf(WebhookProvider);
    expect(providers.okta!.name).toBe('okta');
    expect(providers.okta!.supports('revoke_sessions')).toBe(true);
    expect(providers.okta!.supports('rotate_credential')).toBe(false);
    expect(providers['*']).toBeInstanceOf(DryRunProvider);
    expect(providers['*']!.name).toBe('dry-run');
  });

  test('a missing variable, a typo and incomplete credentials are refused with the field named', () => {
    const e1 = invalid(() =>
      parseProvidersConfig(
        {
          providers: {
            keycloak: {
              type: 'keycloak',
              baseUrl: 'http://kc',
              username: 'admin',
              password: ['$', '{NOPE}'].join(''),
            },
          },
        },
        { env: {} },
      ),
    );
    expect(e1.message).toContain('NOPE');
    const e2 = invalid(() =>
      parseProvidersConfig(
        { providers: { keycloak: { type: 'keycloak', baseUrl: 'http://kc', usrname: 'admin' } } },
        { env: {} },
      ),
    );
    expect(e2.message).toMatch(/usrname|Unrecognized/);
    const e3 = invalid(() =>
      parseProvidersConfig(
        { providers: { keycloak: { type: 'keycloak', baseUrl: 'http://kc' } } },
        { env: {} },
      ),
    );
    expect(e3.message).toContain('username + password');
    const e4 = invalid(() =>
      parseProvidersConfig(
        { providers: { hook: { type: 'webhook', url: 'http://x', secret: 'short' } } },
        { env: {} },
      ),
    );
    expect(e4.message).toContain('16 characters');
    const e5 = invalid(() => parseProvidersConfig({ providers: { x: { type: 'okta' } } }, { env: {} }));
    expect(e5.message).toContain('providers.x');
    invalid(() => parseProvidersConfig({ providers: {} }, { env: {} }));
  });

  test('client_credentials credentials and a custom event name', () => {
    const config = parseProvidersConfig(
      {
        providers: {
          'kc-eu': {
            type: 'keycloak',
            name: 'keycloak-eu',
            baseUrl: 'https://kc.eu',
            clientId: 'tourniquet',
            clientSecret: 'x',
          },
        },
      },
      { env: {} },
    );
    expect(buildProviders(config, dir())['kc-eu']!.name).toBe('keycloak-eu');
  });

  test('from the environment alone', () => {
    expect(providersConfigFromEnv({})).toBeNull();
    const config = providersConfigFromEnv({
      TOURNIQUET_KEYCLOAK_URL: 'http://127.0.0.1:18080',
      TOURNIQUET_KEYCLOAK_USERNAME: 'admin',
      TOURNIQUET_KEYCLOAK_PASSWORD: 'admin',
      TOURNIQUET_KEYCLOAK_PROVIDER: 'kc',
      TOURNIQUET_PROVIDERS_FALLBACK: 'dry-run',
    });
    expect(Object.keys(config!.providers).sort()).toEqual(['*', 'kc']);
    expect(config!.providers.kc).toMatchObject({ type: 'keycloak', username: 'admin', adminRealm: 'master' });
  });

  test('signals: receivers validated, file paths resolved against the config file, each mistake named', () => {
    const d = dir();
    const path = join(d, 'providers.yaml');
    writeFileSync(
      path,
      [
        'providers:',
        '  "*": { type: dry-run }',
        'signals:',
        '  issuer: https://tourniquet.acme.example',
        '  signingKeyFile: keys/ssf.jwk',
        '  receivers:',
        '    - name: workspace',
        '      url: https://app.example/ssf/push',
        '      audience: https://app.example',
        '      authorizationFile: secrets/push-token',
        '      events: [session-revoked, account-disabled]',
      ].join('\n'),
    );
    const config = loadProvidersConfig(path, {});
    expect(config.signals).toMatchObject({
      issuer: 'https://tourniquet.acme.example',
      signingKeyFile: join(d, 'keys/ssf.jwk'),
      receivers: [{ name: 'workspace', authorizationFile: join(d, 'secrets/push-token') }],
    });
    const base = { providers: { '*': { type: 'dry-run' } } };
    const receiver = { name: 'r', url: 'https://r.example/push', audience: 'r' };
    const issues = (signals: unknown) =>
      (
        invalid(() => parseProvidersConfig({ ...base, signals }, { env: {} })).details!.issues as Array<{
          path: string;
        }>
      ).map((i) => i.path);
    expect(issues({ issuer: 'not a url', receivers: [receiver] })).toContain('signals.issuer');
    expect(issues({ issuer: 'https://t', receivers: [] })).toContain('signals.receivers');
    expect(issues({ issuer: 'https://t', receivers: [receiver, receiver] })).toContain('signals.receivers');
    expect(
      issues({ issuer: 'https://t', receivers: [{ ...receiver, events: ['account-purged'] }] }),
    ).toContain('signals.receivers.0.events.0');
    expect(issues({ issuer: 'https://t', receivers: [{ ...receiver, name: 'has space' }] })).toContain(
      'signals.receivers.0.name',
    );
    expect(
      issues({
        issuer: 'https://t',
        receivers: [{ ...receiver, authorization: 'a', authorizationFile: 'b' }],
      }),
    ).toContain('signals.receivers.0');
  });
});
