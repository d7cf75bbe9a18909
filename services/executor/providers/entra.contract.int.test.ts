/** The provider contract (test/contract/provider.contract.ts) over EntraProvider and the checked local Graph. */
import type { IdentityType } from '../../../schemas/detection.ts';
import type { ActionType } from '../../../schemas/events.ts';
import { describeProviderContract } from '../../../test/contract/provider.contract.ts';
import { EntraFake } from '../../../test/support/vendors/entra-fake.ts';
import { EntraConfigSchema, type EntraPrior, EntraProvider, entraProvider } from './entra.ts';
import type { ProviderAction, ProviderDefinition } from './port.ts';

describeProviderContract('entra (checked against Graph v1.0)', async () => {
  const g = new EntraFake();
  const url = await g.start();
  const make = (baseUrl = url) =>
    new EntraProvider(
      EntraConfigSchema.parse({
        tenantId: 'tenant',
        clientId: g.clientId,
        clientSecret: g.clientSecret,
        baseUrl,
        tokenUrl: baseUrl === url ? g.tokenUrl : `${baseUrl}/token`,
        resetPollMs: 10,
        feedbackBatchWindowMs: 10,
        timeoutMs: 2000,
      }),
      { now: Date.now },
    );
  let seq = 0;
  const act = (action: ActionType, id: string, type: IdentityType): ProviderAction => ({
    actionId: `entra-${action}-${++seq}`,
    action,
    identity: { provider: 'entra', id, type },
    args: {},
  });
  const user = (prior: unknown) => g.users.get((prior as EntraPrior).resolvedId)!;
  const sp = (prior: unknown) => g.sps.get((prior as EntraPrior).resolvedId)!;
  const provider = make();
  return {
    definition: entraProvider as ProviderDefinition,
    provider,
    reopen: () => make(),
    cases: [
      {
        action: 'revoke_sessions',
        prepare: async () => act('revoke_sessions', g.addUser(`u${++seq}@acme.example`).upn, 'human'),
        observe: async (_a, prior) =>
          user(prior).signInSessionsValidFrom > (prior as EntraPrior).capturedAt.slice(0, 19),
        undo: async (_a, prior) => {
          user(prior).signInSessionsValidFrom = '2026-01-01T00:00:00Z';
        },
      },
      {
        action: 'disable_account',
        prepare: async () => act('disable_account', g.addUser(`u${++seq}@acme.example`).id, 'human'),
        observe: async (_a, prior) => user(prior).accountEnabled,
        undo: async (_a, prior) => {
          user(prior).accountEnabled = true;
        },
        restored: async (_a, prior) => {
          if (!user(prior).accountEnabled) throw new Error('the user is still disabled');
        },
      },
      {
        action: 'disable_service_account',
        prepare: async () => act('disable_service_account', g.addSp(`sp${++seq}`).appId, 'service_account'),
        observe: async (_a, prior) => sp(prior).accountEnabled,
        undo: async (_a, prior) => {
          sp(prior).accountEnabled = true;
        },
        restored: async (_a, prior) => {
          if (!sp(prior).accountEnabled) throw new Error('the service principal is still disabled');
        },
      },
      {
        action: 'rotate_credential',
        prepare: async () => act('rotate_credential', g.addSp(`sp${++seq}`).appId, 'workload'),
        observe: async (_a, prior) => sp(prior).passwordCredentials.map((c) => c.keyId),
        undo: async (_a, prior) => {
          const keyId = (prior as EntraPrior).credential!.keyId;
          sp(prior).passwordCredentials.push({ keyId, displayName: 'added back behind our back' });
        },
      },
    ],
    unknownIdentity: () => act('disable_account', 'nobody@acme.example', 'human'),
    unreachable: () => make('http://127.0.0.1:9'),
    rateLimited: async () => {
      const a = act('disable_account', g.addUser(`u${++seq}@acme.example`).id, 'human');
      await provider.capture(a); // a token in hand, so the 429 lands on Graph itself
      g.fake.failNext('user.get', { status: 429, retryAfterSeconds: 6 });
      return { provider, action: a, retryAfterSeconds: 6 };
    },
    teardown: async () => {
      await g.stop();
      g.fake.assertNoDeviations();
    },
  };
});
