import { Readable } from 'node:stream';
import { z } from 'zod';
import { NotFoundError, TourniquetError } from '../../../platform/errors.ts';
import { CHAIN_PROBLEMS } from '../../../platform/eventstore/port.ts';
import { readRawRecordText } from '../../../platform/eventstore/raw-records.ts';
import type { EventType } from '../../../schemas/events.ts';
import { Explanation, explainAction } from '../../projector/explain.ts';
import { type AuditFilter, getAction, queryAuditEvents, streamAuditEvents } from '../../projector/queries.ts';
import { AuditEvent, page } from '../../projector/views.ts';
import { type ApiRoutes, COMMON_ERRORS } from '../context.ts';
import { addRoute, ErrorBody } from '../http.ts';
import { rolesFor } from '../roles.ts';
import { AuditExportQuery, AuditQuery, IdParams } from '../schemas.ts';

function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  // Spreadsheet formula injection: a cell must not start with a formula character.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const CSV_COLUMNS = [
  'position',
  'id',
  'type',
  'stream',
  'revision',
  'occurredAt',
  'recordedAt',
  'identity',
  'caseId',
  'actionId',
  'actor',
  'ruleId',
  'policyVersion',
  'actionType',
  'causationId',
  'correlationId',
  'missingFromStore',
  'data',
] as const;

function csvRow(e: AuditEvent): string {
  const v: Record<(typeof CSV_COLUMNS)[number], unknown> = {
    position: e.position,
    id: e.id,
    type: e.type,
    stream: e.stream,
    revision: e.revision,
    occurredAt: e.occurredAt,
    recordedAt: e.recordedAt,
    identity: e.index.identity,
    caseId: e.index.caseId,
    actionId: e.index.actionId,
    actor: e.index.actor,
    ruleId: e.index.ruleId,
    policyVersion: e.index.policyVersion,
    actionType: e.index.actionType,
    causationId: e.causationId,
    correlationId: e.correlationId,
    missingFromStore: e.missingFromStore,
    data: e.data,
  };
  return `${CSV_COLUMNS.map((c) => csvCell(v[c])).join(',')}\r\n`;
}

function auditFilter(q: z.output<typeof AuditExportQuery> | z.output<typeof AuditQuery>): AuditFilter {
  const f: AuditFilter = {};
  if (q.identity) f.identity = q.identity;
  if (q.case) f.caseId = q.case;
  if (q.action) f.actionId = q.action;
  if (q.actor) f.actor = q.actor;
  if (q.actionType) f.actionType = q.actionType;
  if (q.rule) f.ruleId = q.rule;
  if (q.policyVersion) f.policyVersion = q.policyVersion;
  if (q.type) f.type = q.type as EventType;
  if (q.from) f.from = q.from;
  if (q.to) f.to = q.to;
  return f;
}

const RawRecordParams = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in lowercase hex (64 characters)'),
});

/** Audit: why an action happened, event queries and exports, tamper evidence. */
const ChainBreakBody = z.object({
  position: z.number().int(),
  id: z.string().nullable(),
  problem: z.enum(CHAIN_PROBLEMS),
  detail: z.string(),
  stream: z.string().optional(),
  revision: z.number().int().optional(),
});

