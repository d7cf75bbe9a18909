import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { InProcessBus } from '../platform/bus/in-process.ts';
import { TourniquetError } from '../platform/errors.ts';
import { logHealthChanges } from '../platform/eventstore/health.ts';
import { type Durability, SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import { createLogger } from '../platform/log.ts';
import type { Anchoring } from '../platform/witness/anchorer.ts';
import { configureJsonLimits, type JsonLimits } from '../schemas/text.ts';
import { type AuthConfig, loadOrCreateAuthConfig } from '../services/api/auth.ts';
import { authFileOf } from '../services/api/auth-file.ts';
import { writeAdminTokenFile } from '../services/api/console/admin-token-file.ts';
import { OneTimeLogins } from '../services/api/console/login-once.ts';
import { buildApi } from '../services/api/server.ts';
import type { ChatNotifier } from '../services/chat/notifier.ts';
import { activatePolicy, recordCatalogue } from '../services/decider/activation.ts';
import { checkPolicyCapabilities } from '../services/decider/policy/capabilities-check.ts';
import { loadDefaultPolicy, loadPolicyFile } from '../services/decider/policy/load.ts';
import { DeciderService } from '../services/decider/service.ts';
import type { Executor } from '../services/executor/executor.ts';
import { DryRunProvider } from '../services/executor/providers/dry-run.ts';
import type { IdentityProvider } from '../services/executor/providers/port.ts';
import { DirectIngestGateway } from '../services/ingest/gateway.ts';
import { Projector } from '../services/projector/projector.ts';
import { loadCatalogueFile } from './catalogue-file.ts';
import { startChat } from './chat-config.ts';
import { consoleSessionsFromEnv } from './console-sessions.ts';
import { type IntegrityOptions, integrityFromEnv, startConfiguredAnchoring } from './integrity.ts';
import {
  capabilitiesOf,
  defaultCapabilities,
  loadProvidersConfig,
  startConfiguredExecutor,
} from './providers-config.ts';

export interface EmbeddedOptions {
  dataDir: string;
  port?: number;
  host?: string;
  policyPath?: string;
  cataloguePath?: string;
  log?: Logger;
  /** Expiry tick interval. */
  tickMs?: number;
  /** Providers by identity provider name; default: the dry-run provider for all ('*'). */
  providers?: Record<string, IdentityProvider>;
  /** Stable executor id: a restarted stack recognises its own unfinished claims. */
  executorId?: string;
  durability?: Durability;
  /** Limits on a detection's `raw` and `evidence` (default: depth 64, 256 KiB); set for the whole process. */
  jsonLimits?: Partial<JsonLimits>;
  /** Provider configuration file (YAML): which identity provider maps to Keycloak, webhook, dry-run. */
  providersPath?: string;
  /** Identity states the decider keeps in memory (default 200,000; TOURNIQUET_DECIDER_MAX_IDENTITIES). */
  maxCachedIdentities?: number;
  /** Tamper evidence while serving: the chain check and head anchoring (docs/audit.md). */
  integrity?: IntegrityOptions;
}

export interface EmbeddedStack {
  url: string;
  dataDir: string;
  storePath: string;
  store: SqliteEventStore;
  decider: DeciderService;
  executor: Executor;
  projector: Projector;
  api: FastifyInstance;
  auth: AuthConfig;
  /** A local admin token for scripts in this process; never printed (see adminTokenFile). */
  adminToken: string;
  /** Where an admin token is kept for the operator (mode 0600), instead of printing it. */
  adminTokenFile: string;
  /** A fresh one-time console sign-in link (local admin), valid 10 minutes. */
  loginLink(): string;
  dryRun: DryRunProvider | undefined;
  /** Chat approvals, when the providers file configures them. */
  chat: ChatNotifier | undefined;
  /** Head anchoring, when a witness is configured. */
  anchoring: Anchoring | undefined;
  close(): Promise<void>;
}

/** The decider's identity cache bound: the option, else TOURNIQUET_DECIDER_MAX_IDENTITIES, else the default. */
function maxCachedIdentitiesOf(given: number | undefined): { maxCachedIdentities?: number } {
  const env = process.env.TOURNIQUET_DECIDER_MAX_IDENTITIES;
  const n = given ?? (env ? Number(env) : undefined);
  if (n === undefined) return {};
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new TourniquetError(
      'CONFIG_INVALID',
      `the decider's identity cache bound must be a whole number >= 1, got "${given ?? env}" (TOURNIQUET_DECIDER_MAX_IDENTITIES)`,
    );
  }
  return { maxCachedIdentities: n };
}

/**
 * The embedded default: one process, no servers. In-process bus, SQLite event store, and the four
 * services — ingest (HTTP), decider, executor, projector + API — wired together.
 */
