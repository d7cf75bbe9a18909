import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import swagger, { type FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { ApprovalError, ConflictError, NotFoundError, TourniquetError } from '../../platform/errors.ts';
import { STORE_RETRY_AFTER_SECONDS } from '../../platform/eventstore/health.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { metrics, recordDetectionsIn, recordHttpRequest } from '../../platform/metrics.ts';
import type { DeciderInput } from '../../schemas/decider-input.ts';
import type { EventType, NewEvent, RecordedEvent } from '../../schemas/events.ts';
import type { AutomationGateway, DeciderGateway, IngestGateway } from '../../schemas/gateways.ts';
import { jsonLimits, jsonTextTooDeep } from '../../schemas/text.ts';
import { verifyChain } from '../projector/audit-verify.ts';
import { Explanation, explainAction } from '../projector/explain.ts';
import { bindProjectorMetrics } from '../projector/metrics.ts';
import type { Projector } from '../projector/projector.ts';
import {
  type AuditFilter,
  getAction,
  getCase,
  getIdentity,
  listActions,
  listCases,
  queryAuditEvents,
  streamAuditEvents,
} from '../projector/queries.ts';
import {
  ActionView,
  AuditEvent,
  AutomationView,
  CaseDetail,
  CaseView,
  IdentityView,
  page,
} from '../projector/views.ts';
import type { SignalsView } from '../signals/transmitter.ts';
import { type AuthConfig, Authenticator, type Principal, type Role } from './auth.ts';
import { addRoute, ErrorBody, toHttpError } from './http.ts';
import {
  ActionsQuery,
  ApproveBody,
  AuditExportQuery,
  AuditQuery,
  CasesQuery,
  DetectionsBody,
  IdentityParams,
  IdParams,
  ProposeBody,
  parseDetections,
  ReasonBody,
  RejectBody,
  StreamQuery,
  VerdictBody,
} from './schemas.ts';

export interface ApiDeps {
  store: EventStore;
  projector: Projector;
  ingest: IngestGateway;
  decider: DeciderGateway;
  automation: AutomationGateway;
  auth: AuthConfig;
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
}

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

const READ: readonly Role[] = ['analyst', 'auditor', 'admin'];
const DECIDE: readonly Role[] = ['analyst', 'admin'];
const AUDIT: readonly Role[] = ['auditor', 'admin'];
const INGEST: readonly Role[] = ['service', 'admin'];
const ADMIN: readonly Role[] = ['admin'];

/** Who may call what: the authorization matrix (tests check every cell). */
export const ROUTE_ROLES: Record<string, readonly Role[] | 'public'> = {
  'POST /v1/detections': INGEST,
  'GET /v1/cases': READ,
  'GET /v1/cases/:id': READ,
  'GET /v1/identities/:provider/:id': READ,
  'GET /v1/actions': READ,
  'GET /v1/actions/:id': READ,
  'POST /v1/actions/:id/approve': DECIDE,
  'POST /v1/actions/:id/reject': DECIDE,
  'POST /v1/cases/:id/verdict': DECIDE,
  'POST /v1/actions': DECIDE,
  'GET /v1/automation': READ,
  'POST /v1/automation/pause': ADMIN,
  'POST /v1/automation/resume': ADMIN,
  'GET /v1/actions/:id/explain': READ,
  'GET /v1/audit/events': READ,
  'GET /v1/audit/export': AUDIT,
  'GET /v1/audit/verify': AUDIT,
  'GET /v1/stream': READ,
  'GET /v1/signals': READ,
  'GET /v1/signals/jwks': 'public',
  'GET /.well-known/ssf-configuration': 'public',
  'GET /metrics': READ,
  'GET /healthz': 'public',
  'GET /readyz': 'public',
  'GET /docs': 'public',
  'GET /docs/json': 'public',
};

function roles(key: string): readonly Role[] | 'public' {
  const r = ROUTE_ROLES[key];
  if (!r) throw new Error(`no roles declared for ${key}`);
  return r;
}

/** Every authenticated route may answer these (429: failed authentication throttled; 503: storage fault). */
const E = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 429: ErrorBody, 503: ErrorBody };
const EventRef = z.object({ id: z.string(), type: z.string() });
const refs = (events: readonly NewEvent[]) => events.map((e) => ({ id: e.id, type: e.type }));

