import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ConflictError, NotFoundError } from '../../../platform/errors.ts';
import type { NewEvent } from '../../../schemas/events.ts';
import { getAction, getCase } from '../../projector/queries.ts';
import { ActionView, AutomationView, CaseDetail } from '../../projector/views.ts';
import { type ApiContext, type ApiRoutes, COMMON_ERRORS } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { actingRole, DECIDE, rolesFor } from '../roles.ts';
import { ApproveBody, IdParams, ProposeBody, ReasonBody, RejectBody, VerdictBody } from '../schemas.ts';

const EventRef = z.object({ id: z.string(), type: z.string() });
const refs = (events: readonly NewEvent[]) => events.map((e) => ({ id: e.id, type: e.type }));

const CommandResult = z.object({ action: ActionView, events: z.array(EventRef) });

/**
 * Human commands: approve, reject, verdict, propose, pause and resume. Each goes through a gateway and
 * is answered once the views include what it appended.
 */
export const commandRoutes: ApiRoutes = async (app, { ctx }) => {
  addRoute(app, ctx.auth, {
    method: 'POST',
    url: '/v1/actions/:id/approve',
    roles: rolesFor('POST /v1/actions/:id/approve'),
    summary: 'Approve a pending action as the authenticated principal',
    description:
      'The approver is the authenticated principal, never a name from the body. `argsDigest` (optional) binds the approval to the exact arguments shown; a mismatch is 409. Two-person actions need two distinct principals. `comment` is recorded in the ActionApproved event.',
    tags: ['actions'],
    params: IdParams,
    body: ApproveBody,
    response: { 200: CommandResult, ...COMMON_ERRORS, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody },
    handler: async ({ params, body, principal }) => {
      const { action, events } = await ctx.approvals.approve(params.id, principal!, {
        argsDigest: body.argsDigest,
        comment: body.comment,
      });
      return { action, events: refs(events) };
    },
  });

  addRoute(app, ctx.auth, {
    method: 'POST',
    url: '/v1/actions/:id/reject',
    roles: rolesFor('POST /v1/actions/:id/reject'),
    summary: 'Reject a pending action',
    tags: ['actions'],
    params: IdParams,
    body: RejectBody,
    response: { 200: CommandResult, ...COMMON_ERRORS, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody },
    handler: async ({ params, body, principal }) => {
      const { action, events } = await ctx.approvals.reject(params.id, principal!, body.reason);
      return { action, events: refs(events) };
    },
  });

  addRoute(app, ctx.auth, {
    method: 'POST',
    url: '/v1/cases/:id/verdict',
    roles: rolesFor('POST /v1/cases/:id/verdict'),
    summary: 'Resolve a case: benign (its executed actions are rolled back) or malicious',
    tags: ['actions'],
    params: IdParams,
    body: VerdictBody,
    response: {
      200: z.object({ case: CaseDetail, events: z.array(EventRef) }),
      ...COMMON_ERRORS,
      404: ErrorBody,
      409: ErrorBody,
      413: ErrorBody,
    },
    handler: async ({ params, body, principal, request }) => {
      const p = principal!;
      const c = getCase(ctx.projector, params.id);
      if (!c) throw new NotFoundError('case', params.id);
      if (c.status !== 'open')
        throw new ConflictError(`case ${c.id} is already resolved (${c.verdict})`, { verdict: c.verdict });
      if (body.comment)
        request.log.info({ caseId: c.id, by: p.id, comment: body.comment }, 'verdict comment');
      const events = await ctx.submit({
        type: 'verdict',
        at: ctx.now().toISOString(),
        identity: c.identity,
        caseId: c.id,
        verdict: body.verdict,
        by: { id: p.id, role: actingRole(p, DECIDE) },
        ...(body.comment ? { comment: body.comment } : {}),
      });
      await ctx.settle();
      return { case: getCase(ctx.projector, c.id)!, events: refs(events) };
    },
  });

  addRoute(app, ctx.auth, {
    method: 'POST',
    url: '/v1/actions',
    roles: rolesFor('POST /v1/actions'),
    summary: 'Propose an action (analyst-initiated); it needs another principal to approve it',
    tags: ['actions'],
    body: ProposeBody,
    response: { 201: CommandResult, ...COMMON_ERRORS, 409: ErrorBody, 413: ErrorBody },
    handler: async ({ body, principal, reply }) => {
      const p = principal!;
      const events = await ctx.decider.submit({
        type: 'propose',
        at: ctx.now().toISOString(),
        identity: body.identity,
        action: body.action,
        ...(body.args ? { args: body.args } : {}),
        by: { id: p.id, role: actingRole(p, DECIDE) },
        reason: body.reason,
      });
      const proposed = events.events.find((e) => e.type === 'ActionProposed');
      if (proposed?.type !== 'ActionProposed') throw new ConflictError('the decider proposed no action');
      await ctx.settle();
      reply.status(201);
      return { action: getAction(ctx.projector, proposed.data.actionId)!, events: refs(events.events) };
    },
  });

  automationRoutes(app, ctx);
};

/** The kill switch: pause and resume automation. */
function automationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const verb of ['pause', 'resume'] as const) {
    addRoute(app, ctx.auth, {
      method: 'POST',
      url: `/v1/automation/${verb}`,
      roles: rolesFor(`POST /v1/automation/${verb}`),
      summary:
        verb === 'pause' ? 'Pause automation: nothing is auto-approved until resumed' : 'Resume automation',
      tags: ['control'],
      body: ReasonBody,
      response: {
        200: z.object({ automation: AutomationView, event: EventRef }),
        ...COMMON_ERRORS,
        413: ErrorBody,
      },
      handler: async ({ body, principal }) => {
        const event = await ctx.automation[verb](principal!.id, body.reason);
        await ctx.settle();
        return { automation: ctx.projector.automation(), event: { id: event.id, type: event.type } };
      },
    });
  }
}
