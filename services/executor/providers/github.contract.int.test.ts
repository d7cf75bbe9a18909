/** The provider contract (test/contract/provider.contract.ts) over GitHubProvider and the checked local GitHub. */
import type { ActionType } from '../../../schemas/events.ts';
import { describeProviderContract } from '../../../test/contract/provider.contract.ts';
import { GitHubFake } from '../../../test/support/vendors/github-fake.ts';
import { GitHubConfigSchema, type GitHubPrior, GitHubProvider, githubProvider } from './github.ts';
import type { ProviderAction, ProviderDefinition } from './port.ts';

describeProviderContract('github (checked against its REST description)', async () => {
  const gh = new GitHubFake();
  const url = await gh.start();
  const CLIENT = 'Iv1.contract';
  const appSecret = gh.addApp(CLIENT);
  const make = (baseUrl = url) =>
    new GitHubProvider(
      GitHubConfigSchema.parse({
        baseUrl,
        token: gh.adminToken,
        oauthApps: [{ clientId: CLIENT, clientSecret: appSecret }],
        revokeBatchWindowMs: 10,
        timeoutMs: 2000,
      }),
      { now: Date.now },
    );
  let seq = 0;
  const act = (action: ActionType, id: string, args: Record<string, unknown> = {}): ProviderAction => ({
    actionId: `gh-${action}-${++seq}`,
    action,
    identity: {
      provider: 'github',
      id,
      type: action === 'disable_service_account' ? 'workload' : 'api_key',
      tenant: 'acme',
    },
    args,
  });
  const secrets = new Map<string, string>();
  const leaked = (action: ActionType, clientId?: string) => {
    const l = gh.leak(clientId ? { clientId, login: 'alice' } : {});
    const a = act(action, l.identityId, clientId ? { clientId } : {});
    secrets.set(a.actionId, l.secret);
    return a;
  };
  const alive = (a: ProviderAction) => gh.credentials.get(secrets.get(a.actionId)!)!;
  const pats = () => gh.orgPats.get('acme') ?? [];
  const keys = () => gh.deployKeys.get('acme/infra') ?? [];
  const provider = make();
  return {
    definition: githubProvider as ProviderDefinition,
    provider,
    reopen: () => make(),
    cases: [
      {
        action: 'revoke_tokens',
        prepare: async () => leaked('revoke_tokens'),
        observe: async (a) => alive(a).alive,
        undo: async (a) => {
          alive(a).alive = true;
        },
      },
      {
        action: 'revoke_tokens',
        prepare: async () => act('revoke_tokens', `pat:${gh.addOrgPat('acme', 'mallory').id}`),
        observe: async (_a, prior) =>
          pats().some((g) => g.id === (prior as GitHubPrior & { patId: number }).patId),
        undo: async (_a, prior) => {
          const p = prior as Extract<GitHubPrior, { target: 'org-pat' }>;
          pats().push({ id: p.patId, owner: p.owner, tokenName: p.tokenName });
        },
      },
      {
        action: 'revoke_oauth_grant',
        prepare: async () => leaked('revoke_oauth_grant', CLIENT),
        observe: async (a) => alive(a).alive,
        undo: async (a) => {
          alive(a).alive = true;
        },
      },
      {
        action: 'disable_service_account',
        prepare: async () =>
          act('disable_service_account', `deploy-key:acme/infra/${gh.addDeployKey('acme', 'infra').id}`),
        observe: async (_a, prior) =>
          keys().filter((k) => k.key === (prior as Extract<GitHubPrior, { target: 'deploy-key' }>).publicKey)
            .length,
        undo: async (_a, prior) => {
          const p = prior as Extract<GitHubPrior, { target: 'deploy-key' }>;
          keys().push({
            id: 90_000 + ++seq,
            key: p.publicKey,
            title: p.title,
            read_only: p.readOnly,
            created_at: new Date().toISOString(),
          });
        },
        restored: async (_a, prior) => {
          const p = prior as Extract<GitHubPrior, { target: 'deploy-key' }>;
          if (keys().filter((k) => k.key === p.publicKey).length !== 1)
            throw new Error('the deploy key is not back exactly once');
        },
      },
    ],
    unknownIdentity: () => act('revoke_tokens', 'github_personal_access_token:acme/app#999999'),
    unreachable: () => make('http://127.0.0.1:9'),
    rateLimited: async () => {
      gh.fake.failNext('secret-scanning/get-alert', { status: 429, retryAfterSeconds: 3 });
      return { provider, action: leaked('revoke_tokens'), retryAfterSeconds: 3 };
    },
    teardown: async () => {
      await gh.stop();
      gh.fake.assertNoDeviations();
    },
  };
});
