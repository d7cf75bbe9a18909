/** The provider contract (test/contract/provider.contract.ts) over KeycloakProvider and a real Keycloak. */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { ActionType } from '../../../schemas/events.ts';
import { describeProviderContract } from '../../../test/contract/provider.contract.ts';
import {
  createTestRealm,
  type KeycloakHandle,
  keycloakUnavailableReason,
  startKeycloak,
  stopKeycloak,
  type TestRealm,
} from '../../../test/support/keycloak.ts';
import { KeycloakProvider, keycloakProvider } from './keycloak.ts';
import type { ProviderAction, ProviderDefinition } from './port.ts';

interface UserRep {
  enabled: boolean;
  notBefore?: number;
  requiredActions?: string[];
}

describeProviderContract(
  'keycloak (real)',
  async () => {
    const kc: KeycloakHandle = await startKeycloak();
    const fx: TestRealm = await createTestRealm(kc, 'tq-contract');
    const r = `/realms/${fx.realm}`;
    const make = (baseUrl = kc.baseUrl) =>
      new KeycloakProvider({
        baseUrl,
        adminRealm: kc.admin.realm,
        clientId: kc.admin.clientId,
        username: kc.admin.username,
        password: kc.admin.password,
        timeoutMs: 5000,
      });
    let seq = 0;
    const tag = () => `${++seq}-${randomBytes(3).toString('hex')}`;
    const userIds = new Map<string, string>();
    const clientIds = new Map<string, { uuid: string; secret: string }>();

    const newUser = async (action: ActionType): Promise<ProviderAction> => {
      const username = `u-${tag()}`;
      userIds.set(username, await fx.admin<string>('POST', `${r}/users`, { username, enabled: true }));
      return {
        actionId: `kc-${action}-${tag()}`,
        action,
        identity: { provider: 'keycloak', id: username, type: 'human', tenant: fx.realm },
        args: {},
      };
    };
    const newServiceClient = async (action: ActionType): Promise<ProviderAction> => {
      const clientId = `svc-${tag()}`;
      const secret = randomBytes(16).toString('hex');
      const uuid = await fx.admin<string>('POST', `${r}/clients`, {
        clientId,
        publicClient: false,
        secret,
        serviceAccountsEnabled: true,
        standardFlowEnabled: false,
      });
      clientIds.set(clientId, { uuid, secret });
      return {
        actionId: `kc-${action}-${tag()}`,
        action,
        identity: { provider: 'keycloak', id: clientId, type: 'service_account', tenant: fx.realm },
        args: {},
      };
    };
    const user = (a: ProviderAction) => fx.admin<UserRep>('GET', `${r}/users/${userIds.get(a.identity.id)}`);
    const putUser = (a: ProviderAction, body: Partial<UserRep>) =>
      fx.admin('PUT', `${r}/users/${userIds.get(a.identity.id)}`, body);
    const secretOf = async (a: ProviderAction) =>
      (
        await fx.admin<{ value: string }>(
          'GET',
          `${r}/clients/${clientIds.get(a.identity.id)!.uuid}/client-secret`,
        )
      ).value;

    let limiter: Server | undefined;
    return {
      definition: keycloakProvider as ProviderDefinition,
      provider: make(),
      reopen: () => make(),
      cases: [
        {
          action: 'disable_account',
          prepare: () => newUser('disable_account'),
          observe: async (a) => {
            const u = await user(a);
            return { enabled: u.enabled, notBefore: u.notBefore ?? 0 };
          },
          undo: (a) => putUser(a, { enabled: true }),
          restored: async (a) => expect((await user(a)).enabled).toBe(true),
        },
        {
          action: 'force_step_up',
          prepare: () => newUser('force_step_up'),
          observe: async (a) => {
            const u = await user(a);
            return { requiredActions: u.requiredActions ?? [], notBefore: u.notBefore ?? 0 };
          },
          undo: (a) => putUser(a, { requiredActions: [] }),
          restored: async (a) => expect((await user(a)).requiredActions ?? []).toEqual([]),
        },
        {
          action: 'rotate_credential',
          prepare: () => newServiceClient('rotate_credential'),
          observe: async (a) => ({ secret: await secretOf(a) }),
          // Another admin puts the old secret back: the rotation no longer holds.
          undo: async (a) => {
            const c = clientIds.get(a.identity.id)!;
            await fx.admin('PUT', `${r}/clients/${c.uuid}`, { secret: c.secret });
          },
        },
      ],
      unknownIdentity: () => ({
        actionId: `kc-missing-${tag()}`,
        action: 'disable_account',
        identity: { provider: 'keycloak', id: 'no-such-user', type: 'human', tenant: fx.realm },
        args: {},
      }),
      unreachable: () => make('http://127.0.0.1:1'),
      rateLimited: async () => {
        limiter = createServer((_req, res) => {
          res.writeHead(429, { 'retry-after': '7', 'content-type': 'application/json' });
          res.end('{"error":"too many requests"}');
        });
        await new Promise<void>((ok) => limiter!.listen(0, '127.0.0.1', ok));
        const port = (limiter.address() as AddressInfo).port;
        return {
          provider: make(`http://127.0.0.1:${port}`),
          action: await newUser('disable_account'),
          retryAfterSeconds: 7,
        };
      },
      teardown: async () => {
        limiter?.close();
        await fx.cleanup();
        await stopKeycloak(kc);
      },
    };
  },
  { skip: keycloakUnavailableReason() },
);
