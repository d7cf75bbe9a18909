import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import cookie from '@fastify/cookie';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TourniquetError } from '../../../platform/errors.ts';
import type { Principal, Role } from '../auth.ts';
import { authenticateAs } from '../http.ts';

/**
 * Console sessions: a browser signs in once (API key or single sign-on) and then carries an opaque,
 * HttpOnly cookie instead of a credential the page script could read. Sessions live on the server
 * (the cookie is only a random handle), end after an idle timeout or an absolute lifetime, and end
 * at once on POST /logout.
 *
 * Every state-changing request made with the cookie must prove it comes from a console page: a
 * per-session CSRF token in the `X-CSRF-Token` header (or the `_csrf` field of a console form), an
 * `Origin` equal to this server's own, and no `Sec-Fetch-Site: cross-site`. With SameSite=Lax the
 * browser does not even send the cookie on a cross-site POST; the token check holds where it would.
 *
 * Requests carrying `Authorization` or `X-API-Key` are left alone: the JSON API's bearer and API-key
 * authentication is unchanged, and a credential header always wins over a cookie.
 */

export const SESSION_COOKIE = 'tq_session';
export const CSRF_HEADER = 'x-csrf-token';
export const CSRF_FIELD = '_csrf';
/** Roles that may use the console (a `service` principal only feeds detections). */
export const CONSOLE_ROLES: readonly Role[] = ['analyst', 'auditor', 'admin'];

export interface ConsoleSessionOptions {
  /** A session unused for this long is over (default 30 minutes). */
  idleTimeoutMs?: number;
  /** A session is over this long after sign-in, used or not (default 12 hours). */
  absoluteTimeoutMs?: number;
  /** SameSite attribute of the cookie (default 'lax': links into the console from mail or chat keep working). */
  sameSite?: 'lax' | 'strict';
  /** Clock, for tests (default Date.now). */
  now?: () => number;
}

export interface ConsoleSession {
  principal: Principal;
  /** Sent back by console pages with every state-changing request. */
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

/** Server-side session table, keyed by the sha256 of the cookie value (the value itself is not kept). */
export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  readonly idleTimeoutMs: number;
  readonly absoluteTimeoutMs: number;
  readonly sameSite: 'lax' | 'strict';
  private readonly now: () => number;

  constructor(opts: ConsoleSessionOptions = {}) {
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 30 * 60_000;
    this.absoluteTimeoutMs = opts.absoluteTimeoutMs ?? 12 * 3600_000;
    this.sameSite = opts.sameSite ?? 'lax';
    this.now = opts.now ?? Date.now;
  }

  /** A new session for the principal: the cookie value (to hand to the browser once) and the session. */
  create(principal: Principal): { token: string; session: ConsoleSession } {
    this.sweep();
    const token = randomBytes(32).toString('base64url');
    const at = this.now();
    const session: ConsoleSession = {
      principal: { id: principal.id, roles: [...principal.roles], via: principal.via },
      csrfToken: randomBytes(24).toString('base64url'),
      createdAt: at,
      lastSeenAt: at,
    };
    this.sessions.set(keyOf(token), session);
    return { token, session };
  }

  /** The live session of a cookie value, its idle clock restarted; undefined when unknown or expired. */
  use(token: string): ConsoleSession | undefined {
    const key = keyOf(token);
    const s = this.sessions.get(key);
    if (!s) return undefined;
    const at = this.now();
    if (at - s.lastSeenAt > this.idleTimeoutMs || at - s.createdAt > this.absoluteTimeoutMs) {
      this.sessions.delete(key);
      return undefined;
    }
    s.lastSeenAt = at;
    return s;
  }

