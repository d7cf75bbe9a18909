/** The provider contract (test/contract/provider.contract.ts) over AwsProvider and moto (scripts/moto.sh). */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DeleteRolePolicyCommand,
  DetachRolePolicyCommand,
  DetachUserPolicyCommand,
  GetLoginProfileCommand,
  ListAccessKeysCommand,
  ListAttachedRolePoliciesCommand,
  ListAttachedUserPoliciesCommand,
  ListRolePoliciesCommand,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { expect } from 'vitest';
import type { ActionType } from '../../../schemas/events.ts';
import { describeProviderContract } from '../../../test/contract/provider.contract.ts';
import {
  createAwsFixture,
  type MotoHandle,
  motoIam,
  motoUnavailableReason,
  startMoto,
  stopMoto,
} from '../../../test/support/moto.ts';
import { AwsProvider, awsProvider, DEFAULT_DENY_ALL } from './aws.ts';
import type { ProviderAction, ProviderDefinition } from './port.ts';

describeProviderContract(
  'aws (moto)',
  async () => {
    const moto: MotoHandle = await startMoto();
    const iam = motoIam(moto.url);
    const make = (endpoint = moto.url) =>
      new AwsProvider({
        endpoint,
        accessKeyId: 'AKIAMOTOTESTKEY00000',
        secretAccessKey: 'moto',
        timeoutMs: 5000,
      });
    let seq = 0;
    const act = (action: ActionType, id: string, type: 'human' | 'api_key' | 'workload'): ProviderAction => ({
      actionId: `aws-${action}-${++seq}-${Date.now()}`,
      action,
      identity: { provider: 'aws', id, type },
      args: {},
    });
    const attachedToRole = async (role: string) =>
      (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: role }))).AttachedPolicies?.map(
        (p) => p.PolicyArn,
      ) ?? [];
    const attachedToUser = async (user: string) =>
      (await iam.send(new ListAttachedUserPoliciesCommand({ UserName: user }))).AttachedPolicies?.map(
        (p) => p.PolicyArn,
      ) ?? [];
    const hasLoginProfile = (user: string) =>
      iam.send(new GetLoginProfileCommand({ UserName: user })).then(
        () => true,
        (e: { name?: string }) => {
          if (e.name === 'NoSuchEntityException' || e.name === 'NoSuchEntity') return false;
          throw e;
        },
      );
    const names = new Map<string, { user: string; role: string; key: string }>();
    const fresh = async (action: ActionType, pick: 'key' | 'user' | 'role') => {
      const fx = await createAwsFixture(iam);
      const a =
        pick === 'key'
          ? act(action, fx.accessKeyId, 'api_key')
          : pick === 'user'
            ? act(action, fx.userArn, 'human')
            : act(action, fx.roleArn, 'workload');
      names.set(a.actionId, { user: fx.userName, role: fx.roleName, key: fx.accessKeyId });
      return a;
    };
    const of = (a: ProviderAction) => names.get(a.actionId)!;

    let limiter: Server | undefined;
    return {
      definition: awsProvider as ProviderDefinition,
      provider: make(),
      reopen: () => make(),
      cases: [
        {
          action: 'revoke_tokens',
          prepare: () => fresh('revoke_tokens', 'key'),
          observe: async (a) =>
            (await iam.send(new ListAccessKeysCommand({ UserName: of(a).user }))).AccessKeyMetadata?.map(
              (k) => [k.AccessKeyId, k.Status],
            ),
          undo: (a) =>
            iam.send(
              new UpdateAccessKeyCommand({ UserName: of(a).user, AccessKeyId: of(a).key, Status: 'Active' }),
            ),
          restored: async (a) => {
            const keys = (await iam.send(new ListAccessKeysCommand({ UserName: of(a).user })))
              .AccessKeyMetadata;
            expect(keys?.find((k) => k.AccessKeyId === of(a).key)?.Status).toBe('Active');
          },
        },
        {
          action: 'quarantine',
          prepare: () => fresh('quarantine', 'role'),
          observe: async (a) => attachedToRole(of(a).role),
          undo: (a) =>
            iam.send(new DetachRolePolicyCommand({ RoleName: of(a).role, PolicyArn: DEFAULT_DENY_ALL })),
          restored: async (a) => expect(await attachedToRole(of(a).role)).not.toContain(DEFAULT_DENY_ALL),
        },
        {
          action: 'disable_account',
          prepare: () => fresh('disable_account', 'user'),
          observe: async (a) => ({
            attached: await attachedToUser(of(a).user),
            loginProfile: await hasLoginProfile(of(a).user),
          }),
          undo: (a) =>
            iam.send(new DetachUserPolicyCommand({ UserName: of(a).user, PolicyArn: DEFAULT_DENY_ALL })),
          restored: async (a) => {
            expect(await attachedToUser(of(a).user)).not.toContain(DEFAULT_DENY_ALL);
            expect(await hasLoginProfile(of(a).user)).toBe(true);
          },
        },
        {
          action: 'revoke_sessions',
          prepare: () => fresh('revoke_sessions', 'role'),
          observe: async (a) =>
            (await iam.send(new ListRolePoliciesCommand({ RoleName: of(a).role }))).PolicyNames ?? [],
          undo: async (a) => {
            for (const name of (await iam.send(new ListRolePoliciesCommand({ RoleName: of(a).role })))
              .PolicyNames ?? [])
              await iam.send(new DeleteRolePolicyCommand({ RoleName: of(a).role, PolicyName: name }));
          },
        },
      ],
      unknownIdentity: () => act('quarantine', `no-such-user-${Date.now()}`, 'human'),
      unreachable: () => make('http://127.0.0.1:1'),
      rateLimited: async () => {
        // IAM's documented throttling error (query protocol), with the status and header a proxy adds.
        limiter = createServer((_req, res) => {
          res.writeHead(429, { 'retry-after': '3', 'content-type': 'text/xml' });
          res.end(
            '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>',
          );
        });
        await new Promise<void>((ok) => limiter!.listen(0, '127.0.0.1', ok));
        const port = (limiter.address() as AddressInfo).port;
        return {
          provider: make(`http://127.0.0.1:${port}`),
          action: act('quarantine', 'someone', 'human'),
          retryAfterSeconds: 3,
        };
      },
      teardown: async () => {
        limiter?.close();
        await stopMoto(moto);
      },
    };
  },
  { skip: motoUnavailableReason() },
);