export const auditRoutes: ApiRoutes = async (app, { ctx }) => {
  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/actions/:id/explain',
    roles: rolesFor('GET /v1/actions/:id/explain'),
    summary:
      'Why this action happened: detections → rule and policy → guards → approvals → execution → verification → rollback and residue',
    description: 'Built from the event streams alone (identity and action streams), not from the views.',
    tags: ['audit'],
    params: IdParams,
    response: { 200: Explanation, ...COMMON_ERRORS, 404: ErrorBody },
    handler: async ({ params }) => {
      const a = getAction(ctx.projector, params.id);
      if (!a) throw new NotFoundError('action', params.id);
      const x = await explainAction(ctx.store, { identity: a.identity }, a.id);
      if (!x) throw new NotFoundError('action proposal in the event store', params.id);
      return x;
    },
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/audit/events',
    roles: rolesFor('GET /v1/audit/events'),
    summary:
      'Query recorded events by identity, case, action, actor, action type, rule, policy version, type and time',
    description:
      'In global order; payloads are read from the event store. `from`/`to` bound occurredAt, inclusive.',
    tags: ['audit'],
    query: AuditQuery,
    response: { 200: page(AuditEvent), ...COMMON_ERRORS },
    handler: async ({ query }) =>
      queryAuditEvents(ctx.projector, ctx.store, auditFilter(query), {
        limit: query.limit,
        ...(query.cursor ? { cursor: query.cursor } : {}),
      }),
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/audit/export',
    roles: rolesFor('GET /v1/audit/export'),
    summary: 'Export matching events as NDJSON (one AuditEvent per line) or CSV, streamed',
    tags: ['audit'],
    query: AuditExportQuery,
    produces: ['application/x-ndjson', 'text/csv'],
    response: {
      200: { type: 'string', description: 'NDJSON (application/x-ndjson) or CSV (text/csv)' },
      ...COMMON_ERRORS,
    },
    handler: async ({ query, reply }) => {
      const filter = auditFilter(query);
      const csv = query.format === 'csv';
      async function* lines(): AsyncGenerator<string> {
        if (csv) yield `${CSV_COLUMNS.join(',')}\r\n`;
        for await (const e of streamAuditEvents(ctx.projector, ctx.store, filter))
          yield csv ? csvRow(e) : `${JSON.stringify(e)}\n`;
      }
      reply
        .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
        .header('content-disposition', `attachment; filename="tourniquet-audit.${csv ? 'csv' : 'ndjson'}"`);
      return reply.send(Readable.from(lines()));
    },
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/audit/raw-records/:sha256',
    roles: rolesFor('GET /v1/audit/raw-records/:sha256'),
    summary: "A detection's raw vendor record, by the SHA-256 its DetectionReceived event names",
    description:
      'A recorded DetectionReceived carries `rawRecord: {sha256, bytes}` instead of the vendor record; the store keeps the record once, content-addressed, and checks it against its digest as it is read (a record altered since is refused with CHAIN_BROKEN). `record` is the JSON as received.',
    tags: ['audit'],
    params: RawRecordParams,
    response: {
      200: z.object({ sha256: z.string(), bytes: z.number().int(), record: z.unknown() }),
      ...COMMON_ERRORS,
      404: ErrorBody,
    },
    handler: async ({ params }) => {
      const text = await readRawRecordText(ctx.store, params.sha256);
      return { sha256: params.sha256, bytes: Buffer.byteLength(text), record: JSON.parse(text) as unknown };
    },
  });

  addRoute(app, ctx.auth, {
    method: 'GET',
    url: '/v1/audit/verify',
    roles: rolesFor('GET /v1/audit/verify'),
    summary:
      'Verify the hash chain over every recorded event; reports every altered, missing or reordered one, and checks the head this server last recorded',
    tags: ['audit'],
    query: z.strictObject({}),
    response: {
      200: z.object({
        ok: z.boolean(),
        checked: z.number().int(),
        head: z.object({ position: z.number().int(), hash: z.string() }).nullable(),
        firstBad: ChainBreakBody.optional(),
        problems: z.array(ChainBreakBody),
        problemCount: z.number().int(),
        anchors: z.object({ checked: z.number().int(), matched: z.number().int() }),
      }),
      401: ErrorBody,
      403: ErrorBody,
      501: ErrorBody,
    },
    handler: async () => {
      if (!ctx.store.verifyChain) {
        throw new TourniquetError(
          'INTERNAL',
          `hash-chain verification needs the SQLite event store (this is ${ctx.store.name})`,
          { status: 501 },
        );
      }
      const known = ctx.integrity?.().head;
      return ctx.store.verifyChain({
        anchors: known ? [{ ...known, source: 'the head this server last recorded' }] : [],
      });
    },
  });
};
