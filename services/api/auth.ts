import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JWK,
  type JWTPayload,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from 'jose';
import { z } from 'zod';
import { issuesFromZod, TourniquetError } from '../../platform/errors.ts';
import { recordAuthFailure, recordAuthThrottled } from '../../platform/metrics.ts';
import { AuthThrottle, DEFAULT_AUTH_THROTTLE } from './auth-throttle.ts';

/**
 * Authentication and roles for the HTTP API.
 * - Bearer JWTs (jose): HS256 with shared secrets, and/or asymmetric keys from public JWKs (inline
 *   or a JWKS URL). Claims: `sub` (the principal) and `roles` (array, or a space-separated string).
 * - API keys: `Authorization: ApiKey <key>` or `X-API-Key: <key>`; the configuration holds only the
 *   sha256 of each key (hex), never the key.
 * Roles: analyst, auditor, admin, service (see ROUTE_ROLES in roles.ts for the full matrix).
 */

/** @public the role names, for configuration tools and sign-in mapping. */
export const ROLES = ['analyst', 'auditor', 'admin', 'service'] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;

/**
 * OpenID Connect sign-in (authorization code + PKCE). Roles come from one claim of the ID token
 * (`roleClaim`, a dotted path such as `groups` or `realm_access.roles`) through `roleMap`
 * (claim value -> Tourniquet roles); a user whose claim maps to no role is refused.
 */
export const OidcConfigSchema = z
  .object({
    issuer: z.url(),
    clientId: z.string().min(1),
    /** Confidential clients: the secret, inline or in a file; a public client sends none (PKCE only). */
    clientSecret: z.string().min(1).optional(),
    clientSecretFile: z.string().min(1).optional(),
    /** Default: `<the request's origin>/auth/oidc/callback`. */
    redirectUri: z.url().optional(),
    scopes: z.array(z.string().min(1)).default(['openid', 'profile', 'email']),
    roleClaim: z.string().min(1).default('groups'),
    roleMap: z.record(z.string(), z.array(Role)),
    /** The claim naming the principal (recorded as the actor); falls back to `sub`. */
    principalClaim: z.string().min(1).default('preferred_username'),
    clockToleranceSeconds: z.number().int().min(0).max(300).default(5),
  })
  .refine((v) => !(v.clientSecret && v.clientSecretFile), {
    message: 'clientSecret and clientSecretFile are exclusive',
  });
export type OidcConfig = z.output<typeof OidcConfigSchema>;

const AuthConfigSchema = z.object({
  jwt: z
    .object({
      /** HS256 shared secrets (UTF-8, at least 32 characters); the first one signs local tokens. */
      hs256Secrets: z.array(z.string().min(32)).default([]),
      /** Public JWKs (RS256, ES256, EdDSA, …) of trusted issuers. */
      jwks: z.array(z.record(z.string(), z.unknown())).default([]),
      /** A remote JWKS document (an IdP's jwks_uri). */
      jwksUrl: z.url().optional(),
      issuer: z.string().optional(),
      audience: z.string().optional(),
      clockToleranceSeconds: z.number().int().min(0).max(300).default(5),
      /**
       * Longest lifetime accepted, seconds. A token without `exp` is refused unless this is set and
       * the token has `iat` (it then expires at iat + this); a token living longer is cut to it.
       */
      maxLifetimeSeconds: z.number().int().positive().optional(),
    })
    .optional(),
  /** Throttling of failed authentication (429 with Retry-After); see AuthThrottle. */
  throttle: z
    .object({
      maxFailures: z.number().int().positive().default(DEFAULT_AUTH_THROTTLE.maxFailures),
      windowSeconds: z.number().int().positive().default(DEFAULT_AUTH_THROTTLE.windowSeconds),
    })
    .optional(),
  apiKeys: z
    .array(
      z.object({
        /** The principal name recorded as the actor (e.g. "siem-forwarder"). */
        id: z.string().min(1),
        /** sha256 of the key, hex (see hashApiKey). */
        sha256: z.string().regex(/^[0-9a-f]{64}$/),
        roles: z.array(Role).min(1),
      }),
    )
    .default([]),
  /** Single sign-on for the console (services/api/console/oidc.ts; docs/console.md). */
  oidc: OidcConfigSchema.optional(),
});
export type AuthConfig = z.input<typeof AuthConfigSchema>;