  end(token: string): boolean {
    return this.sessions.delete(keyOf(token));
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Drops expired sessions (on every sign-in, so the table never grows with abandoned browsers). */
  sweep(): void {
    const at = this.now();
    for (const [k, s] of this.sessions) {
      if (at - s.lastSeenAt > this.idleTimeoutMs || at - s.createdAt > this.absoluteTimeoutMs)
        this.sessions.delete(k);
    }
  }
}

const keyOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('base64url');

declare module 'fastify' {
  interface FastifyInstance {
    consoleSessions: ConsoleSessions;
  }
  interface FastifyContextConfig {
    /** This route accepts the CSRF token as the `_csrf` field of a form body (checked before the handler). */
    csrfForm?: boolean;
    /** A sign-in route: it checks the origin itself and replaces any session (no session token yet). */
    signIn?: boolean;
  }
}

const sessionOf = new WeakMap<FastifyRequest, { token: string; session: ConsoleSession }>();
const staleCookie = new WeakSet<FastifyRequest>();

/** The console session a request carries (after the session hook ran), if any. */
export function consoleSession(request: FastifyRequest): ConsoleSession | undefined {
  return sessionOf.get(request)?.session;
}

/** True when the request sent a session cookie that is unknown or expired (the page says so). */
export function sessionExpired(request: FastifyRequest): boolean {
  return staleCookie.has(request);
}

export class CsrfError extends TourniquetError {
  constructor(message: string) {
    super('FORBIDDEN', message, { status: 403, details: { reason: 'csrf' } });
    this.name = 'CsrfError';
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** This server's own origin as the browser names it (scheme://host[:port]). */
function ownOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

/**
 * Refuses a request that a browser sent from another site: `Sec-Fetch-Site` other than
 * same-origin/none, or an `Origin` other than this server's. Used for every state-changing request
 * with the cookie and for the sign-in form (login CSRF).
 */
export function assertSameOrigin(request: FastifyRequest): void {
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none')
    throw new CsrfError(`refused a ${site} request: console writes must come from the console itself`);
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== ownOrigin(request))
    throw new CsrfError(
      `refused a request from origin ${origin}: console writes must come from ${ownOrigin(request)}`,
    );
}

function tokenMatches(sent: unknown, expected: string): boolean {
  if (typeof sent !== 'string' || sent.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(sent), Buffer.from(expected));
}

/**
 * Creates a console session for an authenticated principal and sets its cookie on the reply.
 * Sign-in routes call it (API key here, OpenID Connect in its own module) after verifying who the
 * user is. Any session the browser already had ends first (no session fixation).
 */
export function startConsoleSession(
  request: FastifyRequest,
  reply: FastifyReply,
  principal: Principal,
): ConsoleSession {
  const sessions = request.server.consoleSessions;
  const previous = request.cookies?.[SESSION_COOKIE];
  if (previous) sessions.end(previous);
  const { token, session } = sessions.create(principal);
  reply.setCookie(SESSION_COOKIE, token, {
    path: '/',
    httpOnly: true,
    secure: request.protocol === 'https',
    sameSite: sessions.sameSite,
  });
  return session;
}

/** Ends the request's console session and clears the cookie. */
export function endConsoleSession(request: FastifyRequest, reply: FastifyReply): void {
  const token = request.cookies?.[SESSION_COOKIE];
  if (token) request.server.consoleSessions.end(token);
  reply.clearCookie(SESSION_COOKIE, { path: '/' });
}

function hasCredentialHeader(request: FastifyRequest): boolean {
  return request.headers.authorization !== undefined || request.headers['x-api-key'] !== undefined;
}

/**
 * Installs cookie parsing, the session table and the hook that authenticates cookie requests
 * (for console pages and the JSON API alike) and enforces CSRF on their state-changing requests.
 * Register on the root instance before the routes, so the hook runs before every route's own check.
 */
export async function registerConsoleSessions(
  app: FastifyInstance,
  opts: ConsoleSessionOptions | undefined,
): Promise<ConsoleSessions> {
  await app.register(cookie);
  const sessions = new ConsoleSessions(opts);
  app.decorate('consoleSessions', sessions);

  app.addHook('onRequest', async (request) => {
    if (hasCredentialHeader(request) || request.routeOptions.config?.signIn === true) return;
    const token = request.cookies[SESSION_COOKIE];
    if (!token) return;
    const session = sessions.use(token);
    if (!session) {
      staleCookie.add(request);
      return;
    }
    if (!SAFE_METHODS.has(request.method)) {
      assertSameOrigin(request);
      const formToken = request.routeOptions.config?.csrfForm === true;
      if (!formToken && !tokenMatches(request.headers[CSRF_HEADER], session.csrfToken))
        throw new CsrfError(
          `a state-changing request with the console cookie needs the ${CSRF_HEADER} header`,
        );
    }
    sessionOf.set(request, { token, session });
    authenticateAs(request, session.principal);
  });

  // Console forms carry the token in the body, which is parsed after onRequest.
  app.addHook('preHandler', async (request) => {
    if (SAFE_METHODS.has(request.method) || request.routeOptions.config?.csrfForm !== true) return;
    const s = sessionOf.get(request);
    if (!s) return;
    const sent =
      (request.body as Record<string, unknown> | undefined)?.[CSRF_FIELD] ?? request.headers[CSRF_HEADER];
    if (!tokenMatches(sent, s.session.csrfToken))
      throw new CsrfError(`this form needs the ${CSRF_FIELD} field of the page it came from`);
  });
  return sessions;
}