/** The acting role recorded with a human command: the most specific one that allows the route. */
function actingRole(p: Principal, allowed: readonly Role[]): Role {
  return (
    (['analyst', 'auditor', 'service', 'admin'] as const).find(
      (r) => p.roles.includes(r) && allowed.includes(r),
    ) ?? p.roles[0]!
  );
}

function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  // Spreadsheet formula injection: a cell must not start with a formula character.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CSV_COLUMNS = [
  'position',
  'id',
  'type',
  'stream',
  'revision',
  'occurredAt',
  'recordedAt',
  'identity',
  'caseId',
  'actionId',
  'actor',
  'ruleId',
  'policyVersion',
  'actionType',
  'causationId',
  'correlationId',
  'missingFromStore',
  'data',
] as const;

function csvRow(e: AuditEvent): string {
  const v: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    position: e.position,
    id: e.id,
    type: e.type,
    stream: e.stream,
    revision: e.revision,
    occurredAt: e.occurredAt,
    recordedAt: e.recordedAt,
    identity: e.index.identity,
    caseId: e.index.caseId,
    actionId: e.index.actionId,
    actor: e.index.actor,
    ruleId: e.index.ruleId,
    policyVersion: e.index.policyVersion,
    actionType: e.index.actionType,
    causationId: e.causationId,
    correlationId: e.correlationId,
    missingFromStore: e.missingFromStore,
    data: e.data,
  };
  return `${CSV_COLUMNS.map((c) => csvCell(v[c])).join(',')}\r\n`;
}

function auditFilter(q: z.output<typeof AuditExportQuery> | z.output<typeof AuditQuery>): AuditFilter {
  const f: AuditFilter = {};
  if (q.identity) f.identity = q.identity;
  if (q.case) f.caseId = q.case;
  if (q.action) f.actionId = q.action;
  if (q.actor) f.actor = q.actor;
  if (q.actionType) f.actionType = q.actionType;
  if (q.rule) f.ruleId = q.rule;
  if (q.policyVersion) f.policyVersion = q.policyVersion;
  if (q.type) f.type = q.type as EventType;
  if (q.from) f.from = q.from;
  if (q.to) f.to = q.to;
  return f;
}

