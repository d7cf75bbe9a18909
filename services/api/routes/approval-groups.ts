import { z } from 'zod';
import {
  ApprovalError,
  ConflictError,
  NotFoundError,
  type TourniquetError,
} from '../../../platform/errors.ts';
import type { Projector } from '../../projector/projector.ts';
import { listActions } from '../../projector/queries.ts';
import { ActionView } from '../../projector/views.ts';
import type { ApiRoutes } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';

/**
 * Grouped approvals: pending approvals that share a storm, a rule or a case are one decision for a
 * human. Deciding a group records one ActionApproved or ActionRejected per action, each bound to
 * that action's own argument digest and carrying the group id; two-person actions still need two
 * distinct principals, one at a time.
 */

const ApprovalGroup = z.object({
  groupId: z.string(),
  /** storm: held by a storm; rule: pending approvals of one rule; case: an analyst's own proposal. */
  kind: z.enum(['storm', 'rule', 'case', 'action']),
  count: z.number().int(),
  identities: z.number().int(),
  actionTypes: z.array(z.string()),
  oldestProposedAt: z.string(),
  actions: z.array(ActionView),
});
type ApprovalGroup = z.infer<typeof ApprovalGroup>;

/** Recorded on every ActionApproved; the reason of every ActionRejected (required to reject). */
const GroupDecisionBody = z.discriminatedUnion('decision', [
  z.strictObject({ decision: z.literal('approve'), comment: z.string().trim().max(2000).optional() }),
  z.strictObject({
    decision: z.literal('reject'),
    comment: z.string().max(2000).regex(/\S/, 'a reason is required to reject a group').trim(),
  }),
]);

const GroupParams = z.strictObject({ groupId: z.string().min(1).max(300) });

const GroupDecisionResult = z.object({
  groupId: z.string(),
  decision: z.enum(['approve', 'reject']),
  results: z.array(
    z.object({
      actionId: z.string(),
      /** approved (final), approved_first (a two-person action waits for a second approver), rejected, skipped, failed. */
      outcome: z.enum(['approved', 'approved_first', 'rejected', 'skipped', 'failed']),
      reason: z.string().optional(),
      events: z.array(z.object({ id: z.string(), type: z.string() })),
    }),
  ),
});

function groupOf(a: ActionView): string {
  return a.group ?? `action:${a.id}`;
}

function kindOf(groupId: string): ApprovalGroup['kind'] {
  const k = groupId.slice(0, groupId.indexOf(':'));
  return k === 'storm' || k === 'rule' || k === 'case' ? k : 'action';
}

/** Every action pending a human decision, oldest first. */
function pendingActions(projector: Projector): ActionView[] {
  const out: ActionView[] = [];
  let cursor: string | undefined;
  for (;;) {
    const p = listActions(projector, { status: 'proposed', limit: 500, ...(cursor ? { cursor } : {}) });
    for (const a of p.items) if (a.approvalMode !== 'auto' && a.approvalMode !== 'never') out.push(a);
    if (!p.nextCursor) break;
    cursor = p.nextCursor;
  }
  return out.reverse();
}

function pendingGroups(projector: Projector): ApprovalGroup[] {
  const byGroup = new Map<string, ActionView[]>();
  for (const a of pendingActions(projector)) {
    const g = groupOf(a);
    const list = byGroup.get(g) ?? [];
    list.push(a);
    byGroup.set(g, list);
  }
  return [...byGroup.entries()].map(([groupId, actions]) => ({
    groupId,
    kind: kindOf(groupId),
    count: actions.length,
    identities: new Set(actions.map((a) => a.identityKey)).size,
    actionTypes: [...new Set(actions.map((a) => a.type))].sort(),
    oldestProposedAt: actions[0]!.proposedAt,
    actions,
  }));
}

export const approvalGroupRoutes: ApiRoutes = async (app, { ctx }) => {
  const deps = ctx;
  const auth = ctx.auth;
  const E = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody };

  addRoute(app, auth, {
    method: 'GET',
    url: '/v1/approval-groups',
    roles: rolesFor('GET /v1/approval-groups'),
    summary: 'Pending approvals grouped by storm, rule or case: one decision each',
    tags: ['actions'],
    response: { 200: z.object({ items: z.array(ApprovalGroup) }), ...E },
    handler: async () => ({ items: pendingGroups(deps.projector) }),
  });

  addRoute(app, auth, {
    method: 'POST',
    url: '/v1/approval-groups/:groupId/decision',
    roles: rolesFor('POST /v1/approval-groups/:groupId/decision'),
    summary: 'Approve or reject every pending action of a group as the authenticated principal',
    description:
      "Records one ActionApproved or ActionRejected per pending action of the group, each bound to its own argsDigest and carrying `groupId`. Two-person actions get this principal's approval (outcome approved_first) and still need a second, distinct principal. Actions this principal may not approve (their own proposals, ones they already approved) are skipped and listed. Each action is decided on its own identity stream: an action that stopped being pending meanwhile is listed as failed while the others stand. To decide actions individually, use /v1/actions/{id}/approve and /reject.",
    tags: ['actions'],
    params: GroupParams,
    body: GroupDecisionBody,
    response: { 200: GroupDecisionResult, ...E, 404: ErrorBody, 413: ErrorBody },
    handler: async ({ params, body, principal }) => {
      const p = principal!;
      const group = pendingGroups(deps.projector).find((g) => g.groupId === params.groupId);
      if (!group) throw new NotFoundError('approval group with pending actions', params.groupId);
      const verb = body.decision === 'approve' ? 'approved' : 'rejected';
      const results: z.infer<typeof GroupDecisionResult>['results'] = [];
      for (const a of group.actions) {
        const why = deps.approvals.ineligible(a, p, verb);
        if (why) {
          results.push({ actionId: a.id, outcome: 'skipped', reason: why, events: [] });
          continue;
        }
        const opts = { groupId: group.groupId, settle: false };
        try {
          const { events } =
            body.decision === 'approve'
              ? await deps.approvals.approve(a.id, p, {
                  ...opts,
                  argsDigest: a.argsDigest,
                  comment: body.comment,
                })
              : await deps.approvals.reject(a.id, p, body.comment!, opts);
          const approved = events.find((e) => e.type === 'ActionApproved');
          const outcome =
            body.decision === 'reject'
              ? 'rejected'
              : approved?.type === 'ActionApproved' && !approved.data.final
                ? 'approved_first'
                : 'approved';
          results.push({ actionId: a.id, outcome, events: events.map((e) => ({ id: e.id, type: e.type })) });
        } catch (err) {
          // Decided meanwhile (expired, resolved, decided by someone else): that action only.
          if (err instanceof ApprovalError || err instanceof ConflictError || err instanceof NotFoundError) {
            results.push({
              actionId: a.id,
              outcome: 'failed',
              reason: (err as TourniquetError).message,
              events: [],
            });
            continue;
          }
          throw err;
        }
      }
      await deps.settle();
      return { groupId: group.groupId, decision: body.decision, results };
    },
  });
};
