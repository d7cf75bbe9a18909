import { formatDuration } from './duration.ts';
import type { Policy } from './schema.ts';

/** A readable table of a policy: rule → evidence needed → action ladder → approval. */
export function explainPolicy(policy: Policy): string {
  const rows: string[][] = [['rule', 'evidence needed', 'identities', 'ladder (stage: action → approval)']];
  for (const r of policy.rules) {
    const w = r.when;
    const evidence = [
      w.kinds.length > 4 ? `any of ${w.kinds.length} kinds` : w.kinds.join('|'),
      `confidence ≥ ${w.minConfidence}`,
      w.count > 1 ? `${w.count}× within ${formatDuration(w.window)}` : 'once',
      w.distinctSources > 1 ? `${w.distinctSources} distinct sources` : '',
    ]
      .filter(Boolean)
      .join(', ');
    const ids = [
      r.identities.types?.join('|'),
      r.identities.tiers ? `tier ${r.identities.tiers.join('|')}` : undefined,
      r.identities.tags ? `tags ${r.identities.tags.join('|')}` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    const ladder = r.ladder
      .map(
        (s, i) =>
          `${i + 1}: ${s.action} → ${s.approval}${s.after ? ` (after ${formatDuration(s.after)})` : ''}${s.ttl ? ` ttl ${formatDuration(s.ttl)}` : ''}`,
      )
      .join('; ');
    rows.push([r.id, evidence, ids || 'any', ladder]);
  }
  const widths = rows[0]!.map((_, c) => Math.min(60, Math.max(...rows.map((r) => r[c]!.length))));
  const line = (r: string[]) => r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ');
  const g = policy.guards;
  const guardLines = [
    `break-glass identities: at least ${g.breakGlass.approval}, never automatic`,
    `shared identities (≥ ${g.shared.minConsumers} consumers): at least analyst`,
    'third-party connected identities: revocations need external coordination (CoordinationRequested)',
    `staged containment for tiers ${g.stagedContainment.tiers.join(', ')}: disabling waits ${formatDuration(g.stagedContainment.validationWindow)} after a narrower stage, or an analyst`,
    'unmanaged secrets: rotate_credential becomes revoke_tokens; rollback marked incomplete',
    `stale detections (received more than ${formatDuration(policy.defaults.staleAfter)} after they occurred): at least analyst`,
    ...g.budgets.map(
      (b) =>
        `budget: at most ${b.limit} automatic ${b.action === '*' ? 'actions' : b.action} per ${formatDuration(b.window)} (${b.scope}${b.rules ? ` of rules ${b.rules.join(', ')}` : ''}); beyond → analyst + GuardTripped`,
    ),
    'kill switch: while paused nothing is auto-approved',
  ];
  return [
    `policy ${policy.id} version ${policy.version}${policy.description ? ` — ${policy.description}` : ''}`,
    '',
    line(rows[0]!),
    widths.map((w) => '-'.repeat(w)).join('-+-'),
    ...rows.slice(1).map(line),
    '',
    'guards (override every rule):',
    ...guardLines.map((l) => `  - ${l}`),
    '',
    `defaults: case floor ${policy.defaults.caseFloor}, approval ttl ${formatDuration(policy.defaults.approvalTtl)}, cool-down ${formatDuration(policy.defaults.cooldown)}, stale after ${formatDuration(policy.defaults.staleAfter)}, unknown identities treated as ${policy.defaults.unknownIdentity.tier}`,
  ].join('\n');
}
