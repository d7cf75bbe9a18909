import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EventStore } from '../../../platform/eventstore/port.ts';
import { EVENT_TYPES, type EventType } from '../../../schemas/events.ts';
import { explainAction } from '../../projector/explain.ts';
import type { Projector } from '../../projector/projector.ts';
import {
  type AuditFilter,
  getAction,
  getCase,
  getIdentity,
  listActions,
  listCases,
  queryAuditEvents,
} from '../../projector/queries.ts';
import { type AuditSearch, auditBody } from './audit.ts';
import { automationBody } from './automation.ts';
import { CASE_SORTS, type CaseListQuery, caseBody, casesBody, filterAndSort, triageRows } from './cases.ts';
import {
  budgetsFrom,
  catalogueEntryOf,
  detectionsOfCases,
  evidenceOf,
  guardTripsSince,
  pendingByCase,
  pendingCount,
} from './data.ts';
import { type Html, html } from './html.ts';
import { identityBody } from './identity.ts';
import { barePage, type PageId, page, type ShellContext } from './layout.ts';
import { approvalCard, approvalDetail, FIRST_CARDS, queueBody, queueOrder } from './queue.ts';
import { CONSOLE_ROLES, consoleSession } from './session.ts';

export interface PageDeps {
  store: EventStore;
  projector: Projector;
  now: () => Date;
}

/** Console pages do not run inline script or load anything from elsewhere, and are never framed. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

function secureHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .header('cache-control', 'no-store');
}

function sendHtml(reply: FastifyReply, body: Html, status = 200) {
  return secureHeaders(reply)
    .status(status)
    .header('content-type', 'text/html; charset=utf-8')
    .send(body.value);
}

type Handler<Q, P> = (ctx: {
  request: FastifyRequest<{ Querystring: Q; Params: P }>;
  reply: FastifyReply;
  shell: ShellContext;
  now: number;
}) => Promise<{ id: PageId; title: string; body: Html } | Html | undefined>;

type Route = <Q = Record<string, string | undefined>, P = Record<string, string>>(
  url: string,
  handler: Handler<Q, P>,
  kind?: 'page' | 'fragment',
) => void;

/**
 * Registers the console's pages and fragments. A page needs a console session (the browser is
 * sent to /login otherwise) and one of the console roles; it reads the same views as the JSON API.
 */
export function registerPages(app: FastifyInstance, deps: PageDeps): void {
  const route = consoleRoute(app, deps);
  registerQueuePages(route, deps);
  registerCasePages(route, deps);
  registerAutomationAndAudit(route, deps);
  registerActionFragments(route, deps);

  app.get('/console/summary', async (request, reply) => {
    if (!consoleSession(request))
      return reply.status(401).send({ error: { code: 'UNAUTHORIZED', message: 'sign in again' } });
    await caughtUp(deps.projector, request);
    reply.header('cache-control', 'no-store');
    return { pending: pendingCount(deps.projector), automation: deps.projector.automation() };
  });
}

/** A GET route that checks the console session and role, then renders the handler's page or fragment. */
function consoleRoute(app: FastifyInstance, deps: PageDeps): Route {
  const { projector } = deps;
  return <Q, P>(url: string, handler: Handler<Q, P>, kind: 'page' | 'fragment' = 'page') => {
    app.get(url, async (request: FastifyRequest<{ Querystring: Q; Params: P }>, reply) => {
      const session = consoleSession(request);
      if (!session) {
        if (kind === 'fragment')
          return reply.status(401).send({ error: { code: 'UNAUTHORIZED', message: 'sign in again' } });
        return reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
      }
      await caughtUp(projector, request);
      const principal = session.principal;
      if (!principal.roles.some((r) => CONSOLE_ROLES.includes(r)))
        return sendHtml(
          reply,
          barePage('Not allowed', html`<p>${principal.id} may not use the console.</p>`),
          403,
        );
      const shell: ShellContext = {
        position: projector.position,
        principal,
        csrfToken: session.csrfToken,
        automation: projector.automation(),
        pendingCount: pendingCount(projector),
      };
      const out = await handler({ request, reply, shell, now: deps.now().getTime() });
      if (out === undefined || reply.sent) return reply;
      if ('value' in out) return sendHtml(reply, out);
      return sendHtml(reply, page({ ...out, ctx: shell }));
    });
  };
}

