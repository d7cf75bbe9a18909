import type { ServerResponse } from 'node:http';
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { TourniquetError } from '../../platform/errors.ts';
import type { ChainStatus } from '../../platform/eventstore/chain-guard.ts';
import { STORE_RETRY_AFTER_SECONDS } from '../../platform/eventstore/health.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import { recordHttpRequest } from '../../platform/metrics.ts';
import type { SlackApi } from '../../platform/slack.ts';
import type { AutomationGateway, DeciderGateway, IngestGateway } from '../../schemas/gateways.ts';
import { jsonLimits, jsonTextTooDeep } from '../../schemas/text.ts';
import { bindProjectorMetrics } from '../projector/metrics.ts';
import type { Projector } from '../projector/projector.ts';
import type { SignalsView } from '../signals/transmitter.ts';
import { ApprovalCommands } from './approvals.ts';
import type { AuthConfig, Role } from './auth.ts';
import { AuthFileWatcher, staticAuthSource } from './auth-file.ts';
import { SlackInteractions } from './chat/interactions.ts';
import type { RefusalLog } from './chat/refusals.ts';
import { registerConsole } from './console/index.ts';
import type { OneTimeLogins } from './console/login-once.ts';
import type { StartSession } from './console/oidc.ts';
import type { ConsoleSessionOptions } from './console/session.ts';
import { type ApiContext, type ApiRoutes, settleFn, submitFn } from './context.ts';
import { toHttpError } from './http.ts';
import { approvalGroupRoutes } from './routes/approval-groups.ts';
import { auditRoutes } from './routes/audit.ts';
import { chatRoutes } from './routes/chat.ts';
import { commandRoutes } from './routes/commands.ts';
import { ingestRoutes } from './routes/ingest.ts';
import { opsRoutes } from './routes/ops.ts';
import { queryRoutes } from './routes/queries.ts';
import { signInRoutes } from './routes/sign-in.ts';
import { signalsRoutes } from './routes/signals.ts';
import { stormRoutes } from './routes/storms.ts';
import { streamRoutes } from './routes/stream.ts';

export interface ApiDeps {
  store: EventStore;
  projector: Projector;
  ingest: IngestGateway;
  decider: DeciderGateway;
  automation: AutomationGateway;
  auth: AuthConfig;
  /** The file `auth` came from: changes to it apply without a restart (services/api/auth-file.ts). */
  authFile?: string;
  log?: Logger;
  /** Request body limit (default 1 MiB); larger bodies get 413. */
  bodyLimitBytes?: number;
  /** Decision time of human commands (default: the wall clock). */
  now?: () => Date;
  /** /readyz is 200 while the projector is live and at most this many events behind (default 100). */
  readyLagEvents?: number;
  /** How long a mutating request waits for the projector to include its write (default 10 s). */
  settleTimeoutMs?: number;
  /** SSE heartbeat interval (default 15 s). */
  heartbeatMs?: number;
  /** The Shared Signals transmitter in this process, if any: its keys and its receivers' progress. */
  signals?: SignalsView;
  /** The store's running chain check (SQLite with integrity on): a broken chain makes /readyz false. */
  integrity?: () => ChainStatus;
  /** Console sessions: idle timeout, lifetime, SameSite (services/api/console/session.ts). */
  consoleSessions?: ConsoleSessionOptions;
  /**
   * Console sign-in beyond the API-key form: one-time links (printed by `tourniquet start`) and the
   * session starter single sign-on ends in (default: a console session).
   */
  signIn?: { startSession?: StartSession; oneTimeLogins?: OneTimeLogins };
  /** Chat approvals in: Slack interactions (signing secret, user table) and the refusal record. */
  chat?: {
    slack?: {
      users: Readonly<Record<string, { principal: string; roles: readonly Role[] }>>;
      signingSecret: string;
      api?: SlackApi | undefined;
    };
    refusals?: RefusalLog;
  };
}

/**
 * The route plugins, one per concern (services/api/routes/). A new concern is a file there plus a
 * line here; each route's roles come from ROUTE_ROLES (roles.ts).
 */
