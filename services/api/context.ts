import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from 'pino';
import { ConflictError, NotFoundError } from '../../platform/errors.ts';
import type { ChainStatus } from '../../platform/eventstore/chain-guard.ts';
import type { EventStore } from '../../platform/eventstore/port.ts';
import type { DeciderInput } from '../../schemas/decider-input.ts';
import type { NewEvent } from '../../schemas/events.ts';
import type { AutomationGateway, DeciderGateway, IngestGateway } from '../../schemas/gateways.ts';
import type { Projector } from '../projector/projector.ts';
import type { SignalsView } from '../signals/transmitter.ts';
import type { ApprovalCommands } from './approvals.ts';
import type { AuthSource } from './auth-file.ts';
import type { SlackInteractions } from './chat/interactions.ts';
import type { RefusalLog } from './chat/refusals.ts';
import type { OneTimeLogins } from './console/login-once.ts';
import type { StartSession } from './console/oidc.ts';
import { ErrorBody } from './http.ts';

/** What every route plugin works with: the ports behind the API and the request-independent helpers. */
export interface ApiContext {
  store: EventStore;
  projector: Projector;
  ingest: IngestGateway;
  decider: DeciderGateway;
  automation: AutomationGateway;
  /** Credentials checked against the auth configuration in force (auth.json reloads apply). */
  auth: AuthSource;
  log: Logger | undefined;
  signals: SignalsView | undefined;
  /** The store's running chain check, when it has one. */
  integrity: (() => ChainStatus) | undefined;
  /** Decision time of human commands. */
  now: () => Date;
  /** /readyz is 200 while the projector is live and at most this many events behind. */
  readyLag: number;
  heartbeatMs: number;
  /** Open live feeds, ended when the server closes. */
  streams: Set<ServerResponse>;
  /** Read-your-writes: waits until the views include everything appended so far. */
  settle(): Promise<void>;
  /** Submits a human command; a decider "not found" for something the views know is a conflict. */
  submit(input: DeciderInput): Promise<NewEvent[]>;
  /** Approve and reject, the one command path for the API, the console and chat. */
  approvals: ApprovalCommands;
  signIn: { startSession?: StartSession; oneTimeLogins?: OneTimeLogins } | undefined;
  chat: { slack: SlackInteractions | undefined; refusals: RefusalLog | undefined };
}

/** A route plugin: registers the routes of one concern (services/api/routes/*.ts). */
export type ApiRoutes = FastifyPluginAsync<{ ctx: ApiContext }>;

/** The error answers every authenticated route can give. */
/** Every authenticated route may answer these (429: failed authentication throttled; 503: storage fault). */
export const COMMON_ERRORS = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
};

export function settleFn(
  store: EventStore,
  projector: Projector,
  timeoutMs: number,
  log: Logger | undefined,
): () => Promise<void> {
  return async () => {
    const head = await store.headPosition();
    try {
      await projector.waitFor(head, timeoutMs);
    } catch (err) {
      log?.warn({ err, head }, 'projector did not catch up before answering; the write itself succeeded');
    }
  };
}

export function submitFn(decider: DeciderGateway): (input: DeciderInput) => Promise<NewEvent[]> {
  return async (input) => {
    try {
      return (await decider.submit(input)).events;
    } catch (err) {
      if (err instanceof NotFoundError)
        throw new ConflictError(`${err.message}: it is no longer open`, { reason: 'not_open' });
      throw err;
    }
  };
}
