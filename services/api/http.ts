import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type FieldIssue, TourniquetError } from '../../platform/errors.ts';
import { type Authenticator, ForbiddenError, type Principal, type Role, UnauthorizedError } from './auth.ts';

/**
 * The HTTP plumbing shared by every route: zod validation with field-level issues, JSON schema for
 * the OpenAPI document derived from the same zod schemas, authentication and role checks before
 * the body is even read, and one error body shape: `{error: {code, message, ...details}}`.
 */

type JsonSchema = Record<string, unknown>;

/** JSON schema (OpenAPI 3.0 dialect) of a zod schema, as accepted (`input`) or as produced (`output`). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'output'): JsonSchema {
  const s = z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' }) as JsonSchema;
  delete s.$schema;
  return s;
}

export const ErrorBody = z.object({
  error: z.looseObject({
    code: z.string(),
    message: z.string(),
    retriable: z.boolean().optional(),
    in: z.enum(['body', 'querystring', 'params', 'headers']).optional(),
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});

type HttpPart = 'body' | 'querystring' | 'params' | 'headers';

/** zod issues as field issues; unknown keys become one issue per key, named by its path. */
export function fieldIssues(
  issues: ReadonlyArray<{
    path: ReadonlyArray<PropertyKey>;
    message: string;
    code?: string;
    keys?: string[];
  }>,
): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const i of issues) {
    const base = i.path.map(String);
    if (i.code === 'unrecognized_keys' && i.keys) {
      for (const k of i.keys) out.push({ path: [...base, k].join('.'), message: 'unknown field' });
    } else {
      out.push({ path: base.join('.') || '(root)', message: i.message });
    }
  }
  return out;
}

function validationError(part: HttpPart, issues: FieldIssue[]): TourniquetError {
  const where = part === 'querystring' ? 'query' : part;
  const summary = issues
    .slice(0, 5)
    .map((i) => `${i.path}: ${i.message}`)
    .join('; ');
  return new TourniquetError(
    'VALIDATION_FAILED',
    `invalid ${where}: ${summary}${issues.length > 5 ? '; …' : ''}`,
    {
      status: 400,
      details: { in: part, issues },
    },
  );
}

type Parser = (data: unknown) =>
  | { success: true; data: unknown }
  /** `error` replaces the default 400 (e.g. a 413 for a field over its size limit). */
  | { success: false; issues: FieldIssue[]; error?: TourniquetError };

function zodParser(schema: z.ZodType): Parser {
  return (data) => {
    const r = schema.safeParse(data);
    return r.success
      ? { success: true, data: r.data }
      : { success: false, issues: fieldIssues(r.error.issues) };
  };
}

interface RouteContext<B, Q, P> {
  body: B;
  query: Q;
  params: P;
  /** The authenticated caller (undefined only on public routes). */
  principal: Principal | undefined;
  request: FastifyRequest;
  reply: FastifyReply;
}

export interface RouteDef<B extends z.ZodType, Q extends z.ZodType, P extends z.ZodType> {
  method: 'GET' | 'POST';
  url: string;
  /** Roles allowed, or 'public' (no credentials needed). */
  roles: readonly Role[] | 'public';
  summary: string;
  description?: string;
  tags: string[];
  body?: B;
  /** Replaces the zod parse of the body (the zod schema still documents it). */
  parseBody?: Parser;
  query?: Q;
  params?: P;
  /** Response schemas by status: zod (documented as output) or raw JSON schema. */
  response: Record<number, z.ZodType | JsonSchema>;
  /** For non-JSON responses: the media type documented for 200. */
  produces?: string | readonly string[];
  hide?: boolean;
  handler: (ctx: RouteContext<z.output<B>, z.output<Q>, z.output<P>>) => Promise<unknown>;
}

const principals = new WeakMap<FastifyRequest, Principal>();

/** Authenticates a request as this principal before its route runs (the console's session cookie). */
export function authenticateAs(request: FastifyRequest, principal: Principal): void {
  principals.set(request, principal);
}

const ROLE_TEXT = (roles: readonly Role[] | 'public') =>
  roles === 'public' ? 'public (no credentials)' : roles.join(', ');

/** Registers a route with zod validation, auth, and a complete OpenAPI entry. */
export function addRoute<
  B extends z.ZodType = z.ZodUnknown,
  Q extends z.ZodType = z.ZodUnknown,
  P extends z.ZodType = z.ZodUnknown,
