/** Test environment for the API tests: a real store with the scripted history, a live projector, fake gateways. */
import type { FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair } from 'jose';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import {
  type AuthConfig,
  generateAuthConfig,
  hashApiKey,
  issueLocalAdminToken,
  issueToken,
} from '../../services/api/auth.ts';
import { type ApiDeps, buildApi } from '../../services/api/server.ts';
import { Projector } from '../../services/projector/projector.ts';
import { signingKeyFromJwk } from '../../services/signals/keys.ts';
import { SignalTransmitter } from '../../services/signals/transmitter.ts';
import { appendScriptedHistory, FakeAutomation, FakeDecider, FakeIngest } from './projector-kit.ts';

export const SERVICE_KEY = 'tq_service_key_for_tests_0123456789';
export const AUDITOR_KEY = 'tq_auditor_key_for_tests_0123456789';

export const PRINCIPALS = ['none', 'service', 'auditor', 'analyst', 'admin', 'bad', 'expired'] as const;
export type PrincipalName = (typeof PRINCIPALS)[number] | 'analyst2';

export interface TestEnv {
  store: SqliteEventStore;
  projector: Projector;
  decider: FakeDecider;
  app: FastifyInstance;
  auth: AuthConfig;
  headers: Record<PrincipalName, Record<string, string>>;
  close(): Promise<void>;
}

export async function testEnv(
  overrides: Partial<ApiDeps> = {},
  opts: { history?: boolean } = {},
): Promise<TestEnv> {
  const store = new SqliteEventStore({ path: ':memory:' });
  if (opts.history !== false) await appendScriptedHistory(store);
  const projector = new Projector({ store, path: ':memory:' });
  await projector.start();
  const base = generateAuthConfig();
  const auth: AuthConfig = {
    ...base,
    apiKeys: [
      { id: 'siem-forwarder', sha256: hashApiKey(SERVICE_KEY), roles: ['service'] },
      { id: 'auditor-1', sha256: hashApiKey(AUDITOR_KEY), roles: ['auditor'] },
    ],
    // the matrix sends many bad credentials from one address on purpose; throttling is tested apart
    throttle: { maxFailures: 1_000_000, windowSeconds: 60 },
  };
  const decider = new FakeDecider(store);
  // a transmitter that is never started: the API shows its keys and its receiver's (unmoved) checkpoint
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const signals = new SignalTransmitter({
    store,
    issuer: 'https://tourniquet.test',
    key: await signingKeyFromJwk(await exportJWK(privateKey), 'test'),
    receivers: [{ name: 'siem', url: 'http://127.0.0.1:9/push', audience: 'https://siem.test' }],
    deadLetterPath: '/dev/null',
  });
  const app = await buildApi({
    store,
    projector,
    ingest: new FakeIngest(store),
    decider,
    automation: new FakeAutomation(store),
    auth,
    signals,
    ...overrides,
  });
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const headers: TestEnv['headers'] = {
    none: {},
    service: { 'x-api-key': SERVICE_KEY },
    auditor: { authorization: `ApiKey ${AUDITOR_KEY}` },
    analyst: bearer(await issueToken(auth, { sub: 'ann', roles: ['analyst'] })),
    analyst2: bearer(await issueToken(auth, { sub: 'ben', roles: ['analyst'] })),
    admin: bearer(await issueLocalAdminToken(auth)),
    // signed with another installation's secret
    bad: bearer(await issueToken(generateAuthConfig(), { sub: 'eve', roles: ['admin'] })),
    expired: bearer(
      await issueToken(auth, {
        sub: 'ann',
        roles: ['analyst', 'admin'],
        expiresAt: new Date(Date.now() - 3600_000),
      }),
    ),
  };
  return {
    store,
    projector,
    decider,
    app,
    auth,
    headers,
    async close() {
      await app.close();
      await projector.close();
      await store.close();
    },
  };
}
