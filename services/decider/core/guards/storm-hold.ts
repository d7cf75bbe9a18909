import { identityKey } from '../../../../schemas/detection.ts';
import type { Guard, GuardContext, PlanDraft } from './types.ts';

/**
 * A rule firing on many distinct identities at once is far likelier to be misfiring (a bad
 * threat-intel feed, a broken detection) than to have found that many compromises: from the
 * identity that trips the storm on, the rule's automatic actions are held for an analyst, grouped
 * under the storm, until an analyst resolves it or the rule's rate falls below half the threshold.
 * Runs whatever the approval mode, so every action of a held rule joins the storm's group.
 */
export const stormHold: Guard = {
  name: 'storm_hold',
  apply(plan, g) {
    const cfg = g.ctx.policy.policy.guards.storm;
    if (!cfg.enabled || g.ruleId === 'manual') return;
    const windowMs = cfg.window * 1000;
    // After a storm is resolved, only identities since then count towards the next one: an analyst
    // who ended the hold is not overruled by the same wave a moment later.
    const notBeforeMs = g.ctx.storms.resolvedAtMs(g.ruleId);
    let storm = g.ctx.storms.active(g.ruleId);
    // Too few firings nearby to reach even the floor: no storm, and nothing to count exactly.
    if (!storm && g.ctx.storms.firingsNear(g.ruleId, g.atMs, windowMs, notBeforeMs) + 1 < cfg.minIdentities)
      return;
    const self = identityKey(g.entry);
    const baseline = baselineOf(g, windowMs);
    const threshold = Math.max(cfg.minIdentities, Math.ceil(cfg.baselineFactor * baseline));
    // Only compared with thresholds until a storm is raised: counted no further than they need (the
    // identities themselves are listed only for a storm raised, below).
    const count = g.ctx.storms.busiestCount(
      g.ruleId,
      g.atMs,
      windowMs,
      notBeforeMs,
      self,
      Math.max(threshold, storm ? Math.ceil(storm.threshold / 2) : 0),
    );
    let subsided: string | null = null;
    if (storm && count < Math.ceil(storm.threshold / 2)) {
      subsided = storm.stormId;
      storm = undefined;
    }
    if (storm) {
      hold(plan, storm.stormId, subsided, null, `rule ${g.ruleId} is held by storm ${storm.stormId}`);
      return;
    }
    if (count < threshold) {
      if (subsided) plan.storm = { stormId: subsided, raised: null, subsided };
      return;
    }
    const recent = g.ctx.storms.busiestWindow(g.ruleId, g.atMs, windowMs, notBeforeMs, self);
    const stormId = `storm-${g.ruleId}-${g.atMs.toString(36)}-${g.state.tag.slice(0, 8)}`;
    const identities = [...recent].sort().map((key) => {
      const cut = key.indexOf(':');
      return { provider: key.slice(0, cut), id: key.slice(cut + 1) };
    });
    hold(
      plan,
      stormId,
      subsided,
      { identities, windowSeconds: cfg.window, baseline, threshold, source: g.source },
      `rule ${g.ruleId} fired on ${recent.size} identities within ${cfg.window}s (storm threshold ${threshold}, baseline ${round(baseline)} per window)`,
    );
  },
};

function hold(
  plan: PlanDraft,
  stormId: string,
  subsided: string | null,
  raised: NonNullable<PlanDraft['storm']>['raised'],
  reason: string,
): void {
  plan.storm = { stormId, raised, subsided };
  if (plan.mode !== 'auto') return;
  plan.guards.push({ guard: 'storm_hold', effect: 'approval auto -> analyst', reason });
  plan.mode = 'analyst';
}

/** The rule's usual proposals per window over the baseline period before the current window. */
function baselineOf(g: GuardContext, windowMs: number): number {
  const periodMs = g.ctx.policy.policy.guards.storm.baselinePeriod * 1000;
  const windows = Math.max(1, Math.floor(periodMs / windowMs) - 1);
  return g.ctx.storms.proposals(g.ruleId, g.atMs - periodMs, g.atMs - windowMs) / windows;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
