import type { NoActionReason } from '../../../schemas/events.ts';
import { formatDuration } from '../policy/duration.ts';
import type { Rule } from '../policy/schema.ts';
import { DISABLING } from './actions.ts';
import type { DeciderContext } from './context.ts';
import type { PlanDraft } from './guards/types.ts';
import type { EvidenceItem, IdentityState } from './types.ts';

/**
 * Why nothing happened, in words an analyst reads in the case: computed only for detections that
 * open or join a case, never on the path of a detection that does neither.
 */

const GUARD_CODES: Record<string, NoActionReason['code']> = {
  stale: 'stale',
  storm_hold: 'storm_hold',
  blast_radius_budget: 'budget',
  automation_paused: 'paused',
};

const at = (ms: number) => new Date(ms).toISOString();

/** Why a rule has no stage to propose now (the counterpart of nextStage returning null). */
export function stageBlocked(
  state: IdentityState,
  rule: Rule,
  atMs: number,
  ctx: DeciderContext,
): NoActionReason {
  const ruleId = rule.id;
  if (rule.mode === 'monitor') {
    return {
      code: 'monitor',
      ruleId,
      detail: `rule ${ruleId} is in monitor mode and already recorded what it would do in this case`,
    };
  }
  const last = state.openCase?.actions.findLast((a) => a.ruleId === ruleId);
  if (!last) return { code: 'contained', ruleId, detail: `rule ${ruleId}: nothing to propose` };
  if (last.status === 'pending') {
    return {
      code: 'pending',
      ruleId,
      detail: `rule ${ruleId}: stage ${last.stage} (${last.action}) awaits ${last.mode} approval`,
    };
  }
  if (last.status === 'rejected' || last.status === 'expired') {
    const until = (last.decidedAtMs ?? last.proposedAtMs) + ctx.policy.policy.defaults.cooldown * 1000;
    return {
      code: 'cooldown',
      ruleId,
      detail: `rule ${ruleId}: stage ${last.stage} (${last.action}) was ${last.status}; cool-down until ${at(until)}`,
    };
  }
  if (last.stage >= rule.ladder.length) {
    return {
      code: 'contained',
      ruleId,
      detail: `rule ${ruleId}: ladder complete (stage ${last.stage}, ${last.action}, approved)`,
    };
  }
  const next = rule.ladder[last.stage]!;
  let afterMs = (next.after ?? 0) * 1000;
  if (DISABLING.has(next.action)) {
    afterMs = Math.max(afterMs, ctx.policy.policy.guards.stagedContainment.validationWindow * 1000);
  }
  const from = (last.decidedAtMs ?? last.proposedAtMs) + afterMs;
  return {
    code: 'validation_window',
    ruleId,
    detail: `rule ${ruleId}: stage ${last.stage + 1} (${next.action}) not before ${at(Math.max(from, atMs))}`,
  };
}

/** How far a multi-detection rule's evidence has come: "2/3 in 30m" (and sources when it asks for several). */
export function gathering(
  evidence: readonly EvidenceItem[],
  latest: EvidenceItem,
  rule: Rule,
  freshAfterMs: number,
): NoActionReason {
  const w = rule.when;
  const windowMs = w.window * 1000;
  const candidates = [...evidence, latest]
    .filter(
      (e) =>
        e.atMs > freshAfterMs &&
        Math.abs(e.atMs - latest.atMs) <= windowMs &&
        e.confidence >= w.minConfidence &&
        w.kinds.includes(e.kind as never),
    )
    .sort((a, b) => a.atMs - b.atMs);
  let count = 0;
  let sources = 0;
  for (const start of candidates) {
    if (start.atMs > latest.atMs || start.atMs + windowMs < latest.atMs) continue;
    const inWindow = candidates.filter((e) => e.atMs >= start.atMs && e.atMs <= start.atMs + windowMs);
    if (inWindow.length > count) {
      count = inWindow.length;
      sources = new Set(inWindow.map((e) => e.source)).size;
    }
  }
  const window = formatDuration(w.window);
  const sourcePart = w.distinctSources > 1 ? `, ${sources}/${w.distinctSources} sources` : '';
  return {
    code: 'gathering',
    ruleId: rule.id,
    detail: `rule ${rule.id} gathering evidence: ${count}/${w.count} in ${window}${sourcePart}`,
  };
}

/** Why a proposal was not automatic: each guard that held it, or the rule's own approval. */
export function heldReasons(plan: PlanDraft, ruleId: string): NoActionReason[] {
  if (plan.guards.length === 0) {
    return [
      {
        code: 'approval_required',
        ruleId,
        detail: `rule ${ruleId}: ${plan.action} needs ${plan.mode} approval`,
      },
    ];
  }
  return plan.guards.map((g) => ({
    code: GUARD_CODES[g.guard] ?? 'guard',
    ruleId,
    detail: `${plan.action} ${g.effect} (${g.guard}): ${g.reason}`,
  }));
}

/** A detection no rule took: below the case floor, or no rule acts on its kind at its confidence. */
export function untaken(kind: string, confidence: number, ctx: DeciderContext): NoActionReason {
  const floor = ctx.policy.policy.defaults.caseFloor;
  if (confidence < floor) {
    return {
      code: 'below_case_floor',
      detail: `confidence ${confidence} below the case floor ${floor}: recorded only`,
    };
  }
  const rules = ctx.policy.rulesByKind.get(kind) ?? [];
  const lowest = rules.reduce((m, r) => Math.min(m, r.when.minConfidence), Number.POSITIVE_INFINITY);
  return {
    code: 'no_rule',
    detail:
      rules.length === 0
        ? `no rule acts on ${kind}`
        : `no rule acts on ${kind} at confidence ${confidence} for this identity (lowest rule minimum ${lowest})`,
  };
}