/**
 * Live updates name the event position they react to (`?after=`): the page is rendered once the
 * views include it, so a reload never shows the state from just before the event.
 */
async function caughtUp(projector: Projector, request: FastifyRequest): Promise<void> {
  const after = Number((request.query as { after?: string } | undefined)?.after);
  if (!Number.isSafeInteger(after) || after <= 0) return;
  try {
    await projector.waitFor(after, 2_000);
  } catch (err) {
    request.log.warn({ err, after }, 'console rendered before the views reached the live event');
  }
}

function notFound(reply: FastifyReply, what: string) {
  reply.status(404);
  return { id: 'cases' as const, title: 'Not found', body: html`<p>${what} was not found.</p>` };
}

/** The approval queue and the rest of its cards. */
function registerQueuePages(route: Route, { projector }: PageDeps): void {
  route('/', async ({ shell, now }) => {
    const q = listActions(projector, { status: 'proposed', limit: 1000 });
    // oldest first: the ones closest to expiry are answered first
    const groups = queueOrder(q.items.reverse());
    const firstCases = groups
      .flat()
      .slice(0, FIRST_CARDS)
      .map((a) => a.caseId);
    return {
      id: 'queue',
      title: 'Approvals',
      body: queueBody(
        groups,
        detectionsOfCases(projector, firstCases),
        shell.principal,
        now,
        q.nextCursor !== null,
      ),
    };
  });

  // the rest of the queue, in the order the page lists (actions no longer pending are left out)
  route<{ ids?: string }>(
    '/console/queue/cards',
    async ({ request, shell, now }) => {
      const ids = (request.query.ids ?? '')
        .split(/[\s,]+/)
        .filter(Boolean)
        .slice(0, 500);
      const actions = ids.flatMap((id) => {
        const a = getAction(projector, id);
        return a?.status === 'proposed' ? [a] : [];
      });
      const detections = detectionsOfCases(
        projector,
        actions.map((a) => a.caseId),
      );
      return html`${actions.map((a) =>
        approvalCard(
          a,
          detections.get(a.caseId)?.filter((d) => a.detectionIds.includes(d.id)) ?? [],
          shell.principal,
          now,
        ),
      )}`;
    },
    'fragment',
  );
}

/** The case list, a case, and an identity. */
function registerCasePages(route: Route, { projector, store }: PageDeps): void {
  route<{ status?: string; sort?: string; severity?: string; q?: string }>(
    '/cases',
    async ({ request, now }) => {
      const rq = request.query;
      const q: CaseListQuery = {
        status: rq.status === 'resolved' || rq.status === 'all' ? rq.status : 'open',
        sort: (CASE_SORTS as readonly string[]).includes(rq.sort ?? '')
          ? (rq.sort as CaseListQuery['sort'])
          : 'severity',
        severity: rq.severity ?? '',
        q: rq.q ?? '',
      };
      const cases = listCases(projector, {
        limit: 1000,
        ...(q.status !== 'all' ? { status: q.status } : {}),
      }).items;
      const rows = triageRows(
        cases,
        detectionsOfCases(
          projector,
          cases.map((c) => c.id),
        ),
        pendingByCase(projector),
      );
      return { id: 'cases', title: 'Cases', body: casesBody(filterAndSort(rows, q), q, now) };
    },
  );

  route<unknown, { id: string }>('/cases/:id', async ({ request, reply, shell, now }) => {
    const c = getCase(projector, request.params.id);
    if (!c) return notFound(reply, `Case ${request.params.id}`);
    return { id: 'case', title: `Case ${c.id}`, body: caseBody(c, shell.principal, shell.automation, now) };
  });

  route<unknown, { provider: string; id: string }>(
    '/identities/:provider/:id',
    async ({ request, reply, now }) => {
      const { provider, id } = request.params;
      const v = getIdentity(projector, provider, id);
      if (!v) return notFound(reply, `Identity ${provider}:${id}`);
      const entry = await catalogueEntryOf(projector, store, v.identityKey);
      return { id: 'identity', title: `Identity ${provider}:${id}`, body: identityBody(v, entry, now) };
    },
  );
}

