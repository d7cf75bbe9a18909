/** The provider contract (test/contract/provider.contract.ts) over the dry-run provider's simulation. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ActionType } from '../../../schemas/events.ts';
import { describeProviderContract } from '../../../test/contract/provider.contract.ts';
import { DryRunProvider, dryRunProvider } from './dry-run.ts';
import type { ProviderAction, ProviderDefinition } from './port.ts';

describeProviderContract('dry-run', async () => {
  const journalPath = join(mkdtempSync(join(tmpdir(), 'tq-dry-contract-')), 'calls.jsonl');
  const provider = new DryRunProvider({ journalPath });
  let seq = 0;
  const prepare = (action: ActionType) => async (): Promise<ProviderAction> => {
    seq += 1;
    return {
      actionId: `dry-${action}-${seq}`,
      action,
      identity: { provider: 'okta', id: `user-${seq}`, type: 'human' },
      args: {},
    };
  };
  return {
    definition: dryRunProvider as ProviderDefinition,
    provider,
    // A restart reloads the journal: the simulated effects survive it.
    reopen: () => new DryRunProvider({ journalPath }),
    cases: [
      {
        action: 'disable_account',
        prepare: prepare('disable_account'),
        observe: async (a) => provider.observe(a.identity),
        undo: async (a) => provider.tamper(a.identity, { enabled: true }),
        restored: async (a) => {
          expect(new DryRunProvider({ journalPath }).observe(a.identity).enabled).toBe(true);
        },
      },
      {
        action: 'revoke_sessions',
        prepare: prepare('revoke_sessions'),
        observe: async (a) => provider.observe(a.identity),
        undo: async (a) => provider.tamper(a.identity, { sessions: 2 }),
      },
    ],
  };
});
