/**
 * Provider configuration: which identity provider name (IdentityRef.provider, as detections carry it)
 * is acted on by which provider, so `tourniquet start --providers FILE` and `tourniquet serve executor`
 * act on a real Keycloak (or a webhook receiver) instead of the dry run.
 *
 * ```yaml
 * providers:
 *   keycloak:                       # detections with identity.provider "keycloak"
 *     type: keycloak
 *     baseUrl: http://127.0.0.1:18080
 *     adminRealm: master
 *     username: admin               # password grant (admin-cli), or clientId + clientSecret
 *     password: ${KEYCLOAK_ADMIN_PASSWORD}
 *     defaultRealm: acme            # identities without a tenant
 *   okta:
 *     type: webhook
 *     url: https://soar.example/tourniquet
 *     secretFile: /run/secrets/okta-webhook
 *   "*":                            # every other provider name
 *     type: dry-run
 * executor:                         # optional tuning (docs/executor.md)
 *   retry: { maxAttempts: 5, initialDelayMs: 200, maxDelayMs: 5000 }
 *   breaker: { consecutiveFailures: 5, halfOpenAfterMs: 10000 }
 *   leaseMs: 60000
 *   concurrency: 8
 * ```
 *
 * `${VAR}` and `${VAR:-default}` in string values are replaced from the environment (a missing variable
 * without a default is an error), and every secret also has a `…File` form read from a file and an
 * `…Env` form naming an environment variable, so secrets need not sit in the YAML. Each `type` is a
 * provider of the registry (services/executor/providers/index.ts), which validates its own fields: a
 * new provider needs no change here. Without a file, `providersConfigFromEnv` builds the same from
 * TOURNIQUET_KEYCLOAK_* / TOURNIQUET_WEBHOOK_* variables.
 */

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type Logger, pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { issuesFromZod, TourniquetError } from '../platform/errors.ts';
import type { EventStore } from '../platform/eventstore/port.ts';
import type { ProviderCapabilities } from '../schemas/capabilities.ts';
import { SIGNAL_TYPES } from '../schemas/shared-signals.ts';
import { Executor } from '../services/executor/executor.ts';
import { dryRunProvider } from '../services/executor/providers/dry-run.ts';
import { PROVIDERS, providerDefinition } from '../services/executor/providers/index.ts';
import type { IdentityProvider } from '../services/executor/providers/port.ts';
import { loadOrCreateSigningKey, signingKeyPathOf } from '../services/signals/keys.ts';
import {
  deadLetterPathOf,
  RECEIVER_NAME,
  type SignalReceiver,
  SignalTransmitter,
} from '../services/signals/transmitter.ts';
import { ChatConfig, resolveChatFiles } from './chat-config.ts';

const Name = z.string().min(1).max(128).optional();

/**
 * One entry of `providers:`: a `type` naming a registered provider (services/executor/providers/index.ts),
 * an optional `name`, and the fields that provider's configSchema accepts, validated (and defaulted) by it.
 */
const ProviderEntry = z
  .looseObject({ type: z.string().min(1), name: Name })
  .transform((v, ctx): ProviderEntry => {
    const { type, name, ...fields } = v;
    const def = providerDefinition(type);
    if (!def) {
      ctx.addIssue({
        code: 'custom',
        path: ['type'],
        message: `unknown provider type "${type}" (registered: ${PROVIDERS.map((p) => p.name).join(', ')})`,
      });
      return z.NEVER;
    }
    const parsed = def.configSchema.safeParse(fields);
    if (!parsed.success) {
      for (const i of parsed.error.issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
      return z.NEVER;
    }
    return { type, ...(name ? { name } : {}), ...(parsed.data as Record<string, unknown>) };
  });
/** A validated entry: its `type`, optional `name`, and the provider's own (defaulted) fields. */
export type ProviderEntry = { type: string; name?: string } & Record<string, unknown>;

/** Exponential backoff between attempts (executor retries, signal deliveries). */
const Backoff = {
  initialDelayMs: z.number().int().min(0).max(600_000).optional(),
  maxDelayMs: z.number().int().min(0).max(3_600_000).optional(),
};

export const ExecutorTuning = z
  .object({
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).max(50).optional(),
        ...Backoff,
        maxRetryAfterMs: z.number().int().min(0).max(3_600_000).optional(),
      })
      .strict()
      .optional(),
    breaker: z
      .object({
        consecutiveFailures: z.number().int().min(1).max(1000).optional(),
        halfOpenAfterMs: z.number().int().min(10).max(3_600_000).optional(),
      })
      .strict()
      .optional(),
    leaseMs: z.number().int().min(1000).max(86_400_000).optional(),
    concurrency: z.number().int().min(1).max(256).optional(),
    maxParked: z.number().int().min(0).max(1_000_000).optional(),
  })
  .strict();
