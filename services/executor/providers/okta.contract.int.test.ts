/** The provider contract (test/contract/provider.contract.ts) over OktaProvider and the checked local Okta. */
import type { ActionType } from '../../../schemas/events.ts';
import { describeProviderContract } from '../../../test/contract/provider.contract.ts';
import { type FakeOktaUser, OktaFake } from '../../../test/support/vendors/okta-fake.ts';
import { OktaConfigSchema, type OktaPrior, OktaProvider, oktaProvider } from './okta.ts';
import type { ProviderAction, ProviderDefinition } from './port.ts';

describeProviderContract('okta (checked against its Management API description)', async () => {
  const okta = new OktaFake();
  const url = await okta.start();
  const make = (baseUrl = url) =>
    new OktaProvider(
      OktaConfigSchema.parse({ baseUrl, apiToken: okta.apiToken, timeoutMs: 2000, systemLogPollMs: 10 }),
      {
        now: Date.now,
      },
    );
  let seq = 0;
  const act = (action: ActionType, u: FakeOktaUser, args: Record<string, unknown> = {}): ProviderAction => ({
    actionId: `okta-${action}-${++seq}`,
    action,
    identity: { provider: 'okta', id: u.login, type: 'human' },
    args,
  });
  const fresh =
    (action: ActionType, args: Record<string, unknown> = {}) =>
    async () =>
      act(action, okta.addUser(`u${++seq}@acme.example`, '0oaportal'), args);
  const user = (prior: unknown) => okta.users.get((prior as OktaPrior).resolvedId)!;
  const portal = (prior: unknown) => user(prior).clients.get('0oaportal')!;
  const provider = make();
  return {
    definition: oktaProvider as ProviderDefinition,
    provider,
    reopen: () => make(),
    cases: [
      {
        action: 'revoke_sessions',
        prepare: fresh('revoke_sessions'),
        observe: async (_a, prior) => ({
          sessions: user(prior).sessions,
          tokens: portal(prior).tokens.map((t) => t.status),
        }),
        undo: async (_a, prior) => {
          // Another admin's view of "not applied": no clear on record, tokens alive again.
          okta.logs.splice(
            0,
            okta.logs.length,
            ...okta.logs.filter((l) => l.targetId !== (prior as OktaPrior).resolvedId),
          );
          for (const t of portal(prior).tokens) t.status = 'ACTIVE';
        },
      },
      {
        action: 'revoke_tokens',
        prepare: fresh('revoke_tokens'),
        observe: async (_a, prior) => portal(prior).tokens.map((t) => t.status),
        undo: async (_a, prior) => {
          for (const t of portal(prior).tokens) t.status = 'ACTIVE';
        },
      },
      {
        action: 'revoke_oauth_grant',
        prepare: fresh('revoke_oauth_grant', { clientId: '0oaportal' }),
        observe: async (_a, prior) => portal(prior).grants.map((g) => g.status),
        undo: async (_a, prior) => {
          for (const g of portal(prior).grants) g.status = 'ACTIVE';
        },
      },
      {
        action: 'disable_account',
        prepare: fresh('disable_account'),
        observe: async (_a, prior) => user(prior).status,
        undo: async (_a, prior) => {
          user(prior).status = 'ACTIVE';
        },
        restored: async (_a, prior) => {
          if (user(prior).status !== 'ACTIVE') throw new Error(`status ${user(prior).status}, not ACTIVE`);
        },
      },
      {
        action: 'force_step_up',
        prepare: fresh('force_step_up'),
        observe: async (_a, prior) => user(prior).status,
        undo: async (_a, prior) => {
          user(prior).status = 'ACTIVE';
        },
      },
      {
        action: 'rotate_credential',
        prepare: fresh('rotate_credential'),
        observe: async (_a, prior) => user(prior).factors.map((f) => f.status),
        undo: async (_a, prior) => {
          for (const f of user(prior).factors) f.status = 'ACTIVE';
        },
      },
    ],
    unknownIdentity: () => ({
      actionId: 'okta-unknown',
      action: 'disable_account',
      identity: { provider: 'okta', id: 'nobody@acme.example', type: 'human' },
      args: {},
    }),
    unreachable: () => make('http://127.0.0.1:9'),
    rateLimited: async () => {
      okta.fake.failNext('getUser', { status: 429, retryAfterSeconds: 4 });
      return { provider, action: await fresh('disable_account')(), retryAfterSeconds: 4 };
    },
    teardown: async () => {
      await okta.stop();
      okta.fake.assertNoDeviations();
    },
  };
});
