import { DETECTION_KINDS } from '../../../schemas/detection.ts';
import type { ApprovalMode, GuardNote, NoActionReason } from '../../../schemas/events.ts';
import { formatDuration } from '../policy/duration.ts';
import type { Policy, Rule } from '../policy/schema.ts';
import { DISABLING } from './actions.ts';
import type { EvidenceItem, IdentityState } from './types.ts';

/**
 * Why nothing happened, in words an analyst reads in the case: computed only for detections that
 * open or join a case, never on the path of a detection that does neither. The reasons of a
 * detection no rule takes depend only on the policy and the detection's kind: they are built once
 * per policy (compilePolicy) and shared by every decision: a detection joining a case carries them
 * on its DetectionReceived without a single allocation.
 */

const GUARD_CODES: Record<string, NoActionReason['code']> = {
  stale: 'stale',
  storm_hold: 'storm_hold',
  blast_radius_budget: 'budget',
  automation_paused: 'paused',
};

const at = (ms: number) => new Date(ms).toISOString();

/** Why a rule has no stage to propose now (the counterpart of nextStage returning null). */
export function stageBlocked(state: IdentityState, rule: Rule, atMs: number, policy: Policy): NoActionReason {
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
    const until = (last.decidedAtMs ?? last.proposedAtMs) + policy.defaults.cooldown * 1000;
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
    afterMs = Math.max(afterMs, policy.guards.stagedContainment.validationWindow * 1000);
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
  const fits = (e: EvidenceItem) =>
    e.atMs > freshAfterMs &&
    Math.abs(e.atMs - latest.atMs) <= windowMs &&
    e.confidence >= w.minConfidence &&
    w.kinds.includes(e.kind as never);
  const candidates: EvidenceItem[] = [];
  for (const e of evidence) if (fits(e)) candidates.push(e);
  if (fits(latest)) candidates.push(latest);
  candidates.sort((a, b) => a.atMs - b.atMs);
  // The fullest window [start, start + window] that contains the latest detection, found with two
  // pointers over the sorted candidates. A start sharing its time with an earlier one spans fewer
  // items than that earlier start does, so it never wins: the first of equal times decides.
  let count = 0;
  let from = 0;
  let to = -1;
  for (let i = 0, j = 0; i < candidates.length; i++) {
    const start = candidates[i]!.atMs;
    if (start > latest.atMs || start + windowMs < latest.atMs) continue;
    if (j < i) j = i;
    while (j + 1 < candidates.length && candidates[j + 1]!.atMs <= start + windowMs) j++;
    if (j - i + 1 > count) {
      count = j - i + 1;
      from = i;
      to = j;
    }
  }
  const sources =
    w.distinctSources > 1 ? new Set(candidates.slice(from, to + 1).map((e) => e.source)).size : 0;
  const window = formatDuration(w.window);
  const sourcePart = w.distinctSources > 1 ? `, ${sources}/${w.distinctSources} sources` : '';
  return {
    code: 'gathering',
    ruleId: rule.id,
    detail: `rule ${rule.id} gathering evidence: ${count}/${w.count} in ${window}${sourcePart}`,
  };
}

/** Why a proposal was not automatic: each guard that held it, or the rule's own approval. */
export function heldReasons(
  plan: { action: string; mode: ApprovalMode; guards: readonly GuardNote[] },
  ruleId: string,
): NoActionReason[] {
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

/**
 * Why no rule took a detection, per kind: below the case floor, or no rule acts on its kind at its
 * confidence. Built once per policy; the arrays are shared by every decision and never changed.
 */
export interface Untaken {
  belowFloor: NoActionReason[];
  byKind: ReadonlyMap<string, NoActionReason[]>;
}

export function compileUntaken(policy: Policy, rulesByKind: ReadonlyMap<string, readonly Rule[]>): Untaken {
  const byKind = new Map<string, NoActionReason[]>();
  for (const [kind, rules] of rulesByKind) {
    const lowest = rules.reduce((m, r) => Math.min(m, r.when.minConfidence), Number.POSITIVE_INFINITY);
    byKind.set(
      kind,
      frozen({
        code: 'no_rule',
        detail: `no rule acts on ${kind} at this confidence for this identity (lowest rule minimum ${lowest})`,
      }),
    );
  }
  for (const kind of DETECTION_KINDS) {
    if (!byKind.has(kind)) byKind.set(kind, frozen({ code: 'no_rule', detail: `no rule acts on ${kind}` }));
  }
  return {
    belowFloor: frozen({
      code: 'below_case_floor',
      detail: `below the case floor ${policy.defaults.caseFloor}: recorded only`,
    }),
    byKind,
  };
}

/** The reasons of a detection no rule took (shared: never change the array returned). */
export function untaken(u: Untaken, floor: number, kind: string, confidence: number): NoActionReason[] {
  if (confidence < floor) return u.belowFloor;
  return u.byKind.get(kind) ?? frozen({ code: 'no_rule', detail: `no rule acts on ${kind}` });
}

function frozen(reason: NoActionReason): NoActionReason[] {
  return Object.freeze([Object.freeze(reason)]) as NoActionReason[];
}
