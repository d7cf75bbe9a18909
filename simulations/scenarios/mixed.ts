import { benignNoise } from './benign-noise.ts';
import type { Scenario } from './common.ts';
import { credentialStuffing } from './credential-stuffing.ts';
import { leakedCiSecret } from './leaked-ci-secret.ts';
import { oauthAppAbuse } from './oauth-app-abuse.ts';
import { sharedServiceAccount } from './shared-service-account.ts';
import { tokenTheft } from './token-theft.ts';

/** Every attack and every kind of benign noise, in one realistic month of one company. */
export const PARTS: readonly Scenario[] = [
  tokenTheft,
  leakedCiSecret,
  credentialStuffing,
  sharedServiceAccount,
  oauthAppAbuse,
  benignNoise,
];

export const mixed: Scenario = {
  name: 'mixed',
  description: 'all scenarios in one realistic month: rare attacks among routine benign noise',
  truth: 'both',
  generate(env) {
    for (const part of PARTS) part.generate({ ...env, rng: env.rng.child(part.name), mixed: true });
  },
};