/** Validates an auth configuration (from a file or the environment); throws CONFIG_INVALID. */
export function parseAuthConfig(value: unknown): AuthConfig {
  const r = AuthConfigSchema.safeParse(value);
  if (!r.success) {
    throw new TourniquetError('CONFIG_INVALID', 'auth configuration is invalid', {
      status: 500,
      details: { issues: issuesFromZod(r.error.issues) },
    });
  }
  return r.data;
}

export interface Principal {
  id: string;
  roles: Role[];
  via: 'jwt' | 'api-key' | 'oidc' | 'session' | 'chat';
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A fresh API key (to hand out once) and its config entry (to store). */
export function generateApiKey(
  id: string,
  roles: Role[],
): { key: string; entry: { id: string; sha256: string; roles: Role[] } } {
  const key = `tq_${randomBytes(24).toString('base64url')}`;
  return { key, entry: { id, sha256: hashApiKey(key), roles } };
}

const LOCAL_ISSUER = 'tourniquet-local';
const LOCAL_AUDIENCE = 'tourniquet';

/** A configuration with one random HS256 secret, for the embedded default (`tourniquet start`). */
export function generateAuthConfig(): AuthConfig {
  return {
    jwt: {
      hs256Secrets: [randomBytes(32).toString('base64url')],
      jwks: [],
      issuer: LOCAL_ISSUER,
      audience: LOCAL_AUDIENCE,
      clockToleranceSeconds: 5,
    },
    apiKeys: [],
  };
}

/**
 * The auth settings of a data directory (`auth.json`, mode 0600), created with a fresh secret on
 * first use, so tokens survive restarts of the same stack (`tourniquet start`, `serve projector`).
 */
export function loadOrCreateAuthConfig(dataDir: string): AuthConfig {
  const path = join(dataDir, 'auth.json');
  if (existsSync(path)) return parseAuthConfig(JSON.parse(readFileSync(path, 'utf8')));
  const config = generateAuthConfig();
  writeFileSync(path, JSON.stringify(config, null, 2), { mode: 0o600 });
  return config;
}

/** Signs an HS256 token with the configuration's first secret. */
export async function issueToken(
  config: AuthConfig,
  claims: { sub: string; roles: Role[]; ttlSeconds?: number; expiresAt?: Date },
): Promise<string> {
  const secret = config.jwt?.hs256Secrets?.[0];
  if (!secret)
    throw new TourniquetError('CONFIG_INVALID', 'no HS256 secret configured to sign a token', {
      status: 500,
    });
  let jwt = new SignJWT({ roles: claims.roles })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(claims.expiresAt ?? `${claims.ttlSeconds ?? 3600}s`);
  if (config.jwt?.issuer) jwt = jwt.setIssuer(config.jwt.issuer);
  if (config.jwt?.audience) jwt = jwt.setAudience(config.jwt.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** A local admin token (valid 7 days unless told otherwise); `tourniquet start` keeps a 24-hour one in admin.token. */
export function issueLocalAdminToken(
  config: AuthConfig,
  opts: { sub?: string; ttlSeconds?: number } = {},
): Promise<string> {
  return issueToken(config, {
    sub: opts.sub ?? 'local-admin',
    roles: ['admin'],
    ttlSeconds: opts.ttlSeconds ?? 7 * 24 * 3600,
  });
}

export class UnauthorizedError extends TourniquetError {
  constructor(message: string) {
    super('UNAUTHORIZED', message, { status: 401 });
    this.name = 'UnauthorizedError';
  }
}

class TooManyAttemptsError extends TourniquetError {
  constructor(message: string, retryAfterSeconds: number, scope: string) {
    super('RATE_LIMITED', message, { status: 429, retriable: true, details: { retryAfterSeconds, scope } });
    this.name = 'TooManyAttemptsError';
  }
}

export class ForbiddenError extends TourniquetError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('FORBIDDEN', message, { status: 403, ...(details ? { details } : {}) });
    this.name = 'ForbiddenError';
  }
}

function rolesOf(payload: JWTPayload): Role[] {
  const raw = payload.roles;
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/\s+/) : [];
  return [
    ...new Set(
      list.filter((r): r is Role => typeof r === 'string' && (ROLES as readonly string[]).includes(r)),
    ),
  ];
}