const ROUTES: readonly ApiRoutes[] = [
  ingestRoutes,
  queryRoutes,
  commandRoutes,
  auditRoutes,
  streamRoutes,
  signalsRoutes,
  opsRoutes,
  signInRoutes,
  chatRoutes,
  approvalGroupRoutes,
  stormRoutes,
];

/** Levels a body may nest above a detection's `raw` (array, item, field): deeper is refused unparsed. */
const BODY_DEPTH_MARGIN = 4;
const bodyTooDeep = (limit: number) =>
  new TourniquetError('VALIDATION_FAILED', `request body nests deeper than the limit of ${limit} levels`, {
    status: 400,
    details: {
      in: 'body',
      limit,
      issues: [{ path: '(root)', message: `nests deeper than ${limit} levels` }],
    },
  });

/**
 * The HTTP API for analysts, auditors, admins and ingesting services. Reads come from the
 * projector's views; commands go through the gateways and are answered only once the projector
 * includes what they appended (a GET right after sees it).
 */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const { store, projector } = deps;
  const log = deps.log;
  const auth = deps.authFile
    ? new AuthFileWatcher(deps.authFile, { initial: deps.auth, ...(log ? { log } : {}) })
    : staticAuthSource(deps.auth);
  const app = createServer(log, deps.bodyLimitBytes ?? 1024 * 1024);
  // Console sessions first: their hook authenticates cookie requests ahead of every route's check.
  await registerConsole(app, {
    store,
    projector,
    auth: () => auth,
    sessions: deps.consoleSessions,
    now: deps.now,
  });
  await app.register(swagger, OPENAPI);
  const now = deps.now ?? (() => new Date());
  const settle = settleFn(store, projector, deps.settleTimeoutMs ?? 10_000, log);
  const submit = submitFn(deps.decider);
  const approvals = new ApprovalCommands({ projector, submit, now, settle, log });
  const slack = deps.chat?.slack;

  const ctx: ApiContext = {
    store,
    projector,
    ingest: deps.ingest,
    decider: deps.decider,
    automation: deps.automation,
    auth,
    log,
    signals: deps.signals,
    integrity: deps.integrity,
    now,
    readyLag: deps.readyLagEvents ?? 100,
    heartbeatMs: deps.heartbeatMs ?? 15_000,
    streams: new Set<ServerResponse>(),
    settle,
    submit,
    approvals,
    signIn: deps.signIn,
    chat: {
      slack: slack
        ? new SlackInteractions({
            users: slack.users,
            signingSecret: slack.signingSecret,
            approvals,
            refusals: deps.chat?.refusals ?? missingRefusalLog(),
            slack: slack.api,
            log,
          })
        : undefined,
      refusals: deps.chat?.refusals,
    },
  };
  const unbindMetrics = bindProjectorMetrics(projector, store);
  // Live feeds are long-lived responses: end them before the server waits for connections to drain.
  app.addHook('preClose', async () => {
    for (const s of ctx.streams) s.end();
  });
  app.addHook('onClose', async () => {
    unbindMetrics();
    auth.close();
  });

  for (const routes of ROUTES) await app.register(routes, { ctx });
  await app.ready();
  return app;
}

function missingRefusalLog(): never {
  throw new TourniquetError('CONFIG_INVALID', 'Slack approvals need a refusal log (chat.refusals)');
}

