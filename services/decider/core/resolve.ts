import type { DeciderInput } from '../../../schemas/decider-input.ts';
import type { CatalogueIndex } from './catalogue.ts';

/**
 * One identity across sources: a detection naming an alias from the catalogue (an email, a UPN, an
 * Entra object id, an AWS access key id, a GitHub login, ...) is decided as the canonical identity,
 * before grouping, dedupe, rule counting and budgets. The name it arrived under is kept in the
 * detection's evidence (`aliasOf`). Anything else passes unchanged (an unresolved identity stays as
 * it is). Pure: live and replay resolve the same way from the same catalogue.
 */
export function resolveIdentity(input: DeciderInput, catalogue: CatalogueIndex): DeciderInput {
  if (input.type !== 'detection') return input;
  const d = input.detection;
  const entry = catalogue.canonical(d.identity);
  if (!entry) return input;
  return {
    ...input,
    detection: {
      ...d,
      identity: {
        provider: entry.provider,
        id: entry.id,
        type: entry.type,
        ...(entry.tenant ? { tenant: entry.tenant } : {}),
      },
      evidence: { ...d.evidence, aliasOf: { provider: d.identity.provider, id: d.identity.id } },
    },
  };
}