type HeaderBag = Record<string, string | string[] | undefined>;

function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Verifies the credentials of a request. Resolves to the principal, undefined when none were sent. */
export class Authenticator {
  private readonly secrets: Uint8Array[];
  private readonly jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  private readonly remote: ReturnType<typeof createRemoteJWKSet> | undefined;
  private readonly keys: Array<{ id: string; hash: Buffer; roles: Role[] }>;
  private readonly verifyOpts: { issuer?: string; audience?: string; clockTolerance: number };
  private readonly maxLifetimeSeconds: number | undefined;
  private readonly throttle: AuthThrottle;

  constructor(config: AuthConfig, opts: { now?: () => number } = {}) {
    const c = parseAuthConfig(config) as z.output<typeof AuthConfigSchema>;
    this.secrets = (c.jwt?.hs256Secrets ?? []).map((s) => new TextEncoder().encode(s));
    this.jwks = c.jwt && c.jwt.jwks.length > 0 ? createLocalJWKSet({ keys: c.jwt.jwks as JWK[] }) : undefined;
    this.remote = c.jwt?.jwksUrl ? createRemoteJWKSet(new URL(c.jwt.jwksUrl)) : undefined;
    this.keys = c.apiKeys.map((k) => ({ id: k.id, hash: Buffer.from(k.sha256, 'hex'), roles: k.roles }));
    this.verifyOpts = {
      ...(c.jwt?.issuer ? { issuer: c.jwt.issuer } : {}),
      ...(c.jwt?.audience ? { audience: c.jwt.audience } : {}),
      clockTolerance: c.jwt?.clockToleranceSeconds ?? 5,
    };
    this.maxLifetimeSeconds = c.jwt?.maxLifetimeSeconds;
    this.throttle = new AuthThrottle(c.throttle ?? {}, opts.now);
  }

  /**
   * `authenticate`, throttled: a source address or key id with too many recent failures is refused
   * (429) before its credentials are looked at; every failure is counted (metric and throttle).
   */
  async authenticateFrom(headers: HeaderBag, address: string): Promise<Principal | undefined> {
    const keyId = credentialKeyId(headers);
    const blocked = this.throttle.blocked(address, keyId);
    if (blocked) {
      recordAuthThrottled(blocked.scope);
      throw new TooManyAttemptsError(
        `too many failed authentication attempts from this ${blocked.scope === 'address' ? 'address' : 'key id'}; retry in ${blocked.retryAfterSeconds} s`,
        blocked.retryAfterSeconds,
        blocked.scope,
      );
    }
    try {
      return await this.authenticate(headers);
    } catch (err) {
      if (err instanceof UnauthorizedError) {
        this.throttle.failed(address, keyId);
        recordAuthFailure(err.message.startsWith('token expired') ? 'expired' : 'invalid');
      }
      throw err;
    }
  }

  /**
   * Fails closed: a credential header that is present must verify, even empty, and a request carries
   * one credential only (with two, which one acts would be a guess, and a bad one must not pass
   * because a good one came along).
   */
  async authenticate(headers: HeaderBag): Promise<Principal | undefined> {
    const authz = header(headers, 'authorization')?.trim();
    const apiKeyHeader = header(headers, 'x-api-key')?.trim();
    if (authz !== undefined && apiKeyHeader !== undefined) {
      throw new UnauthorizedError(
        'send one credential: an Authorization header or an X-API-Key header, not both',
      );
    }
    if (authz !== undefined) {
      const [scheme, ...rest] = authz.split(/\s+/);
      const credential = rest.join(' ');
      if (!credential) throw new UnauthorizedError('malformed Authorization header');
      if (scheme?.toLowerCase() === 'bearer') return this.verifyJwt(credential);
      if (scheme?.toLowerCase() === 'apikey') return this.verifyApiKey(credential);
      throw new UnauthorizedError(`unsupported authorization scheme ${scheme}; use Bearer or ApiKey`);
    }
    if (apiKeyHeader !== undefined) {
      if (!apiKeyHeader) throw new UnauthorizedError('empty X-API-Key header');
      return this.verifyApiKey(apiKeyHeader);
    }
    return undefined;
  }

