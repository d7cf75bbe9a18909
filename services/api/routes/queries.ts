import { NotFoundError } from '../../../platform/errors.ts';
import { getAction, getCase, getIdentity, listActions, listCases } from '../../projector/queries.ts';
import {
  ActionView,
  AutomationView,
  CaseDetail,
  CaseView,
  IdentityView,
  page,
} from '../../projector/views.ts';
import { type ApiRoutes, COMMON_ERRORS } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';
import { ActionsQuery, CasesQuery, IdentityParams, IdParams } from '../schemas.ts';

/** Reads from the views: cases, identities, actions and the kill-switch state. */
export const queryRoutes: ApiRoutes = async (app, { ctx }) => {
  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/cases',
    roles: rolesFor('GET /v1/cases'),
    summary: 'List cases, newest first',
    tags: ['cases'],
    query: CasesQuery,
    response: { 200: page(CaseView), ...COMMON_ERRORS },
    handler: async ({ query }) =>
      listCases(ctx.projector, {
        limit: query.limit,
        ...(query.status ? { status: query.status } : {}),
        ...(query.identity ? { identity: query.identity } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      }),
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/cases/:id',
    roles: rolesFor('GET /v1/cases/:id'),
    summary: 'One case: detections, actions, timeline',
    tags: ['cases'],
    params: IdParams,
    response: { 200: CaseDetail, ...COMMON_ERRORS, 404: ErrorBody },
    handler: async ({ params }) => {
      const c = getCase(ctx.projector, params.id);
      if (!c) throw new NotFoundError('case', params.id);
      return c;
    },
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/identities/:provider/:id',
    roles: rolesFor('GET /v1/identities/:provider/:id'),
    summary: 'Identity state: containment in effect, pending approvals, residue after rollback',
    description: 'URL-encode the id (e.g. `/` as `%2F`).',
    tags: ['cases'],
    params: IdentityParams,
    response: { 200: IdentityView, ...COMMON_ERRORS, 404: ErrorBody },
    handler: async ({ params }) => {
      const v = getIdentity(ctx.projector, params.provider, params.id);
      if (!v) throw new NotFoundError('identity', `${params.provider}:${params.id}`);
      return v;
    },
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/actions',
    roles: rolesFor('GET /v1/actions'),
    summary: 'List actions, newest first (the approval queue is `?status=proposed`)',
    description:
      '`status=verified` lists executed actions whose verification held (their status is `executed`, `verified: true`).',
    tags: ['actions'],
    query: ActionsQuery,
    response: { 200: page(ActionView), ...COMMON_ERRORS },
    handler: async ({ query }) =>
      listActions(ctx.projector, {
        limit: query.limit,
        ...(query.status ? { status: query.status } : {}),
        ...(query.identity ? { identity: query.identity } : {}),
        ...(query.case ? { caseId: query.case } : {}),
        ...(query.type ? { type: query.type } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      }),
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/actions/:id',
    roles: rolesFor('GET /v1/actions/:id'),
    summary: 'One action',
    tags: ['actions'],
    params: IdParams,
    response: { 200: ActionView, ...COMMON_ERRORS, 404: ErrorBody },
    handler: async ({ params }) => {
      const a = getAction(ctx.projector, params.id);
      if (!a) throw new NotFoundError('action', params.id);
      return a;
    },
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/automation',
    roles: rolesFor('GET /v1/automation'),
    summary: 'Kill switch state and the active policy',
    tags: ['control'],
    response: { 200: AutomationView, 401: ErrorBody, 403: ErrorBody },
    handler: async () => ctx.projector.automation(),
  });
};
