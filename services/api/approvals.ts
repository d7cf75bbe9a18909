import type { Logger } from 'pino';
import { ApprovalError, NotFoundError } from '../../platform/errors.ts';
import type { DeciderInput } from '../../schemas/decider-input.ts';
import type { NewEvent } from '../../schemas/events.ts';
import type { Projector } from '../projector/projector.ts';
import { getAction } from '../projector/queries.ts';
import type { ActionView } from '../projector/views.ts';
import { ForbiddenError, type Principal } from './auth.ts';
import { actingRole, DECIDE } from './roles.ts';

/**
 * Approve and reject: the one command path for every channel (the JSON API, console forms, Slack).
 * The rules live here once: only analysts and admins decide, the action must still be pending, an
 * approver counts once (two-person approvals need two distinct principals), the proposer never
 * approves their own proposal, and the decider has the last word (digest binding, expiry).
 */

export interface ApprovalCommandDeps {
  projector: Projector;
  /** Submits a human command to the decider (context.ts submitFn: "not found" becomes a conflict). */
  submit: (input: DeciderInput) => Promise<NewEvent[]>;
  now: () => Date;
  /** Read-your-writes: resolves once the views include what was appended. */
  settle: () => Promise<void>;
  log?: Logger | undefined;
}

export interface CommandOutcome {
  action: ActionView;
  events: NewEvent[];
}

export interface DecisionOptions {
  /** The approval group this decision was made in (recorded on the event). */
  groupId?: string | undefined;
  /** Wait for the views to include the decision (default); a group decision settles once at the end. */
  settle?: boolean;
}

export class ApprovalCommands {
  private readonly deps: ApprovalCommandDeps;

  constructor(deps: ApprovalCommandDeps) {
    this.deps = deps;
  }

  /** Refuses a principal without a deciding role (the HTTP routes check the same table first). */
  assertMayDecide(p: Principal, verb: 'approve' | 'reject'): void {
    if (!p.roles.some((r) => DECIDE.includes(r)))
      throw new ForbiddenError(
        `${p.id} (roles: ${p.roles.join(', ') || 'none'}) may not ${verb}; it needs one of: ${DECIDE.join(', ')}`,
        { required: DECIDE },
      );
  }

  /**
   * Why this principal may not approve this action (their own proposal, already approved by them),
   * or null. Rejecting has no such rule.
   */
  ineligible(a: ActionView, p: Principal, verb: 'approved' | 'rejected'): string | null {
    if (verb === 'rejected') return null;
    if (a.approvers.includes(p.id))
      return `${p.id} already approved ${a.id}; a second, distinct approver is needed`;
    if (a.proposedBy === p.id) return `${p.id} proposed ${a.id} and cannot approve it`;
    return null;
  }

  /** The action, if it is pending and this principal may still decide it. */
  findPending(id: string, principal: Principal, verb: 'approved' | 'rejected'): ActionView {
    const a = getAction(this.deps.projector, id);
    if (!a) throw new NotFoundError('action', id);
    if (a.status !== 'proposed') {
      throw new ApprovalError(`action ${id} is ${a.status}, not pending approval: it cannot be ${verb}`, {
        status: a.status,
      });
    }
    const why = this.ineligible(a, principal, verb);
    if (why) throw new ApprovalError(why, { approvers: a.approvers });
    return a;
  }

  async approve(
    actionId: string,
    p: Principal,
    opts: DecisionOptions & { argsDigest?: string | undefined; comment?: string | undefined } = {},
  ): Promise<CommandOutcome> {
    this.assertMayDecide(p, 'approve');
    const a = this.findPending(actionId, p, 'approved');
    if (opts.comment)
      this.deps.log?.info({ actionId: a.id, by: p.id, comment: opts.comment }, 'approval comment');
    const events = await this.deps.submit({
      type: 'approve',
      at: this.deps.now().toISOString(),
      identity: a.identity,
      actionId: a.id,
      by: { id: p.id, role: actingRole(p, DECIDE) },
      ...(opts.argsDigest ? { argsDigest: opts.argsDigest } : {}),
      ...(opts.comment ? { comment: opts.comment } : {}),
      ...(opts.groupId ? { groupId: opts.groupId } : {}),
    });
    if (opts.settle !== false) await this.deps.settle();
    return { action: getAction(this.deps.projector, a.id)!, events };
  }

  async reject(
    actionId: string,
    p: Principal,
    reason: string,
    opts: DecisionOptions = {},
  ): Promise<CommandOutcome> {
    this.assertMayDecide(p, 'reject');
    const a = this.findPending(actionId, p, 'rejected');
    const events = await this.deps.submit({
      type: 'reject',
      at: this.deps.now().toISOString(),
      identity: a.identity,
      actionId: a.id,
      by: { id: p.id, role: actingRole(p, DECIDE) },
      reason,
      ...(opts.groupId ? { groupId: opts.groupId } : {}),
    });
    if (opts.settle !== false) await this.deps.settle();
    return { action: getAction(this.deps.projector, a.id)!, events };
  }
}
