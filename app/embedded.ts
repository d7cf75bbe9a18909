import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { InProcessBus } from '../platform/bus/in-process.ts';
import { logHealthChanges } from '../platform/eventstore/health.ts';
import { type Durability, SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import { createLogger } from '../platform/log.ts';
import { configureJsonLimits, type JsonLimits } from '../schemas/text.ts';
import { type AuthConfig, issueLocalAdminToken, loadOrCreateAuthConfig } from '../services/api/auth.ts';
import { buildApi } from '../services/api/server.ts';
import { activatePolicy, recordCatalogue } from '../services/decider/activation.ts';
import { loadDefaultPolicy, loadPolicyFile } from '../services/decider/policy/load.ts';
import { DeciderService } from '../services/decider/service.ts';
import type { Executor } from '../services/executor/executor.ts';
import { DryRunProvider } from '../services/executor/providers/dry-run.ts';
import type { IdentityProvider } from '../services/executor/providers/port.ts';
import { BusIngestGateway } from '../services/ingest/gateway.ts';
import { Projector } from '../services/projector/projector.ts';
import { loadCatalogueFile } from './catalogue-file.ts';
import { startConfiguredExecutor } from './providers-config.ts';

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
  adminToken: string;
  dryRun: DryRunProvider | undefined;
  close(): Promise<void>;
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
  const store = new SqliteEventStore({ path: storePath, durability: opts.durability ?? 'full' });
  logHealthChanges(store, log, storePath);
  const now = new Date();
  const policy = opts.policyPath ? loadPolicyFile(opts.policyPath) : loadDefaultPolicy();
  await activatePolicy(store, policy, `tourniquet start (${process.env.USER ?? 'local'})`, now);
  if (opts.cataloguePath)
    await recordCatalogue(store, loadCatalogueFile(opts.cataloguePath), opts.cataloguePath, now);

  const bus = new InProcessBus();
  const decider = new DeciderService({
    store,
    bus,
    policy,
    log,
    wholeBatches: true, // one publish is one HTTP request: all of it or none of it
    ...(opts.tickMs ? { tickMs: opts.tickMs } : {}),
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

  const projector = new Projector({ store, path: join(opts.dataDir, 'projections.db'), log });
  await projector.start();

  const auth = loadOrCreateAuthConfig(opts.dataDir);
  const api = await buildApi({
    store,
    projector,
    ingest: new BusIngestGateway(bus),
    decider,
    automation: decider,
    auth,
    log,
    ...(signals ? { signals } : {}),
  });
  const address = await api.listen({ port: opts.port ?? 7420, host: opts.host ?? '127.0.0.1' });
  const adminToken = await issueLocalAdminToken(auth);

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
    dryRun,
    async close() {
      await api.close();
      await decider.stop();
      await executor.stop();
      await signals?.stop();
      await projector.stop();
      await bus.close();
      await store.close();
    },
  };
}
