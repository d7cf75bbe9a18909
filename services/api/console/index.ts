import type { FastifyInstance } from 'fastify';
import type { Authenticator } from '../auth.ts';
import { registerLogin } from './login.ts';
import { type ConsoleSessionOptions, registerConsoleSessions } from './session.ts';

export interface ConsoleDeps {
  /** The API's authenticator (a function: the configuration may be reloaded while running). */
  auth: () => Pick<Authenticator, 'authenticate' | 'authenticateFrom'>;
  sessions?: ConsoleSessionOptions | undefined;
}

/**
 * The analyst console, served by the API itself: sessions (cookie + CSRF) for the pages and for
 * the JSON API they call, and sign-in. Registered before the API routes so the session hook runs
 * ahead of every route's own authentication.
 */
export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  await registerConsoleSessions(app, deps.sessions);
  await registerLogin(app, deps.auth);
}