>(
  app: FastifyInstance,
  auth: Pick<Authenticator, 'authenticate' | 'authenticateFrom'>,
  def: RouteDef<B, Q, P>,
): void {
  const parsers: Partial<Record<HttpPart, Parser>> = {};
  if (def.body) parsers.body = def.parseBody ?? zodParser(def.body);
  if (def.query) parsers.querystring = zodParser(def.query);
  if (def.params) parsers.params = zodParser(def.params);

  const response: Record<string, unknown> = {};
  // any body can be over the server's body limit: that answer is documented wherever a body is read
  const declared = def.body && !(413 in def.response) ? { ...def.response, 413: ErrorBody } : def.response;
  for (const [status, s] of Object.entries(declared)) {
    const schema = s instanceof z.ZodType ? jsonSchema(s, 'output') : s;
    response[status] =
      def.produces && Number(status) < 300
        ? {
            description: 'OK',
            content: Object.fromEntries([def.produces].flat().map((type) => [type, { schema }])),
          }
        : { description: describeStatus(Number(status)), ...schema };
  }
  const schema: Record<string, unknown> = {
    summary: def.summary,
    description: `${def.description ? `${def.description}\n\n` : ''}Roles: ${ROLE_TEXT(def.roles)}.`,
    tags: def.tags,
    security: def.roles === 'public' ? [] : [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    response,
    ...(def.hide ? { hide: true } : {}),
  };
  if (def.body) schema.body = jsonSchema(def.body, 'input');
  if (def.query) schema.querystring = jsonSchema(def.query, 'input');
  if (def.params) schema.params = jsonSchema(def.params, 'input');

  app.route({
    method: def.method,
    url: def.url,
    schema,
    validatorCompiler: ({ httpPart }) => {
      const part = httpPart as HttpPart;
      const parse = parsers[part];
      return (data: unknown) => {
        if (!parse) return { value: data };
        // A missing body is validated as `{}`, so that required fields are named one by one.
        const input = part === 'body' && data == null && !def.parseBody ? {} : data;
        const r = parse(input);
        return r.success ? { value: r.data } : { error: r.error ?? validationError(part, r.issues) };
      };
    },
    onRequest: async (request) => {
      if (def.roles === 'public') return;
      const principal = principals.get(request) ?? (await auth.authenticateFrom(request.headers, request.ip));
      if (!principal) {
        throw new UnauthorizedError(
          'authentication required: send Authorization: Bearer <jwt>, Authorization: ApiKey <key> or X-API-Key',
        );
      }
      if (!principal.roles.some((r) => (def.roles as readonly Role[]).includes(r))) {
        throw new ForbiddenError(
          `${principal.id} (roles: ${principal.roles.join(', ') || 'none'}) may not call ${def.method} ${def.url}; it needs one of: ${ROLE_TEXT(def.roles)}`,
          { required: def.roles },
        );
      }
      principals.set(request, principal);
    },
    handler: async (request, reply) => {
      const result = await def.handler({
        body: request.body as z.output<B>,
        query: request.query as z.output<Q>,
        params: request.params as z.output<P>,
        principal: principals.get(request),
        request,
        reply,
      });
      return result;
    },
  });
}

function describeStatus(status: number): string {
  const text: Record<number, string> = {
    200: 'OK',
    201: 'Created',
    202: 'Accepted',
    400: 'Invalid input: `error.issues` names every failing field',
    401: 'Missing, invalid or expired credentials',
    403: 'Authenticated, but no role allows this',
    404: 'Not found',
    409: 'Conflict with the current state (e.g. not pending, already approved by this principal)',
    413: 'Body over the size limit',
    415: 'Unsupported media type (send application/json)',
    429: 'Too many failed authentication attempts from this address or key id: retry after Retry-After seconds',
    501: 'Not available with this event store',
    503: 'Unavailable: a storage fault (STORE_UNAVAILABLE, retriable, see Retry-After), or not ready',
  };
  return text[status] ?? String(status);
}

/** Maps any error to a status and the `{error: {...}}` body. */
export function toHttpError(
  err: unknown,
  bodyLimit: number,
): { status: number; body: Record<string, unknown> } {
  if (err instanceof TourniquetError) return { status: err.status, body: err.toJSON() };
  const e = err as FastifyError & { statusCode?: number };
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        body: {
          code: 'PAYLOAD_TOO_LARGE',
          message: `request body exceeds the limit of ${bodyLimit} bytes`,
          limit: bodyLimit,
        },
      };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return {
        status: 400,
        body: { code: 'MALFORMED_JSON', message: `request body is not valid JSON: ${e.message}`, in: 'body' },
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return {
        status: e.statusCode ?? 415,
        body: {
          code: 'UNSUPPORTED_MEDIA_TYPE',
          message: `${e.message}; send Content-Type: application/json`,
        },
      };
    default:
      break;
  }
  if (e instanceof SyntaxError || (e?.statusCode === 400 && /JSON/i.test(e.message))) {
    return {
      status: 400,
      body: { code: 'MALFORMED_JSON', message: `request body is not valid JSON: ${e.message}`, in: 'body' },
    };
  }
  if (e?.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, body: { code: e.code ?? 'BAD_REQUEST', message: e.message } };
  }
  return { status: 500, body: { code: 'INTERNAL', message: 'internal error' } };
}
