import type { ProviderCapabilities } from '../../../schemas/capabilities.ts';
import type { Policy } from './schema.ts';

/** A rule stage that configured providers would refuse, or would run irreversibly without saying so. */
export interface CapabilityFinding {
  ruleId: string;
  stage: number;
  action: string;
  /** The providers-file entry (its key, '*' for the fallback) and its registered type. */
  provider: string;
  type: string;
  problem: 'unsupported' | 'irreversible_auto';
  message: string;
}

/** The providers-file keys a rule can reach: those it names, or all of them ('*' for names not configured). */
function providersOf(rule: Policy['rules'][number], caps: ProviderCapabilities): string[] {
  const keys = Object.keys(caps);
  const named = rule.identities.providers;
  if (!named) return keys;
  const out = new Set<string>();
  for (const n of named) {
    if (caps[n]) out.add(n);
    else if (caps['*']) out.add('*');
  }
  return [...out];
}

/**
 * Checks a policy against what the configured providers can do, before anything runs: every stage a
 * reachable provider cannot perform, and every automatic stage of an action a reachable provider cannot
 * undo unless it says `irreversible: accept`. Pure: the capabilities are data.
 */
export function checkPolicyCapabilities(policy: Policy, caps: ProviderCapabilities): CapabilityFinding[] {
  const findings: CapabilityFinding[] = [];
  for (const rule of policy.rules) {
    for (const key of providersOf(rule, caps)) {
      const { type, actions } = caps[key]!;
      const who = key === type ? type : `${type} (provider "${key}")`;
      rule.ladder.forEach((stage, i) => {
        const at = { ruleId: rule.id, stage: i + 1, action: stage.action, provider: key, type };
        const cap = actions[stage.action];
        if (!cap) {
          findings.push({
            ...at,
            problem: 'unsupported',
            message: `rule ${rule.id} stage ${i + 1}: ${who} cannot perform ${stage.action}; narrow the rule (identities.providers) or configure a provider that can`,
          });
        } else if (
          cap.reversibility === 'irreversible' &&
          stage.approval === 'auto' &&
          stage.irreversible !== 'accept'
        ) {
          findings.push({
            ...at,
            problem: 'irreversible_auto',
            message: `rule ${rule.id} stage ${i + 1}: ${stage.action} is auto but ${who} cannot undo it (${cap.residue[0] ?? 'irreversible'}); say irreversible: accept on the stage, or require an approval`,
          });
        }
      });
    }
  }
  return findings;
}
