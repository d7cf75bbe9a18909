/**
 * The provider registry: every identity provider Tourniquet can act on. Adding one is a file in this
 * folder exporting a ProviderDefinition, plus one line below; the providers file (`type:`), policy
 * validation and the capabilities shown before approval all read this list.
 */

import type { ActionType } from '../../../schemas/events.ts';
import { awsProvider } from './aws.ts';
import { dryRunProvider } from './dry-run.ts';
import { entraProvider } from './entra.ts';
import { githubProvider } from './github.ts';
import { googleProvider } from './google.ts';
import { keycloakProvider } from './keycloak.ts';
import { oktaProvider } from './okta.ts';
import type { ActionCapability, ProviderDefinition } from './port.ts';
import { webhookProvider } from './webhook.ts';

export const PROVIDERS: readonly ProviderDefinition[] = [
  keycloakProvider as ProviderDefinition,
  webhookProvider as ProviderDefinition,
  dryRunProvider as ProviderDefinition,
  awsProvider as ProviderDefinition,
  githubProvider as ProviderDefinition,
  oktaProvider as ProviderDefinition,
  entraProvider as ProviderDefinition,
  googleProvider as ProviderDefinition,
];

const byName = new Map(PROVIDERS.map((p) => [p.name, p]));
if (byName.size !== PROVIDERS.length) throw new Error('provider registry: two definitions share a name');

/** The definition registered under `name` (a providers-file `type`), or undefined. */
export function providerDefinition(name: string): ProviderDefinition | undefined {
  return byName.get(name);
}

/** What (provider type, action) can undo, or undefined when that provider cannot perform the action. */
export function capabilityOf(type: string, action: ActionType): ActionCapability | undefined {
  return byName.get(type)?.actions[action];
}