export async function startEmbedded(opts: EmbeddedOptions): Promise<EmbeddedStack> {
  mkdirSync(opts.dataDir, { recursive: true });
  if (opts.jsonLimits) configureJsonLimits(opts.jsonLimits);
  const log = opts.log ?? createLogger();
  const storePath = join(opts.dataDir, 'events.db');
  const integrity = integrityFromEnv(opts.integrity);
  const store = new SqliteEventStore({
    path: storePath,
    durability: opts.durability ?? 'full',
    // Concurrent requests share a commit (one fsync for all of them; each still whole or nothing).
    groupCommit: true,
    integrity: {
      log,
      ...(integrity.sweepIntervalMs !== undefined ? { sweepIntervalMs: integrity.sweepIntervalMs } : {}),
    },
  });
  logHealthChanges(store, log, storePath);
  const now = new Date();
  const policy = opts.policyPath ? loadPolicyFile(opts.policyPath) : loadDefaultPolicy();
  // A store whose chain no longer matches still serves reads (auditors need them), but records nothing.
  if (store.integrity?.status().ok !== false) {
    await activatePolicy(store, policy, `tourniquet start (${process.env.USER ?? 'local'})`, now);
    if (opts.cataloguePath)
      await recordCatalogue(store, loadCatalogueFile(opts.cataloguePath), opts.cataloguePath, now);
  }
  const anchoring = await startConfiguredAnchoring(store.integrity, integrity, log);

  const bus = new InProcessBus();
  // The decider shows what the acting provider can undo before approval: from the providers file,
  // the dry run when nothing is configured, unknown for providers handed in as objects.
  const capabilities = opts.providersPath
    ? capabilitiesOf(loadProvidersConfig(opts.providersPath))
    : opts.providers
      ? undefined
      : defaultCapabilities();
  // `policy validate --providers` refuses these; a stack started anyway says so in its log.
  for (const f of capabilities ? checkPolicyCapabilities(policy.policy, capabilities) : []) {
    log.warn({ rule: f.ruleId, stage: f.stage, provider: f.provider }, f.message);
  }
  const decider = new DeciderService({
    store,
    bus,
    policy,
    log,
    wholeBatches: true, // one publish is one HTTP request: all of it or none of it
    capabilities,
    ...(opts.tickMs ? { tickMs: opts.tickMs } : {}),
    ...maxCachedIdentitiesOf(opts.maxCachedIdentities),
  });
  await decider.start();

  let dryRun: DryRunProvider | undefined; // the default provider, when nothing else is configured
  const { executor, signals } = await startConfiguredExecutor({
    store,
    dataDir: opts.dataDir,
    providersFile: opts.providersPath,
    providers: opts.providers,
    dryRun: () => {
      dryRun = new DryRunProvider({ journalPath: join(opts.dataDir, 'dry-run-calls.jsonl') });
      return dryRun;
    },
    executorId: opts.executorId ?? 'embedded',
    log,
    onStop: 'restart the stack',
  });

  // Chat approvals run beside the executor, on their own queue (providers file: chat).
  const chatConfig = opts.providersPath ? loadProvidersConfig(opts.providersPath).chat : undefined;
  const chat = chatConfig
    ? await startChat({ config: chatConfig, store, dataDir: opts.dataDir, log })
    : undefined;

  const projector = new Projector({ store, path: join(opts.dataDir, 'projections.db'), log });
  await projector.start();

  const auth = loadOrCreateAuthConfig(opts.dataDir);
  const oneTimeLogins = new OneTimeLogins();
  const api = await buildApi({
    store,
    projector,
    // HTTP ingest is handed to the decider directly, concurrently, so that its appends share commits.
    ingest: new DirectIngestGateway((messages) => decider.handleDetections(messages)),
    decider,
    automation: decider,
    auth,
    authFile: authFileOf(opts.dataDir),
    log,
    ...(signals ? { signals } : {}),
    signIn: { oneTimeLogins },
    consoleSessions: consoleSessionsFromEnv(),
    ...(chat ? { chat: chat.api } : {}),
    ...(store.integrity ? { integrity: () => store.integrity!.status() } : {}),
  });
  const address = await api.listen({ port: opts.port ?? 7420, host: opts.host ?? '127.0.0.1' });
  const { token: adminToken, path: adminTokenFile } = await writeAdminTokenFile(opts.dataDir, auth);

  return {
    url: address,
    dataDir: opts.dataDir,
    storePath,
    store,
    decider,
    executor,
    projector,
    api,
    auth,
    adminToken,
    adminTokenFile,
    loginLink: () =>
      `${address}/login/once?token=${oneTimeLogins.issue({ id: 'local-admin', roles: ['admin'], via: 'session' })}`,
    dryRun,
    chat: chat?.notifier,
    anchoring,
    async close() {
      await api.close();
      await decider.stop();
      await executor.stop();
      await signals?.stop();
      await chat?.notifier.stop();
      await projector.stop();
      await bus.close();
      await anchoring?.stop();
      await store.close();
    },
  };
}
