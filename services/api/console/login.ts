import formbody from '@fastify/formbody';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Principal, UnauthorizedError } from '../auth.ts';
import type { AuthSource } from '../auth-file.ts';
import { html } from './html.ts';
import { barePage } from './layout.ts';
import {
  assertSameOrigin,
  CONSOLE_ROLES,
  CsrfError,
  consoleSession,
  endConsoleSession,
  sessionExpired,
  startConsoleSession,
} from './session.ts';

/** Where single sign-on starts, when a module registers it (OpenID Connect). */
const SSO_LOGIN_PATH = '/auth/oidc/login';

/** Only a path on this server: `next` must never send a signed-in user to another site. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[^\s]*$/.test(next) ? next : '/';
}

function loginPage(opts: { next: string; error?: string; notice?: string; sso: boolean }) {
  return barePage(
    'Sign in',
    html`${opts.notice ? html`<p class="notice" role="status">${opts.notice}</p>` : ''}
${opts.error ? html`<p class="error" role="alert" id="login-error">${opts.error}</p>` : ''}
${
  opts.sso
    ? html`<p><a class="button primary" href="${SSO_LOGIN_PATH}?next=${encodeURIComponent(opts.next)}">Sign in with single sign-on</a></p><p class="muted">or</p>`
    : ''
}
<form method="post" action="/login" class="stack" autocomplete="off">
  <input type="hidden" name="next" value="${opts.next}">
  <label for="key">API key</label>
  <input id="key" name="key" type="password" required autofocus ${opts.error ? html`aria-describedby="login-error"` : ''}>
  <button type="submit" class="primary">Sign in with API key</button>
</form>
<p class="muted">An administrator creates keys with <code>tourniquet auth add-key</code>. The key is checked once; the browser then holds only a session cookie.</p>`,
  );
}

/** Verifies a pasted API key (or a signed token) exactly as the JSON API would. */
async function principalOfCredential(
  auth: Pick<AuthSource, 'authenticateFrom'>,
  credential: string,
  address: string,
): Promise<Principal> {
  const value = credential.trim();
  if (!value) throw new UnauthorizedError('enter an API key');
  const looksLikeJwt = /^[\w-]+\.[\w-]+\.[\w-]+$/.test(value);
  // throttled like the JSON API: a sign-in form is a credential-guessing surface too
  const principal = await auth.authenticateFrom(
    looksLikeJwt ? { authorization: `Bearer ${value}` } : { 'x-api-key': value },
    address,
  );
  if (!principal) throw new UnauthorizedError('enter an API key');
  return principal;
}

const sendHtml = (reply: FastifyReply, status: number, body: { toString(): string }) =>
  reply.status(status).header('content-type', 'text/html; charset=utf-8').send(body.toString());

/**
 * GET /login, POST /login (API key → session), POST /logout. Forms are URL-encoded; the body parser
 * for them is registered in this plugin only, so the JSON API keeps accepting JSON alone.
 */
export async function registerLogin(
  app: FastifyInstance,
  auth: () => Pick<AuthSource, 'authenticate' | 'authenticateFrom' | 'config'>,
): Promise<void> {
  await app.register(async (scope) => {
    await scope.register(formbody);
    // the single sign-on button only when auth.json configures it (a reload may add or remove it)
    const sso = () => auth().config().oidc !== undefined;

    scope.get('/login', async (request: FastifyRequest<{ Querystring: { next?: string } }>, reply) => {
      if (consoleSession(request)) return reply.redirect(safeNext(request.query.next), 303);
      const notice = sessionExpired(request) ? 'Your session ended. Sign in again.' : undefined;
      return sendHtml(
        reply,
        200,
        loginPage({ next: safeNext(request.query.next), sso: sso(), ...(notice ? { notice } : {}) }),
      );
    });

    scope.post(
      '/login',
      { config: { signIn: true } },
      async (request: FastifyRequest<{ Body: { key?: string; next?: string } | undefined }>, reply) => {
        const next = safeNext(request.body?.next);
        try {
          assertSameOrigin(request); // login CSRF: nobody signs a browser in from another site
          const principal = await principalOfCredential(auth(), request.body?.key ?? '', request.ip);
          if (!principal.roles.some((r) => CONSOLE_ROLES.includes(r))) {
            request.log.info({ principal: principal.id }, 'console sign-in refused: no console role');
            return sendHtml(
              reply,
              403,
              loginPage({
                next,
                sso: sso(),
                error: `${principal.id} (roles: ${principal.roles.join(', ')}) may not use the console; it needs analyst, auditor or admin.`,
              }),
            );
          }
          startConsoleSession(request, reply, principal);
          request.log.info({ principal: principal.id, via: principal.via }, 'console sign-in');
          return reply.redirect(next, 303);
        } catch (err) {
          if (err instanceof CsrfError) throw err;
          if (!(err instanceof UnauthorizedError)) throw err;
          request.log.info({ reason: err.message }, 'console sign-in refused');
          return sendHtml(
            reply,
            401,
            loginPage({ next, sso: sso(), error: `Sign-in failed: ${err.message}.` }),
          );
        }
      },
    );

    scope.post('/logout', { config: { csrfForm: true } }, async (request, reply) => {
      endConsoleSession(request, reply);
      return reply.redirect('/login', 303);
    });
  });
}