  private verifyApiKey(key: string): Principal {
    const h = createHash('sha256').update(key, 'utf8').digest();
    for (const k of this.keys) {
      if (timingSafeEqual(h, k.hash)) return { id: k.id, roles: k.roles, via: 'api-key' };
    }
    throw new UnauthorizedError('unknown API key');
  }

  private async verifyJwt(token: string): Promise<Principal> {
    let alg: unknown;
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as {
        alg?: unknown;
      };
      alg = header.alg;
    } catch {
      throw new UnauthorizedError('malformed bearer token');
    }
    let lastErr: unknown;
    try {
      if (alg === 'HS256') {
        for (const secret of this.secrets) {
          try {
            const { payload } = await jwtVerify(token, secret, { ...this.verifyOpts, algorithms: ['HS256'] });
            return this.principal(payload);
          } catch (err) {
            lastErr = err;
            if (!(err instanceof joseErrors.JWSSignatureVerificationFailed)) break;
          }
        }
      } else if (typeof alg === 'string' && alg !== 'none' && !alg.startsWith('HS')) {
        for (const set of [this.jwks, this.remote]) {
          if (!set) continue;
          try {
            const { payload } = await jwtVerify(token, set, this.verifyOpts);
            return this.principal(payload);
          } catch (err) {
            lastErr = err;
            if (err instanceof joseErrors.JWTExpired || err instanceof joseErrors.JWTClaimValidationFailed)
              break;
          }
        }
      }
    } catch (err) {
      if (err instanceof TourniquetError) throw err;
      lastErr = err;
    }
    if (lastErr instanceof TourniquetError) throw lastErr;
    if (lastErr instanceof joseErrors.JWTExpired) throw new UnauthorizedError('token expired');
    if (lastErr instanceof joseErrors.JWTClaimValidationFailed)
      throw new UnauthorizedError(`token rejected: ${lastErr.message}`);
    throw new UnauthorizedError('invalid bearer token');
  }

  private principal(payload: JWTPayload): Principal {
    if (typeof payload.sub !== 'string' || payload.sub.length === 0)
      throw new UnauthorizedError('token has no subject (sub)');
    this.checkLifetime(payload);
    return { id: payload.sub, roles: rolesOf(payload), via: 'jwt' };
  }

  /** A token must expire: `exp` is required, and with a maximum lifetime, `iat` + max bounds it too. */
  private checkLifetime(payload: JWTPayload): void {
    const max = this.maxLifetimeSeconds;
    if (max === undefined) {
      if (typeof payload.exp !== 'number') throw new UnauthorizedError('token has no expiry (exp)');
      return;
    }
    if (typeof payload.iat !== 'number') {
      if (typeof payload.exp !== 'number')
        throw new UnauthorizedError('token has no expiry (exp) and no issue time (iat)');
      return;
    }
    const nowSeconds = Date.now() / 1000;
    if (nowSeconds > payload.iat + max + this.verifyOpts.clockTolerance)
      throw new UnauthorizedError(`token expired: older than the maximum lifetime of ${max} s`);
  }
}

/** The key id a credential names, for throttling: a JWT's `kid`, else its (unverified) `sub`. */
function credentialKeyId(headers: HeaderBag): string | undefined {
  const authz = header(headers, 'authorization')?.trim();
  const [scheme, token] = authz?.split(/\s+/) ?? [];
  if (scheme?.toLowerCase() !== 'bearer' || !token) return undefined;
  try {
    const [h, p] = token.split('.');
    const head = JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as { kid?: unknown };
    if (typeof head.kid === 'string' && head.kid) return `kid:${head.kid.slice(0, 200)}`;
    const body = JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof body.sub === 'string' && body.sub ? `sub:${body.sub.slice(0, 200)}` : undefined;
  } catch {
    return undefined;
  }
}
