import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createRemoteJWKSet, EncryptJWT, type JWTPayload, jwtDecrypt, jwtVerify } from 'jose';
import { z } from 'zod';
import { TourniquetError } from '../../../platform/errors.ts';
import {
  type AuthConfig,
  type OidcConfig,
  OidcConfigSchema,
  type Principal,
  ROLES,
  type Role,
} from '../auth.ts';

/**
 * Single sign-on for the console: OpenID Connect authorization code flow with PKCE (RFC 7636).
 *
 * GET /auth/oidc/login    -> 302 to the IdP's authorization endpoint (from the issuer's discovery
 *                            document), with state, nonce and an S256 code challenge. The state,
 *                            nonce and PKCE verifier travel in a short-lived signed HttpOnly cookie
 *                            bound to this browser, never in server memory (any API instance can
 *                            finish the flow).
 * GET /auth/oidc/callback -> checks state against the cookie, redeems the code with the verifier,
 *                            verifies the ID token (signature via the IdP's JWKS, issuer, audience,
 *                            exp, nonce), maps a claim to roles, and starts a console session.
 */

export type StartSession = (request: FastifyRequest, reply: FastifyReply, principal: Principal) => unknown;

export const FLOW_COOKIE = 'tq_oidc';
const FLOW_PATH = '/auth/oidc';
const FLOW_TTL_SECONDS = 600;

/** A refused sign-in; `reason` says which check failed (state, nonce, token, role, …). */
/**
 * The key sealing the flow cookie: derived from the server's token secret, so that every API
 * instance sharing auth.json can finish a flow another began.
 */
export function flowCookieKey(config: AuthConfig): Uint8Array | undefined {
  const secret = config.jwt?.hs256Secrets?.[0];
  return secret ? createHmac('sha256', secret).update('tourniquet oidc flow cookie').digest() : undefined;
}

export async function sealFlow(
  flow: { state: string; nonce: string; verifier: string; next: string },
  key: Uint8Array,
): Promise<string> {
  return new EncryptJWT(flow)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setIssuedAt()
    .setExpirationTime(`${FLOW_TTL_SECONDS}s`)
    .encrypt(key);
}

export class SignInError extends TourniquetError {
  constructor(reason: string, message: string, status = 401) {
    super('SIGN_IN_REFUSED', message, { status, details: { reason } });
    this.name = 'SignInError';
  }
}

const Discovery = z.object({
  issuer: z.string(),
  authorization_endpoint: z.url(),
  token_endpoint: z.url(),
  jwks_uri: z.url(),
});
type Discovery = z.infer<typeof Discovery>;

/** Discovery documents and JWKS per issuer, refreshed hourly (keys rotate; jose refetches unknown kids). */
class IssuerCache {
  private readonly entries = new Map<
    string,
    { at: number; doc: Discovery; jwks: ReturnType<typeof createRemoteJWKSet> }
  >();

  async get(issuer: string): Promise<{ doc: Discovery; jwks: ReturnType<typeof createRemoteJWKSet> }> {
    const hit = this.entries.get(issuer);
    if (hit && Date.now() - hit.at < 3_600_000) return hit;
    const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      throw new TourniquetError('IDP_UNAVAILABLE', `cannot reach the identity provider at ${url}`, {
        status: 502,
        retriable: true,
        cause: err,
      });
    }
    if (!res.ok)
      throw new TourniquetError('IDP_UNAVAILABLE', `${url} answered ${res.status}`, {
        status: 502,
        retriable: true,
      });
    const parsed = Discovery.safeParse(await res.json());
    if (!parsed.success)
      throw new TourniquetError('IDP_UNAVAILABLE', `${url} is not an OpenID discovery document`, {
        status: 502,
      });
    if (parsed.data.issuer !== issuer)
      throw new TourniquetError(
        'IDP_UNAVAILABLE',
        `discovery says issuer ${parsed.data.issuer}, configured ${issuer}`,
        { status: 502 },
      );
    const entry = {
      at: Date.now(),
      doc: parsed.data,
      jwks: createRemoteJWKSet(new URL(parsed.data.jwks_uri)),
    };
    this.entries.set(issuer, entry);
    return entry;
  }
}