export type ExecutorTuning = z.infer<typeof ExecutorTuning>;

const SignalReceiverEntry = z
  .object({
    name: z.string().regex(RECEIVER_NAME, 'letters, digits, ".", "_" or "-" (at most 64)'),
    url: z.url(),
    audience: z.string().min(1).max(2048),
    authorization: z.string().min(1).optional(),
    authorizationFile: z.string().min(1).optional(),
    events: z.array(z.enum(SIGNAL_TYPES)).min(1).optional(),
    timeoutMs: z.number().int().min(100).max(300_000).optional(),
  })
  .strict()
  .refine((v) => !(v.authorization && v.authorizationFile), {
    message: 'authorization and authorizationFile are exclusive',
  });

/** Shared Signals out (services/signals): SETs for containment that took effect. */
export const SignalsConfig = z
  .object({
    /** The SETs' `iss`. */
    issuer: z.url(),
    /** A private JWK (EC, RSA or OKP); default: generated on first start as ssf-signing-key.json in the data dir. */
    signingKeyFile: z.string().min(1).optional(),
    receivers: z
      .array(SignalReceiverEntry)
      .min(1)
      .refine((rs) => new Set(rs.map((r) => r.name)).size === rs.length, {
        message: 'receiver names must differ',
      }),
    /** Deliveries are retried without limit (a receiver's queue waits for it): only the pace is set. */
    retry: z.object(Backoff).strict().optional(),
  })
  .strict();
export type SignalsConfig = z.infer<typeof SignalsConfig>;

const ProvidersConfigSchema = z
  .object({
    providers: z
      .record(z.string().min(1).max(128), ProviderEntry)
      .refine((m) => Object.keys(m).length > 0, { message: 'name at least one provider' }),
    executor: ExecutorTuning.optional(),
    signals: SignalsConfig.optional(),
    /** Chat approvals: Slack and/or a signed webhook (app/chat-config.ts). */
    chat: ChatConfig.optional(),
  })
  .strict();

/** A validated provider configuration; relative `…File` paths are already resolved against the config file. */
export type ProvidersConfig = z.infer<typeof ProvidersConfigSchema>;

function configInvalid(
  message: string,
  issues: Array<{ path: string; message: string }> = [],
): TourniquetError {
  return new TourniquetError('CONFIG_INVALID', message, { status: 500, details: { issues } });
}

/** Replaces ${VAR} / ${VAR:-default} in every string of a parsed YAML document. */
function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, missing: string[], path = ''): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
      (_m, name: string, dflt: string | undefined) => {
        const v = env[name];
        if (v !== undefined && v !== '') return v;
        if (dflt !== undefined) return dflt;
        missing.push(`${path || '(root)'}: environment variable ${name} is not set`);
        return '';
      },
    );
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, missing, `${path}[${i}]`));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = interpolateEnv(v, env, missing, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
}

