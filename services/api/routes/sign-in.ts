import { registerLoginOnce } from '../console/login-once.ts';
import { registerOidcRoutes } from '../console/oidc.ts';
import { startConsoleSession } from '../console/session.ts';
import type { ApiRoutes } from '../context.ts';

/**
 * Console sign-in beyond the API-key form: single sign-on (OpenID Connect, auth.json `oidc`) and
 * the one-time links `tourniquet start` prints. Both end in a console session.
 */
export const signInRoutes: ApiRoutes = async (app, { ctx }) => {
  const startSession = ctx.signIn?.startSession ?? startConsoleSession;
  registerOidcRoutes(app, { config: () => ctx.auth.config(), startSession });
  if (ctx.signIn?.oneTimeLogins) registerLoginOnce(app, { logins: ctx.signIn.oneTimeLogins, startSession });
};
