import type { FastifyInstance } from 'fastify';
import type { EventStore } from '../../../platform/eventstore/port.ts';
import type { Projector } from '../../projector/projector.ts';
import type { AuthSource } from '../auth-file.ts';
import { registerAssets } from './assets.ts';
import { registerLogin } from './login.ts';
import { registerPages } from './pages.ts';
import { type ConsoleSessionOptions, registerConsoleSessions } from './session.ts';

export interface ConsoleDeps {
  store: EventStore;
  projector: Projector;
  /** The API's authenticator (a function: the configuration may be reloaded while running). */
  auth: () => Pick<AuthSource, 'authenticate' | 'authenticateFrom' | 'config'>;
  sessions?: ConsoleSessionOptions | undefined;
  /** The wall clock the pages show times against (default: Date). */
  now?: (() => Date) | undefined;
}

/**
 * The analyst console, served by the API itself: sessions (cookie + CSRF) for the pages and for
 * the JSON API they call, sign-in, the pages and their static files. Registered before the API
 * routes so the session hook runs ahead of every route's own authentication.
 */
export async function registerConsole(app: FastifyInstance, deps: ConsoleDeps): Promise<void> {
  await registerConsoleSessions(app, deps.sessions);
  await registerLogin(app, deps.auth);
  registerAssets(app);
  registerPages(app, { store: deps.store, projector: deps.projector, now: deps.now ?? (() => new Date()) });
}
