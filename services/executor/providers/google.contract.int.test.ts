/** The provider contract (test/contract/provider.contract.ts) over GoogleProvider and the checked local Directory API. */
import type { ActionType } from '../../../schemas/events.ts';
import { describeProviderContract } from '../../../test/contract/provider.contract.ts';
import { GoogleFake } from '../../../test/support/vendors/google-fake.ts';
import { GoogleConfigSchema, type GooglePrior, GoogleProvider, googleProvider } from './google.ts';
import type { ProviderAction, ProviderDefinition } from './port.ts';

describeProviderContract('google (checked against the Directory API discovery document)', async () => {
  const g = new GoogleFake();
  const url = await g.start();
  const make = (baseUrl = url) =>
    new GoogleProvider(
      GoogleConfigSchema.parse({
        clientEmail: g.clientEmail,
        privateKey: g.privateKeyPem,
        subject: g.subject,
        baseUrl,
        tokenUrl: baseUrl === url ? g.tokenUrl : `${baseUrl}/token`,
        timeoutMs: 2000,
      }),
      { now: Date.now },
    );
  let seq = 0;
  const fresh =
    (action: ActionType, args: Record<string, unknown> = {}) =>
    async (): Promise<ProviderAction> => ({
      actionId: `google-${action}-${++seq}`,
      action,
      identity: { provider: 'google', id: g.addUser(`u${seq}@acme.example`, ['app-a']).email, type: 'human' },
      args,
    });
  const originalCodes = new Map<string, string[]>();
  const user = (prior: unknown) => g.users.get((prior as GooglePrior).resolvedId)!;
  const provider = make();
  return {
    definition: googleProvider as ProviderDefinition,
    provider,
    reopen: () => make(),
    cases: [
      {
        action: 'revoke_sessions',
        prepare: fresh('revoke_sessions'),
        observe: async (_a, prior) => ({ sessions: user(prior).sessions, tokens: [...user(prior).tokens] }),
        undo: async (_a, prior) => {
          user(prior).tokens = ['app-a'];
        },
      },
      {
        action: 'revoke_oauth_grant',
        prepare: fresh('revoke_oauth_grant', { clientId: 'app-a' }),
        observe: async (_a, prior) => [...user(prior).tokens],
        undo: async (_a, prior) => {
          user(prior).tokens = ['app-a'];
        },
      },
      {
        action: 'rotate_credential',
        prepare: async () => {
          const a = await fresh('rotate_credential')();
          originalCodes.set(a.actionId, [...g.users.get([...g.users.keys()].at(-1)!)!.codes]);
          return a;
        },
        observe: async (_a, prior) => user(prior).codes.length,
        undo: async (a, prior) => {
          user(prior).codes = [...originalCodes.get(a.actionId)!];
        },
      },
      {
        action: 'disable_account',
        prepare: fresh('disable_account'),
        observe: async (_a, prior) => user(prior).suspended,
        undo: async (_a, prior) => {
          user(prior).suspended = false;
        },
        restored: async (_a, prior) => {
          if (user(prior).suspended) throw new Error('still suspended');
        },
      },
    ],
    unknownIdentity: () => ({
      actionId: 'google-unknown',
      action: 'disable_account',
      identity: { provider: 'google', id: 'nobody@acme.example', type: 'human' },
      args: {},
    }),
    unreachable: () => make('http://127.0.0.1:9'),
    rateLimited: async () => {
      const a = await fresh('disable_account')();
      await provider.capture(a);
      g.fake.failNext('directory.users.get', { status: 429, retryAfterSeconds: 2 });
      return { provider, action: a, retryAfterSeconds: 2 };
    },
    teardown: async () => {
      await g.stop();
      g.fake.assertNoDeviations();
    },
  };
});