/** The automation page and the audit search. */
function registerAutomationAndAudit(route: Route, { projector, store }: PageDeps): void {
  route('/automation', async ({ shell, now }) => {
    const from = new Date(now - 24 * 3600_000).toISOString();
    const recent = listActions(projector, { limit: 1000 }).items;
    const trips = await guardTripsSince(projector, store, from);
    return {
      id: 'automation',
      title: 'Automation',
      body: automationBody(shell.automation, budgetsFrom(recent, from), trips, shell.principal, now),
    };
  });

  route<AuditSearch>('/audit', async ({ request, shell }) => {
    const { q, filter, error } = auditSearchOf(request.query);
    const result = error ? { error } : await queryAuditEvents(projector, store, filter, { limit: 200 });
    return { id: 'audit', title: 'Audit', body: auditBody(q, result, EVENT_TYPES, shell.principal) };
  });
}

/** Fragments for live updates: one approval card, and an action's evidence and explanation. */
function registerActionFragments(route: Route, { projector, store }: PageDeps): void {
  route<unknown, { id: string }>(
    '/console/actions/:id/card',
    async ({ request, reply, shell, now }) => {
      const a = getAction(projector, request.params.id);
      if (a?.status !== 'proposed') {
        // no longer in the queue: an empty answer, and the page removes the card and says why
        reply.header('x-action-status', a ? a.status : 'unknown');
        return html``;
      }
      const ds = (detectionsOfCases(projector, [a.caseId]).get(a.caseId) ?? []).filter((d) =>
        a.detectionIds.includes(d.id),
      );
      return approvalCard(a, ds, shell.principal, now);
    },
    'fragment',
  );

  route<unknown, { id: string }>(
    '/console/actions/:id/detail',
    async ({ request, reply }) => {
      const a = getAction(projector, request.params.id);
      if (!a) {
        reply.status(404);
        return html`<p class="muted">Action not found.</p>`;
      }
      const [evidence, explanation] = await Promise.all([
        evidenceOf(projector, store, a),
        explainAction(store, { identity: a.identity }, a.id),
      ]);
      return approvalDetail(evidence, explanation);
    },
    'fragment',
  );
}

/** The audit search as typed into the form, and the store filter it means (or what is wrong with it). */
function auditSearchOf(query: AuditSearch | undefined): {
  q: AuditSearch;
  filter: AuditFilter;
  error: string | undefined;
} {
  const q: AuditSearch = {};
  for (const [k, v] of Object.entries(query ?? {}))
    if (typeof v === 'string' && v.trim() && ['identity', 'case', 'actor', 'type', 'from', 'to'].includes(k))
      q[k as keyof AuditSearch] = v.trim();
  const filter: AuditFilter = {};
  let error: string | undefined;
  if (q.identity) filter.identity = q.identity;
  if (q.case) filter.caseId = q.case;
  if (q.actor) filter.actor = q.actor;
  if (q.type) {
    if ((EVENT_TYPES as readonly string[]).includes(q.type)) filter.type = q.type as EventType;
    else error = `type: unknown event type ${q.type}`;
  }
  for (const f of ['from', 'to'] as const) {
    if (!q[f]) continue;
    if (Number.isNaN(Date.parse(q[f]!))) error = `${f}: not an RFC 3339 time (e.g. 2026-12-06T00:00:00Z)`;
    else filter[f] = new Date(q[f]!).toISOString();
  }
  return { q, filter, error };
}