/** The value at a dotted claim path (`realm_access.roles`), as a list of strings. */
export function claimValues(payload: JWTPayload, path: string): string[] {
  let v: unknown = payload;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return [];
    v = (v as Record<string, unknown>)[key];
  }
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** Tourniquet roles for an ID token: every claim value the role map names, deduplicated. */
export function mapRoles(payload: JWTPayload, config: Pick<OidcConfig, 'roleClaim' | 'roleMap'>): Role[] {
  const roles = new Set<Role>();
  for (const value of claimValues(payload, config.roleClaim))
    for (const role of config.roleMap[value] ?? []) roles.add(role);
  return ROLES.filter((r) => roles.has(r));
}

const b64url = (b: Buffer) => b.toString('base64url');
const sameText = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** A local path to return to after sign-in (never another origin: no open redirect). */
function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/';
}

export interface OidcRoutesOptions {
  /** The auth configuration in force (re-read per request: auth.json reloads apply). */
  config: () => AuthConfig;
  startSession: StartSession;
}

export function registerOidcRoutes(app: FastifyInstance, opts: OidcRoutesOptions): void {
  const issuers = new IssuerCache();
  // Without a token secret, a key of this process only (a flow must then end where it began).
  const fallbackKey = randomBytes(32);
  const cookieKey = () => flowCookieKey(opts.config()) ?? fallbackKey;
  const oidcConfig = (): OidcConfig => {
    const raw = opts.config().oidc;
    if (!raw)
      throw new TourniquetError('NOT_FOUND', 'single sign-on is not configured (auth.json: oidc)', {
        status: 404,
      });
    return OidcConfigSchema.parse(raw);
  };
  const redirectUri = (c: OidcConfig, request: FastifyRequest) =>
    c.redirectUri ?? `${request.protocol}://${request.host}/auth/oidc/callback`;

  app.get('/auth/oidc/login', { schema: { hide: true } }, async (request, reply) => {
    const c = oidcConfig();
    const { doc } = await issuers.get(c.issuer);
    const state = b64url(randomBytes(24));
    const nonce = b64url(randomBytes(24));
    const verifier = b64url(randomBytes(48));
    const challenge = b64url(createHash('sha256').update(verifier).digest());
    const next = safeNext((request.query as Record<string, unknown> | undefined)?.next);
    const flow = await sealFlow({ state, nonce, verifier, next }, cookieKey());
    const url = new URL(doc.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: c.clientId,
      redirect_uri: redirectUri(c, request),
      scope: c.scopes.join(' '),
      state,
      nonce,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    // Lax, not Strict: the IdP's redirect back is a cross-site top-level GET that must carry it.
    reply.setCookie(FLOW_COOKIE, flow, {
      path: FLOW_PATH,
      maxAge: FLOW_TTL_SECONDS,
      httpOnly: true,
      secure: request.protocol === 'https',
      sameSite: 'lax',
    });
    return reply.redirect(url.toString(), 302);
  });

  app.get('/auth/oidc/callback', { schema: { hide: true } }, async (request, reply) => {
    const q = (request.query ?? {}) as Record<string, unknown>;
    // The flow cookie is single use: cleared whatever the outcome.
    reply.clearCookie(FLOW_COOKIE, { path: FLOW_PATH });
    if (typeof q.error === 'string')
      throw new SignInError(
        'denied',
        `the identity provider refused the sign-in: ${q.error}${typeof q.error_description === 'string' ? ` (${q.error_description})` : ''}`,
      );
    if (typeof q.code !== 'string' || typeof q.state !== 'string')
      throw new SignInError('invalid', 'code and state are required', 400);
    const c = oidcConfig();
    const flow = await readFlow(request.cookies[FLOW_COOKIE], cookieKey());
    if (!sameText(flow.state, q.state))
      throw new SignInError('state_mismatch', 'state does not match this browser’s sign-in', 400);
    const { doc, jwks } = await issuers.get(c.issuer);
    const idToken = await redeemCode(doc, c, q.code, flow.verifier, redirectUri(c, request));
    const principal = await verifyIdToken(idToken, { config: c, jwks, nonce: flow.nonce });
    await opts.startSession(request, reply, principal);
    request.log.info({ principal: principal.id, roles: principal.roles }, 'signed in with single sign-on');
    if (!reply.sent) return reply.redirect(flow.next, 303);
    return reply;
  });
}

async function readFlow(
  cookie: string | undefined,
  key: Uint8Array,
): Promise<{ state: string; nonce: string; verifier: string; next: string }> {
  if (!cookie)
    throw new SignInError(
      'expired',
      'no sign-in in progress in this browser (or it is older than 10 minutes): start again',
      400,
    );
  try {
    const { payload } = await jwtDecrypt(cookie, key, {
      keyManagementAlgorithms: ['dir'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    const { state, nonce, verifier, next } = payload as Record<string, unknown>;
    if (typeof state !== 'string' || typeof nonce !== 'string' || typeof verifier !== 'string')
      throw new Error('incomplete');
    return { state, nonce, verifier, next: safeNext(next) };
  } catch {
    throw new SignInError('expired', 'the sign-in cookie is invalid or expired: start again', 400);
  }
}

function clientSecret(c: OidcConfig): string | undefined {
  if (c.clientSecretFile) return readFileSync(c.clientSecretFile, 'utf8').trim();
  return c.clientSecret;
}

async function redeemCode(
  doc: Discovery,
  c: OidcConfig,
  code: string,
  verifier: string,
  redirectUri: string,
): Promise<string> {
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
    client_id: c.clientId,
  });
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  const secret = clientSecret(c);
  if (secret) {
    // client_secret_basic (RFC 6749 2.3.1): both parts form-encoded before base64.
    const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${enc(c.clientId)}:${enc(secret)}`).toString('base64')}`;
  }
  let res: Response;
  try {
    res = await fetch(doc.token_endpoint, {
      method: 'POST',
      headers,
      body: form,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    throw new TourniquetError('IDP_UNAVAILABLE', 'cannot reach the token endpoint', {
      status: 502,
      retriable: true,
      cause: err,
    });
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok || typeof body.id_token !== 'string')
    throw new SignInError(
      'code_refused',
      `the identity provider did not redeem the code (${res.status} ${String(body.error ?? 'no id_token')})`,
    );
  return body.id_token;
}

export async function verifyIdToken(
  idToken: string,
  opts: {
    config: OidcConfig;
    jwks: Parameters<typeof jwtVerify>[1] & ((...a: never[]) => unknown);
    nonce: string;
  },
): Promise<Principal> {
  const c = opts.config;
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, opts.jwks, {
      issuer: c.issuer,
      audience: c.clientId,
      clockTolerance: c.clockToleranceSeconds,
      requiredClaims: ['exp', 'iat', 'sub'],
    }));
  } catch (err) {
    throw new SignInError('token_invalid', `ID token rejected: ${(err as Error).message}`);
  }
  if (typeof payload.nonce !== 'string' || !sameText(payload.nonce, opts.nonce))
    throw new SignInError('nonce_mismatch', 'ID token nonce does not match this sign-in', 400);
  const named = payload[c.principalClaim];
  const id = typeof named === 'string' && named.length > 0 ? named : (payload.sub as string);
  const roles = mapRoles(payload, c);
  if (roles.length === 0)
    throw new SignInError(
      'no_role',
      `${id} signed in, but claim ${c.roleClaim} maps to no Tourniquet role (auth.json: oidc.roleMap)`,
      403,
    );
  return { id, roles, via: 'oidc' };
}
