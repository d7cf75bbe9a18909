import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Principal } from '../auth.ts';
import type { StartSession } from './oidc.ts';
import { SignInError } from './oidc.ts';

/**
 * One-time sign-in links, printed by `tourniquet start` instead of a long-lived admin token:
 * `/login/once?token=…` opens a console session once, within a few minutes, and is then spent.
 * Only the sha256 of each token is held, in this process's memory (a restart voids every link).
 */
export class OneTimeLogins {
  private readonly pending = new Map<string, { principal: Principal; expiresAt: number }>();
  private readonly now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  /** A fresh single-use token for this principal, valid for ttlMs (default 10 minutes). */
  issue(principal: Principal, ttlMs = 10 * 60_000): string {
    const token = randomBytes(32).toString('base64url');
    this.pending.set(hash(token), { principal, expiresAt: this.now() + ttlMs });
    return token;
  }

  /** The principal, once: a second use, an unknown or an expired token gives undefined. */
  consume(token: string): Principal | undefined {
    const key = hash(token);
    const entry = this.pending.get(key);
    this.pending.delete(key);
    this.sweep();
    if (!entry || entry.expiresAt <= this.now()) return undefined;
    return entry.principal;
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, v] of this.pending) if (v.expiresAt <= t) this.pending.delete(k);
  }
}

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

export function registerLoginOnce(
  app: FastifyInstance,
  opts: { logins: OneTimeLogins; startSession: StartSession },
): void {
  app.get('/login/once', { schema: { hide: true } }, async (request, reply) => {
    const token = (request.query as Record<string, unknown> | undefined)?.token;
    if (typeof token !== 'string' || token.length === 0)
      throw new SignInError('invalid', 'token is required', 400);
    const principal = opts.logins.consume(token);
    if (!principal)
      throw new SignInError(
        'link_spent',
        'this sign-in link is unknown, expired or already used: run `tourniquet auth token` or restart for a new one',
      );
    // No referrer: the spent token must not travel to whatever the next page links to.
    reply.header('referrer-policy', 'no-referrer');
    await opts.startSession(request, reply, principal);
    request.log.info({ principal: principal.id }, 'signed in with a one-time link');
    if (!reply.sent) return reply.redirect('/', 303);
    return reply;
  });
}