/** Validates a provider configuration already parsed (from YAML, JSON or code). */
export function parseProvidersConfig(
  raw: unknown,
  opts: { env?: NodeJS.ProcessEnv; baseDir?: string; source?: string } = {},
): ProvidersConfig {
  const source = opts.source ?? 'provider configuration';
  const missing: string[] = [];
  const doc = interpolateEnv(raw, opts.env ?? process.env, missing);
  if (missing.length > 0) {
    throw configInvalid(
      `${source}: ${missing.join('; ')}`,
      missing.map((m) => ({ path: m.split(':')[0]!, message: m })),
    );
  }
  const parsed = ProvidersConfigSchema.safeParse(doc);
  if (!parsed.success) {
    const issues = issuesFromZod(parsed.error.issues);
    throw configInvalid(
      `${source} is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      issues,
    );
  }
  const config = parsed.data;
  if (opts.baseDir) {
    // Every provider's secret files (`…File` fields) are relative to the providers file.
    for (const entry of Object.values(config.providers)) {
      for (const [field, value] of Object.entries(entry))
        if (field.endsWith('File') && typeof value === 'string') entry[field] = resolve(opts.baseDir, value);
    }
    if (config.signals?.signingKeyFile)
      config.signals.signingKeyFile = resolve(opts.baseDir, config.signals.signingKeyFile);
    for (const r of config.signals?.receivers ?? [])
      if (r.authorizationFile) r.authorizationFile = resolve(opts.baseDir, r.authorizationFile);
    if (config.chat) resolveChatFiles(config.chat, opts.baseDir);
  }
  return config;
}

/** Reads and validates a provider configuration file (YAML or JSON). Throws CONFIG_INVALID with field issues. */
export function loadProvidersConfig(path: string, env: NodeJS.ProcessEnv = process.env): ProvidersConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw configInvalid(`cannot read provider configuration ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw configInvalid(`provider configuration ${path} is not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw configInvalid(`provider configuration ${path} must hold a mapping with a "providers" key`);
  }
  return parseProvidersConfig(doc, {
    env,
    baseDir: dirname(resolve(path)),
    source: `provider configuration ${path}`,
  });
}

/**
 * A configuration from the environment alone, or null when none of its variables is set:
 * TOURNIQUET_KEYCLOAK_URL (+ _ADMIN_REALM, _CLIENT_ID, _CLIENT_SECRET, _USERNAME, _PASSWORD, _DEFAULT_REALM,
 * _PROVIDER = the IdentityRef.provider name, default keycloak) and TOURNIQUET_WEBHOOK_URL (+ _SECRET,
 * _PROVIDER, default webhook). TOURNIQUET_PROVIDERS_FALLBACK=dry-run adds a '*' dry-run entry.
 */
export function providersConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ProvidersConfig | null {
  const providers: Record<string, unknown> = {};
  const v = (k: string) => (env[k] === undefined || env[k] === '' ? undefined : env[k]);
  if (v('TOURNIQUET_KEYCLOAK_URL')) {
    const entry: Record<string, unknown> = { type: 'keycloak', baseUrl: v('TOURNIQUET_KEYCLOAK_URL') };
    const map: Array<[string, string]> = [
      ['TOURNIQUET_KEYCLOAK_ADMIN_REALM', 'adminRealm'],
      ['TOURNIQUET_KEYCLOAK_CLIENT_ID', 'clientId'],
      ['TOURNIQUET_KEYCLOAK_CLIENT_SECRET', 'clientSecret'],
      ['TOURNIQUET_KEYCLOAK_USERNAME', 'username'],
      ['TOURNIQUET_KEYCLOAK_PASSWORD', 'password'],
      ['TOURNIQUET_KEYCLOAK_DEFAULT_REALM', 'defaultRealm'],
    ];
    for (const [k, field] of map) if (v(k)) entry[field] = v(k);
    providers[v('TOURNIQUET_KEYCLOAK_PROVIDER') ?? 'keycloak'] = entry;
  }
  if (v('TOURNIQUET_WEBHOOK_URL')) {
    providers[v('TOURNIQUET_WEBHOOK_PROVIDER') ?? 'webhook'] = {
      type: 'webhook',
      url: v('TOURNIQUET_WEBHOOK_URL'),
      ...(v('TOURNIQUET_WEBHOOK_SECRET') ? { secret: v('TOURNIQUET_WEBHOOK_SECRET') } : {}),
    };
  }
  if (Object.keys(providers).length === 0) return null;
  if (v('TOURNIQUET_PROVIDERS_FALLBACK') === 'dry-run') providers['*'] = { type: 'dry-run' };
  return parseProvidersConfig(
    { providers },
    { env: {}, source: 'provider environment (TOURNIQUET_KEYCLOAK_*/TOURNIQUET_WEBHOOK_*)' },
  );
}

function readSecret(path: string, what: string): string {
  try {
    const s = readFileSync(path, 'utf8').trim();
    if (s === '') throw new Error('file is empty');
    return s;
  } catch (e) {
    throw configInvalid(`cannot read ${what} from ${path}: ${(e as Error).message}`);
  }
}

/**
 * The providers for Executor({ providers }): keyed by IdentityRef.provider name, '*' as the fallback,
 * each built by its registered definition from its `type`. Each provider is named after its key unless
 * `name` says otherwise (the name appears in events and keys the circuit breaker, so two Keycloak servers
 * never share one).
 */
export function buildProviders(
  config: ProvidersConfig,
  dataDir: string,
  log: Logger = pino({ level: 'silent' }),
): Record<string, IdentityProvider> {
  const out: Record<string, IdentityProvider> = {};
  for (const [key, entry] of Object.entries(config.providers)) {
    const { type, name: named, ...fields } = entry;
    const def = providerDefinition(type);
    if (!def) throw configInvalid(`providers.${key}: unknown provider type "${type}"`);
    const parsed = def.configSchema.safeParse(fields);
    if (!parsed.success) {
      const issues = issuesFromZod(parsed.error.issues).map((i) => ({
        ...i,
        path: `providers.${key}.${i.path}`,
      }));
      throw configInvalid(`providers.${key} is invalid: ${issues.map((i) => i.message).join('; ')}`, issues);
    }
    const name = named ?? (key === '*' ? type : key);
    const provider = def.create(parsed.data, {
      log: log.child({ provider: name }),
      now: Date.now,
      name,
      dataDir,
    });
    out[key] = provider.name === name ? provider : renamed(provider, name);
  }
  return out;
}

/** The provider under the configured name (for providers that name themselves after their type). */
function renamed(p: IdentityProvider, name: string): IdentityProvider {
  return new Proxy(p, {
    get(target, prop) {
      if (prop === 'name') return name;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/**
 * What each configured provider can undo, per action, for the decider (DeciderContext.capabilities),
 * policy validation and replay: the registered definition's declared actions, narrowed by an entry's
 * own `actions` list where it has one (a webhook receiver that implements only some).
 */
export function capabilitiesOf(config: ProvidersConfig): ProviderCapabilities {
  const out: Record<string, ProviderCapabilities[string]> = {};
  for (const [key, entry] of Object.entries(config.providers)) {
    const def = providerDefinition(entry.type);
    if (!def) continue;
    const only = Array.isArray(entry.actions) ? new Set(entry.actions as string[]) : null;
    out[key] = {
      type: def.name,
      actions: Object.fromEntries(Object.entries(def.actions).filter(([a]) => !only || only.has(a))),
    };
  }
  return out;
}

/** The capabilities when nothing is configured: the dry run acts on every identity. */
export function defaultCapabilities(): ProviderCapabilities {
  return { '*': { type: dryRunProvider.name, actions: dryRunProvider.actions } };
}

/** The executor options a configuration's `executor` block sets (spread into new Executor({...})). */
export function executorTuning(config: ProvidersConfig): ExecutorTuning {
  return config.executor ?? {};
}

/**
 * The executor as both the embedded stack and `serve executor` run it: providers from a
 * configuration file when one is given (with its `executor` tuning), else the caller's providers,
 * else its dry-run default; started, with a fatal log line if it ever stops.
 */
export async function startConfiguredExecutor(opts: {
  store: EventStore;
  dataDir: string;
  providersFile?: string | undefined;
  providers?: Record<string, IdentityProvider> | undefined;
  dryRun: () => IdentityProvider;
  executorId: string;
  leaseMs?: number | undefined;
  log: Logger;
  /** Said with the fatal log line, e.g. 'restart the service'. */
  onStop: string;
}): Promise<{ executor: Executor; providersFrom: string; signals: SignalTransmitter | undefined }> {
  const config = opts.providersFile ? loadProvidersConfig(opts.providersFile) : undefined;
  const providers = config
    ? buildProviders(config, opts.dataDir)
    : (opts.providers ?? { '*': opts.dryRun() });
  const executor = new Executor({
    store: opts.store,
    providers,
    executorId: opts.executorId,
    ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
    log: opts.log,
    ...(config ? executorTuning(config) : {}),
  });
  await executor.start((err) => opts.log.fatal({ err }, `executor stopped; ${opts.onStop}`));
  const providersFrom = config ? (opts.providersFile as string) : opts.providers ? 'caller' : 'dry-run';
  const signals = await startConfiguredSignals(config?.signals, opts);
  return { executor, providersFrom, signals };
}

/** The configured receivers, with `authorizationFile` read into `authorization`. */
export function signalReceiversOf(signals: SignalsConfig): SignalReceiver[] {
  return signals.receivers.map(({ authorizationFile, ...r }, i) => ({
    ...r,
    ...(authorizationFile
      ? { authorization: readSecret(authorizationFile, `signals.receivers[${i}].authorizationFile`) }
      : {}),
  }));
}

/**
 * The Shared Signals transmitter a configuration's `signals` block asks for, started (undefined without
 * one). Its key comes from `signingKeyFile`, else from ssf-signing-key.json in the data dir, created on
 * first start.
 */
async function startConfiguredSignals(
  signals: SignalsConfig | undefined,
  opts: { store: EventStore; dataDir: string; log: Logger; onStop: string },
): Promise<SignalTransmitter | undefined> {
  if (!signals) return undefined;
  const key = await loadOrCreateSigningKey(
    signingKeyPathOf(signals.signingKeyFile, opts.dataDir),
    signals.signingKeyFile === undefined,
  );
  const transmitter = new SignalTransmitter({
    store: opts.store,
    issuer: signals.issuer,
    key,
    receivers: signalReceiversOf(signals),
    deadLetterPath: deadLetterPathOf(opts.dataDir),
    ...(signals.retry ? { retry: signals.retry } : {}),
    log: opts.log,
  });
  await transmitter.start((err, receiver) =>
    opts.log.fatal({ err, receiver }, `signal queue stopped; ${opts.onStop}`),
  );
  return transmitter;
}