/** Fastify with JSON-only bodies, typed errors as `{error}` bodies, and 405 for a known path. */
function createServer(log: Logger | undefined, bodyLimit: number): FastifyInstance {
  const app = Fastify({
    ...(log ? { loggerInstance: log } : { logger: false }),
    bodyLimit,
    routerOptions: { maxParamLength: 2048 },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  }) as unknown as FastifyInstance;

  // JSON bodies: the default secure parser, but an empty body with a JSON content type means "no body".
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  // Only JSON bodies: anything else is 415, never parsed as a string.
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (typeof body === 'string' && body.trim() === '') {
      done(null, undefined);
      return;
    }
    // Refused before parsing: a deeply nested body must be a 400 naming the limit, never a 500.
    const maxBodyDepth = jsonLimits().maxDepth + BODY_DEPTH_MARGIN;
    if (jsonTextTooDeep(body as string, maxBodyDepth)) {
      done(bodyTooDeep(maxBodyDepth), undefined);
      return;
    }
    defaultJson(request, body as string, done);
  });
  // Responses are plain JSON.stringify: response schemas document, they never filter fields.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  app.setErrorHandler((err, request, reply) => {
    // fastify checks a body method's content type before it finds no route (QUERY without one):
    // the answer is still about the route
    if (request.is404) return unroutable(request, reply);
    const { status, body } = toHttpError(err, bodyLimit);
    if (status >= 500) request.log.error({ err }, 'request failed');
    // Retriable refusals (storage faults, throttled authentication): tell clients when to come back.
    if (status === 503 || status === 429)
      reply.header('retry-after', String(body.retryAfterSeconds ?? STORE_RETRY_AFTER_SECONDS));
    if (status === 401)
      reply.header('www-authenticate', 'Bearer realm="tourniquet", ApiKey realm="tourniquet"');
    reply.status(status).send({ error: body });
  });
  // A path that exists under other methods answers 405 with Allow (RFC 9110), not 404.
  const routes: Array<{ pattern: RegExp; method: string }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(
      `^${route.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+')}/?$`,
    );
    for (const method of [route.method].flat()) routes.push({ pattern, method });
  });
  const unroutable = (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    const err =
      allowed.length > 0
        ? new TourniquetError(
            'METHOD_NOT_ALLOWED',
            `${request.method} is not allowed on ${path}; allowed: ${allowed.join(', ')}`,
            { status: 405 },
          )
        : new TourniquetError('NOT_FOUND', `no route ${request.method} ${path}`, { status: 404 });
    if (allowed.length > 0) reply.header('allow', allowed.join(', '));
    reply.status(err.status).send({ error: err.toJSON() });
  };
  app.setNotFoundHandler(unroutable);
  app.addHook('onResponse', async (request, reply) => {
    recordHttpRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode);
  });
  return app;
}

const OPENAPI: FastifyDynamicSwaggerOptions = {
  // The approval body is optional (fastify-swagger marks every body required).
  transformObject: (doc) => {
    const spec = ('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject) as {
      paths?: Record<string, Record<string, { requestBody?: { required?: boolean } }>>;
    };
    const body = spec.paths?.['/v1/actions/{id}/approve']?.post?.requestBody;
    if (body) body.required = false;
    return spec as ReturnType<NonNullable<FastifyDynamicSwaggerOptions['transformObject']>>;
  },
  openapi: {
    openapi: '3.0.3',
    info: {
      title: 'Tourniquet API',
      version: '1',
      description:
        'Automated identity response: cases, actions and approvals, audit and tamper evidence. Every endpoint but /healthz, /readyz, /docs, /v1/signals/jwks and /.well-known/ssf-configuration needs credentials: `Authorization: Bearer <jwt>` (claims `sub`, `roles`), `Authorization: ApiKey <key>` or `X-API-Key: <key>`. Errors are `{error: {code, message, ...details}}`; 400s list every failing field in `error.issues`. Text must be well-formed Unicode: a lone (unpaired) UTF-16 surrogate escape such as `\\ud800` is refused in any string, and identifiers (ids, `source`, identity fields) must not contain NUL (U+0000); lengths count code points.',
    },
    tags: [
      { name: 'ingest', description: 'Detections in' },
      { name: 'cases', description: 'Cases and identities' },
      { name: 'actions', description: 'Actions, approvals, verdicts' },
      { name: 'audit', description: 'Audit queries, exports, tamper evidence' },
      { name: 'control', description: 'Kill switch' },
      { name: 'ops', description: 'Health, readiness, metrics, live feed' },
      { name: 'chat', description: 'Chat approvals (Slack interactions, refusals)' },
    ],
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
  },
};