function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/**
 * The HTTP API for analysts, auditors, admins and ingesting services. Reads come from the
 * projector's views; commands go through the gateways and are answered only once the projector
 * includes what they appended (a GET right after sees it).
 */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const { store, projector, ingest, decider, automation } = deps;
  const bodyLimit = deps.bodyLimitBytes ?? 1024 * 1024;
  const now = deps.now ?? (() => new Date());
  const readyLag = deps.readyLagEvents ?? 100;
  const settleTimeout = deps.settleTimeoutMs ?? 10_000;
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const auth = new Authenticator(deps.auth);
  const log = deps.log;

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
    // Retriable unavailability (storage faults): tell clients when to come back.
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

  await app.register(swagger, {
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
          'Automated identity response: cases, actions and approvals, audit and tamper evidence. Every endpoint but /healthz, /readyz, /docs, /v1/signals/jwks and /.well-known/ssf-configuration needs credentials: `Authorization: Bearer <jwt>` (claims `sub`, `roles`), `Authorization: ApiKey <key>` or `X-API-Key: <key>`. Errors are `{error: {code, message, ...details}}`; 400s list every failing field in `error.issues`.',
      },
      tags: [
        { name: 'ingest', description: 'Detections in' },
        { name: 'cases', description: 'Cases and identities' },
        { name: 'actions', description: 'Actions, approvals, verdicts' },
        { name: 'audit', description: 'Audit queries, exports, tamper evidence' },
        { name: 'control', description: 'Kill switch' },
        { name: 'ops', description: 'Health, readiness, metrics, live feed' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          apiKeyHeader: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
    },
  });

  const unbindMetrics = bindProjectorMetrics(projector, store);
  const streams = new Set<ServerResponse>();
  // Live feeds are long-lived responses: end them before the server waits for connections to drain.
  app.addHook('preClose', async () => {
    for (const s of streams) s.end();
  });
  app.addHook('onClose', async () => {
    unbindMetrics();
  });

  /** Read-your-writes: wait until the views include everything appended so far. */
  const settle = async (): Promise<void> => {
    const head = await store.headPosition();
    try {
      await projector.waitFor(head, settleTimeout);
    } catch (err) {
      log?.warn({ err, head }, 'projector did not catch up before answering; the write itself succeeded');
    }
  };

  /** Submits a human command; a decider "not found" for something the views know is a conflict. */
  const submit = async (input: DeciderInput): Promise<NewEvent[]> => {
    try {
      return (await decider.submit(input)).events;
    } catch (err) {
      if (err instanceof NotFoundError)
        throw new ConflictError(`${err.message}: it is no longer open`, { reason: 'not_open' });
      throw err;
    }
  };

  // ---------------------------------------------------------------- ingest

  addRoute(app, auth, {
    method: 'POST',
    url: '/v1/detections',
    roles: roles('POST /v1/detections'),
    summary: 'Submit normalized detections',
    description:
      'One normalized detection or a non-empty array. All or nothing: one invalid item rejects the whole request (400 naming `<index>.<field>`; 413 when `raw` or `evidence` is over its size limit), and the request is appended in one transaction. Answers 202 once every detection is durably recorded; the same detection (source + id, same content) again is counted as a duplicate. The same source + id with another identity or other content is refused (409 `DUPLICATE_CONFLICT`, naming both identities) and recorded as a DetectionConflicted event.',
    tags: ['ingest'],
    body: DetectionsBody,
    parseBody: parseDetections,
    response: {
      202: z.object({
        accepted: z.number().int(),
        duplicates: z.number().int(),
        receipts: z.array(
          z.object({
            id: z.string(),
            source: z.string(),
            status: z.enum(['accepted', 'duplicate', 'queued']),
            eventId: z.string().optional(),
          }),
        ),
      }),
      ...E,
      409: ErrorBody,
      413: ErrorBody,
      415: ErrorBody,
    },
    handler: async ({ body, reply }) => {
      const detections = body as unknown as Parameters<IngestGateway['accept']>[0];
      const receipts = await ingest.accept(detections);
      const duplicates = receipts.filter((r) => r.status === 'duplicate').length;
      const accepted = receipts.length - duplicates;
      recordDetectionsIn(accepted, 'accepted');
      recordDetectionsIn(duplicates, 'duplicate');
      await settle();
      reply.status(202);
      return { accepted, duplicates, receipts };
    },
  });

  // ---------------------------------------------------------------- cases and identities

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/cases',
    roles: roles('GET /v1/cases'),
    summary: 'List cases, newest first',
    tags: ['cases'],
    query: CasesQuery,
    response: { 200: page(CaseView), ...E },
    handler: async ({ query }) =>
      listCases(projector, {
        limit: query.limit,
        ...(query.status ? { status: query.status } : {}),
        ...(query.identity ? { identity: query.identity } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      }),
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/cases/:id',
    roles: roles('GET /v1/cases/:id'),
    summary: 'One case: detections, actions, timeline',
    tags: ['cases'],
    params: IdParams,
    response: { 200: CaseDetail, ...E, 404: ErrorBody },
    handler: async ({ params }) => {
      const c = getCase(projector, params.id);
      if (!c) throw new NotFoundError('case', params.id);
      return c;
    },
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/identities/:provider/:id',
    roles: roles('GET /v1/identities/:provider/:id'),
    summary: 'Identity state: containment in effect, pending approvals, residue after rollback',
    description: 'URL-encode the id (e.g. `/` as `%2F`).',
    tags: ['cases'],
    params: IdentityParams,
    response: { 200: IdentityView, ...E, 404: ErrorBody },
    handler: async ({ params }) => {
      const v = getIdentity(projector, params.provider, params.id);
      if (!v) throw new NotFoundError('identity', `${params.provider}:${params.id}`);
      return v;
    },
  });

  // ---------------------------------------------------------------- actions

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/actions',
    roles: roles('GET /v1/actions'),
    summary: 'List actions, newest first (the approval queue is `?status=proposed`)',
    description:
      '`status=verified` lists executed actions whose verification held (their status is `executed`, `verified: true`).',
    tags: ['actions'],
    query: ActionsQuery,
    response: { 200: page(ActionView), ...E },
    handler: async ({ query }) =>
      listActions(projector, {
        limit: query.limit,
        ...(query.status ? { status: query.status } : {}),
        ...(query.identity ? { identity: query.identity } : {}),
        ...(query.case ? { caseId: query.case } : {}),
        ...(query.type ? { type: query.type } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      }),
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/actions/:id',
    roles: roles('GET /v1/actions/:id'),
    summary: 'One action',
    tags: ['actions'],
    params: IdParams,
    response: { 200: ActionView, ...E, 404: ErrorBody },
    handler: async ({ params }) => {
      const a = getAction(projector, params.id);
      if (!a) throw new NotFoundError('action', params.id);
      return a;
    },
  });

  const findPending = (id: string, principal: Principal, verb: string): ActionView => {
    const a = getAction(projector, id);
    if (!a) throw new NotFoundError('action', id);
    if (a.status !== 'proposed') {
      throw new ApprovalError(`action ${id} is ${a.status}, not pending approval: it cannot be ${verb}`, {
        status: a.status,
      });
    }
    if (verb === 'approved') {
      if (a.approvers.includes(principal.id)) {
        throw new ApprovalError(
          `${principal.id} already approved ${id}; a second, distinct approver is needed`,
          {
            approvers: a.approvers,
          },
        );
      }
      if (a.proposedBy === principal.id)
        throw new ApprovalError(`${principal.id} proposed ${id} and cannot approve it`);
    }
    return a;
  };

  const CommandResult = z.object({ action: ActionView, events: z.array(EventRef) });

  addRoute(app, auth, {
    method: 'POST',
    url: '/v1/actions/:id/approve',
    roles: roles('POST /v1/actions/:id/approve'),
    summary: 'Approve a pending action as the authenticated principal',
    description:
      'The approver is the authenticated principal, never a name from the body. `argsDigest` (optional) binds the approval to the exact arguments shown; a mismatch is 409. Two-person actions need two distinct principals. `comment` is recorded in the ActionApproved event.',
    tags: ['actions'],
    params: IdParams,
    body: ApproveBody,
    response: { 200: CommandResult, ...E, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody },
    handler: async ({ params, body, principal, request }) => {
      const p = principal!;
      const a = findPending(params.id, p, 'approved');
      if (body.comment)
        request.log.info({ actionId: a.id, by: p.id, comment: body.comment }, 'approval comment');
      const events = await submit({
        type: 'approve',
        at: now().toISOString(),
        identity: a.identity,
        actionId: a.id,
        by: { id: p.id, role: actingRole(p, DECIDE) },
        ...(body.argsDigest ? { argsDigest: body.argsDigest } : {}),
        ...(body.comment ? { comment: body.comment } : {}),
      });
      await settle();
      return { action: getAction(projector, a.id)!, events: refs(events) };
    },
  });

  addRoute(app, auth, {
    method: 'POST',
    url: '/v1/actions/:id/reject',
    roles: roles('POST /v1/actions/:id/reject'),
    summary: 'Reject a pending action',
    tags: ['actions'],
    params: IdParams,
    body: RejectBody,
    response: { 200: CommandResult, ...E, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody },
    handler: async ({ params, body, principal }) => {
      const p = principal!;
      const a = findPending(params.id, p, 'rejected');
      const events = await submit({
        type: 'reject',
        at: now().toISOString(),
        identity: a.identity,
        actionId: a.id,
        by: { id: p.id, role: actingRole(p, DECIDE) },
        reason: body.reason,
      });
      await settle();
      return { action: getAction(projector, a.id)!, events: refs(events) };
    },
  });

  addRoute(app, auth, {
    method: 'POST',
    url: '/v1/cases/:id/verdict',
    roles: roles('POST /v1/cases/:id/verdict'),
    summary: 'Resolve a case: benign (its executed actions are rolled back) or malicious',
    tags: ['actions'],
    params: IdParams,
    body: VerdictBody,
    response: {
      200: z.object({ case: CaseDetail, events: z.array(EventRef) }),
      ...E,
      404: ErrorBody,
      409: ErrorBody,
      413: ErrorBody,
    },
    handler: async ({ params, body, principal, request }) => {
      const p = principal!;
      const c = getCase(projector, params.id);
      if (!c) throw new NotFoundError('case', params.id);
      if (c.status !== 'open')
        throw new ConflictError(`case ${c.id} is already resolved (${c.verdict})`, { verdict: c.verdict });
      if (body.comment)
        request.log.info({ caseId: c.id, by: p.id, comment: body.comment }, 'verdict comment');
      const events = await submit({
        type: 'verdict',
        at: now().toISOString(),
        identity: c.identity,
        caseId: c.id,
        verdict: body.verdict,
        by: { id: p.id, role: actingRole(p, DECIDE) },
        ...(body.comment ? { comment: body.comment } : {}),
      });
      await settle();
      return { case: getCase(projector, c.id)!, events: refs(events) };
    },
  });

  addRoute(app, auth, {
    method: 'POST',
    url: '/v1/actions',
    roles: roles('POST /v1/actions'),
    summary: 'Propose an action (analyst-initiated); it needs another principal to approve it',
    tags: ['actions'],
    body: ProposeBody,
    response: { 201: CommandResult, ...E, 409: ErrorBody, 413: ErrorBody },
    handler: async ({ body, principal, reply }) => {
      const p = principal!;
      const events = await decider.submit({
        type: 'propose',
        at: now().toISOString(),
        identity: body.identity,
        action: body.action,
        ...(body.args ? { args: body.args } : {}),
        by: { id: p.id, role: actingRole(p, DECIDE) },
        reason: body.reason,
      });
      const proposed = events.events.find((e) => e.type === 'ActionProposed');
      if (proposed?.type !== 'ActionProposed') throw new ConflictError('the decider proposed no action');
      await settle();
      reply.status(201);
      return { action: getAction(projector, proposed.data.actionId)!, events: refs(events.events) };
    },
  });

  // ---------------------------------------------------------------- kill switch

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/automation',
    roles: roles('GET /v1/automation'),
    summary: 'Kill switch state and the active policy',
    tags: ['control'],
    response: { 200: AutomationView, 401: ErrorBody, 403: ErrorBody },
    handler: async () => projector.automation(),
  });

  for (const verb of ['pause', 'resume'] as const) {
    addRoute(app, auth, {
      method: 'POST',
      url: `/v1/automation/${verb}`,
      roles: roles(`POST /v1/automation/${verb}`),
      summary:
        verb === 'pause' ? 'Pause automation: nothing is auto-approved until resumed' : 'Resume automation',
      tags: ['control'],
      body: ReasonBody,
      response: { 200: z.object({ automation: AutomationView, event: EventRef }), ...E, 413: ErrorBody },
      handler: async ({ body, principal }) => {
        const event = await automation[verb](principal!.id, body.reason);
        await settle();
        return { automation: projector.automation(), event: { id: event.id, type: event.type } };
      },
    });
  }

  // ---------------------------------------------------------------- audit

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/actions/:id/explain',
    roles: roles('GET /v1/actions/:id/explain'),
    summary:
      'Why this action happened: detections → rule and policy → guards → approvals → execution → verification → rollback and residue',
    description: 'Built from the event streams alone (identity and action streams), not from the views.',
    tags: ['audit'],
    params: IdParams,
    response: { 200: Explanation, ...E, 404: ErrorBody },
    handler: async ({ params }) => {
      const a = getAction(projector, params.id);
      if (!a) throw new NotFoundError('action', params.id);
      const x = await explainAction(store, { identity: a.identity }, a.id);
      if (!x) throw new NotFoundError('action proposal in the event store', params.id);
      return x;
    },
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/audit/events',
    roles: roles('GET /v1/audit/events'),
    summary:
      'Query recorded events by identity, case, action, actor, action type, rule, policy version, type and time',
    description:
      'In global order; payloads are read from the event store. `from`/`to` bound occurredAt, inclusive.',
    tags: ['audit'],
    query: AuditQuery,
    response: { 200: page(AuditEvent), ...E },
    handler: async ({ query }) =>
      queryAuditEvents(projector, store, auditFilter(query), {
        limit: query.limit,
        ...(query.cursor ? { cursor: query.cursor } : {}),
      }),
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/audit/export',
    roles: roles('GET /v1/audit/export'),
    summary: 'Export matching events as NDJSON (one AuditEvent per line) or CSV, streamed',
    tags: ['audit'],
    query: AuditExportQuery,
    produces: ['application/x-ndjson', 'text/csv'],
    response: {
      200: { type: 'string', description: 'NDJSON (application/x-ndjson) or CSV (text/csv)' },
      ...E,
    },
    handler: async ({ query, reply }) => {
      const filter = auditFilter(query);
      const csv = query.format === 'csv';
      async function* lines(): AsyncGenerator<string> {
        if (csv) yield `${CSV_COLUMNS.join(',')}\r\n`;
        for await (const e of streamAuditEvents(projector, store, filter))
          yield csv ? csvRow(e) : `${JSON.stringify(e)}\n`;
      }
      reply
        .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
        .header('content-disposition', `attachment; filename="tourniquet-audit.${csv ? 'csv' : 'ndjson'}"`);
      return reply.send(Readable.from(lines()));
    },
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/audit/verify',
    roles: roles('GET /v1/audit/verify'),
    summary:
      'Verify the hash chain over every recorded event; reports the first altered, missing or reordered one',
    tags: ['audit'],
    query: z.strictObject({}),
    response: {
      200: z.object({
        ok: z.boolean(),
        checked: z.number().int(),
        head: z.object({ position: z.number().int(), hash: z.string() }).nullable(),
        firstBad: z
          .object({
            position: z.number().int(),
            id: z.string().nullable(),
            problem: z.enum(['altered', 'missing', 'reordered']),
            detail: z.string(),
            stream: z.string().optional(),
            revision: z.number().int().optional(),
          })
          .optional(),
      }),
      401: ErrorBody,
      403: ErrorBody,
      501: ErrorBody,
    },
    handler: async () => {
      if (!(store instanceof SqliteEventStore)) {
        throw new TourniquetError(
          'INTERNAL',
          `hash-chain verification needs the SQLite event store (this is ${store.name})`,
          {
            status: 501,
          },
        );
      }
      return verifyChain(store);
    },
  });

  // ---------------------------------------------------------------- live feed

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/stream',
    roles: roles('GET /v1/stream'),
    summary:
      'Server-sent events: every new recorded event (`id` = position, `event` = type, `data` = the event)',
    description:
      'Resume with `Last-Event-ID` or `?after=<position>`; filter with `?types=A,B`. A comment line is sent as a heartbeat.',
    tags: ['ops'],
    query: StreamQuery,
    produces: 'text/event-stream',
    response: { 200: { type: 'string' }, ...E },
    handler: async ({ query, request, reply }) => {
      const lastId = request.headers['last-event-id'];
      const fromHeader = typeof lastId === 'string' && /^\d+$/.test(lastId) ? Number(lastId) : undefined;
      const after = query.after ?? fromHeader ?? (await store.headPosition());
      const types = query.types ? (query.types.split(',').map((t) => t.trim()) as EventType[]) : undefined;
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.write(`retry: 3000\n: tourniquet live feed after position ${after}\n\n`);
      streams.add(raw);
      const write = async (chunk: string) => {
        if (!raw.write(chunk)) await new Promise<void>((resolve) => raw.once('drain', resolve));
      };
      const sub = store.subscribeAll(
        {
          after,
          ...(types ? { types } : {}),
          onError: (err) => {
            log?.warn({ err }, 'live feed subscription stopped');
            raw.end();
          },
        },
        async (e: RecordedEvent) => {
          if (raw.writableEnded) return;
          await write(`id: ${e.position}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
        },
      );
      const heartbeat = setInterval(() => {
        if (!raw.writableEnded) raw.write(': heartbeat\n\n');
      }, heartbeatMs);
      heartbeat.unref();
      const cleanup = () => {
        clearInterval(heartbeat);
        streams.delete(raw);
        void sub.stop();
      };
      raw.on('close', cleanup);
      request.raw.on('close', cleanup);
    },
  });

  // ---------------------------------------------------------------- ops

  const signals = deps.signals;
  const noSignals = () =>
    new TourniquetError('NOT_FOUND', 'no Shared Signals transmitter runs here (providers file: signals)', {
      status: 404,
    });
  const Jwks = z.object({ keys: z.array(z.record(z.string(), z.unknown())) });
  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/signals',
    roles: roles('GET /v1/signals'),
    summary: 'Shared Signals out: the transmitter and where each receiver stands',
    description:
      'CAEP/RISC Security Event Tokens pushed to receivers for containment that took effect (docs/signals.md). `position` is the last event each receiver has had; compare it with `head`.',
    tags: ['signals'],
    response: {
      200: z.object({
        configured: z.boolean(),
        issuer: z.string().nullable(),
        head: z.number().int(),
        receivers: z.array(
          z.object({
            name: z.string(),
            url: z.string(),
            audience: z.string(),
            events: z.array(z.string()).nullable(),
            running: z.boolean(),
            position: z.number().int(),
            delivered: z.number().int(),
            deadLettered: z.number().int(),
            retries: z.number().int(),
          }),
        ),
      }),
      401: ErrorBody,
      403: ErrorBody,
    },
    handler: async () => ({
      configured: signals !== undefined,
      issuer: signals?.issuer ?? null,
      head: await store.headPosition(),
      receivers: signals ? await signals.status() : [],
    }),
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/signals/jwks',
    roles: roles('GET /v1/signals/jwks'),
    summary: 'The public keys that verify the SETs this transmitter signs',
    tags: ['signals'],
    response: { 200: Jwks, 404: ErrorBody },
    handler: async () => {
      if (!signals) throw noSignals();
      return signals.jwks();
    },
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/.well-known/ssf-configuration',
    roles: roles('GET /.well-known/ssf-configuration'),
    summary: 'Shared Signals transmitter configuration metadata (SSF 1.0)',
    description:
      'Push delivery only (RFC 8935); receivers are configured by the operator, not through a stream API.',
    tags: ['signals'],
    response: {
      200: z.object({
        spec_version: z.string(),
        issuer: z.string(),
        jwks_uri: z.string(),
        delivery_methods_supported: z.array(z.string()),
      }),
      404: ErrorBody,
    },
    handler: async ({ request }) => {
      if (!signals) throw noSignals();
      return {
        spec_version: '1_0',
        issuer: signals.issuer,
        jwks_uri: `${request.protocol}://${request.host}/v1/signals/jwks`,
        delivery_methods_supported: ['urn:ietf:rfc:8935'],
      };
    },
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/metrics',
    roles: roles('GET /metrics'),
    summary: 'Prometheus metrics',
    tags: ['ops'],
    produces: 'text/plain',
    response: { 200: { type: 'string' }, 401: ErrorBody, 403: ErrorBody },
    handler: async ({ reply }) => {
      const text = await metrics.metrics();
      reply.header('content-type', metrics.contentType);
      return reply.send(text);
    },
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/healthz',
    roles: roles('GET /healthz'),
    summary: 'Liveness',
    tags: ['ops'],
    response: { 200: z.object({ status: z.literal('ok') }) },
    handler: async () => ({ status: 'ok' as const }),
  });

  const Ready = z.object({
    ready: z.boolean(),
    /** False after a storage fault (disk full, read-only, locked, corrupt) until a write succeeds. */
    writable: z.boolean(),
    live: z.boolean(),
    position: z.number().int(),
    head: z.number().int(),
    lag: z.number().int(),
    maxLag: z.number().int(),
  });
  addRoute(app, auth, {
    method: 'GET',
    url: '/readyz',
    roles: roles('GET /readyz'),
    summary: 'Readiness: the projector is live and within the allowed lag of the store head',
    tags: ['ops'],
    response: { 200: Ready, 503: Ready },
    handler: async ({ reply }) => {
      let head = 0;
      try {
        head = await store.headPosition();
      } catch {
        head = Number.MAX_SAFE_INTEGER;
      }
      const lag = Math.max(0, head - projector.position);
      // After a storage fault, not ready until a write succeeds again (a probe write is tried here).
      const writable = store.health?.().writable === false ? ((await store.probeWrite?.()) ?? false) : true;
      const ready = projector.live && lag <= readyLag && writable;
      reply.status(ready ? 200 : 503);
      return {
        ready,
        writable,
        live: projector.live,
        position: projector.position,
        head: Math.min(head, Number.MAX_SAFE_INTEGER),
        lag,
        maxLag: readyLag,
      };
    },
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/docs/json',
    roles: roles('GET /docs/json'),
    summary: 'OpenAPI document',
    tags: ['ops'],
    hide: true,
    response: { 200: { type: 'object', additionalProperties: true } },
    handler: async () => app.swagger(),
  });

  addRoute(app, auth, {
    method: 'GET',
    url: '/docs',
    roles: roles('GET /docs'),
    summary: 'API documentation',
    tags: ['ops'],
    hide: true,
    produces: 'text/html',
    response: { 200: { type: 'string' } },
    handler: async ({ reply }) => {
      const doc = app.swagger() as {
        paths?: Record<string, Record<string, { summary?: string; description?: string }>>;
      };
      const rows: string[] = [];
      for (const [path, ops] of Object.entries(doc.paths ?? {})) {
        for (const [method, op] of Object.entries(ops)) {
          rows.push(
            `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escapeHtml(path)}</code></td><td>${escapeHtml(op.summary ?? '')}<br><small>${escapeHtml(op.description ?? '').replace(/\n/g, '<br>')}</small></td></tr>`,
          );
        }
      }
      reply.header('content-type', 'text/html; charset=utf-8');
      return reply.send(
        `<!doctype html><html><head><meta charset="utf-8"><title>Tourniquet API</title><style>body{font-family:system-ui,sans-serif;margin:2rem}td{vertical-align:top;padding:.3rem .6rem;border-bottom:1px solid #ddd}</style></head><body><h1>Tourniquet API</h1><p>OpenAPI 3 document: <a href="/docs/json">/docs/json</a>. Authenticate with <code>Authorization: Bearer &lt;jwt&gt;</code> or <code>X-API-Key</code>.</p><table>${rows.join('')}</table></body></html>`,
      );
    },
  });

  await app.ready();
  return app;
}
