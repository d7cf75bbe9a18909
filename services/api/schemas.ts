import { z } from 'zod';
import { type FieldIssue, TourniquetError } from '../../platform/errors.ts';
import {
  IdentityRef,
  type NormalizedDetection,
  StrictNormalizedDetection,
  safeParseStrictDetection,
  Timestamp,
} from '../../schemas/detection.ts';
import { ACTION_TYPES, ActionType, EVENT_TYPES } from '../../schemas/events.ts';
import { canonicalText, JSON_LIMIT_ISSUE } from '../../schemas/text.ts';
import { ActionStatusFilter, CaseStatus, Verdict } from '../projector/views.ts';
import { fieldIssues } from './http.ts';

/** Request schemas of the HTTP API (strict: unknown fields are rejected by name). */

const MAX_DETECTIONS_PER_REQUEST = 5000;

const Id = z.string().min(1, 'must not be empty').max(512);
const Cursor = z.string().regex(/^\d{1,16}$/, 'must be the nextCursor of a previous page');
const Limit = z.coerce.number().int().min(1).max(1000).default(50);
/** Free text: up to 2000 characters as sent (code points, as the OpenAPI maxLength counts), not blank. */
const Text = canonicalText(1, 2000, { nul: true })
  .transform((s) => s.trim())
  .pipe(z.string().min(1, 'must not be empty'));

export const DetectionsBody = z.union([
  StrictNormalizedDetection,
  z.array(StrictNormalizedDetection).min(1).max(MAX_DETECTIONS_PER_REQUEST),
]);

/** One detection or a non-empty array; every failing path of every item is reported. */
export function parseDetections(
  data: unknown,
):
  | { success: true; data: NormalizedDetection[] }
  | { success: false; issues: FieldIssue[]; error?: TourniquetError } {
  if (Array.isArray(data)) {
    if (data.length === 0)
      return { success: false, issues: [{ path: '(root)', message: 'at least one detection' }] };
    if (data.length > MAX_DETECTIONS_PER_REQUEST) {
      return {
        success: false,
        issues: [{ path: '(root)', message: `at most ${MAX_DETECTIONS_PER_REQUEST} detections` }],
      };
    }
    // Every item is validated (and every failing path reported) before anything is appended.
    const out: NormalizedDetection[] = [];
    const issues: z.core.$ZodIssue[] = [];
    data.forEach((item, i) => {
      const r = safeParseStrictDetection(item);
      if (r.success) out.push(r.data);
      else for (const issue of r.error.issues) issues.push({ ...issue, path: [i, ...issue.path] });
    });
    return issues.length === 0 ? { success: true, data: out } : failure(issues);
  }
  if (data === null || typeof data !== 'object') {
    return {
      success: false,
      issues: [{ path: '(root)', message: 'expected a detection object or an array of detections' }],
    };
  }
  const r = safeParseStrictDetection(data);
  return r.success ? { success: true, data: [r.data] } : failure(r.error.issues);
}

/** Field issues; a `raw`/`evidence` over the size limit makes the answer a 413 naming the limit. */
function failure(issues: readonly z.core.$ZodIssue[]): {
  success: false;
  issues: FieldIssue[];
  error?: TourniquetError;
} {
  const fields = fieldIssues(issues);
  const paramsOf = (i: z.core.$ZodIssue) =>
    i.code === 'custom' ? (i.params as Record<string, unknown> | undefined) : undefined;
  const tooLarge = issues.find((i) => paramsOf(i)?.[JSON_LIMIT_ISSUE] === 'size');
  if (!tooLarge) return { success: false, issues: fields };
  const path = tooLarge.path.map(String).join('.');
  const limit = paramsOf(tooLarge)?.limit as number;
  return {
    success: false,
    issues: fields,
    error: new TourniquetError('PAYLOAD_TOO_LARGE', `${path} ${tooLarge.message}`, {
      status: 413,
      details: { in: 'body', limit, path, issues: fields },
    }),
  };
}

export const IdParams = z.strictObject({ id: Id });
export const IdentityParams = z.strictObject({ provider: Id.max(128), id: Id });

export const CasesQuery = z.strictObject({
  status: CaseStatus.optional(),
  identity: z.string().min(3).max(700).optional().describe('provider:id'),
  limit: Limit,
  cursor: Cursor.optional(),
});

export const ActionsQuery = z.strictObject({
  status: ActionStatusFilter.optional(),
  identity: z.string().min(3).max(700).optional().describe('provider:id'),
  case: Id.optional(),
  type: ActionType.optional(),
  limit: Limit,
  cursor: Cursor.optional(),
});

export const ApproveBody = z.strictObject({
  /** Binds the approval to the exact arguments the approver saw (the proposal's argsDigest). */
  argsDigest: z.string().min(1).max(200).optional(),
  comment: z.string().max(2000).optional(),
});
export const RejectBody = z.strictObject({ reason: Text });
export const VerdictBody = z.strictObject({ verdict: Verdict, comment: z.string().max(2000).optional() });
export const ProposeBody = z.strictObject({
  identity: IdentityRef,
  action: z.enum(ACTION_TYPES),
  args: z.record(z.string(), z.unknown()).optional(),
  reason: Text,
});
export const ReasonBody = z.strictObject({ reason: Text });

const auditFilterShape = {
  identity: z.string().min(3).max(700).optional().describe('provider:id'),
  case: Id.optional(),
  action: Id.optional(),
  actor: z.string().min(1).max(512).optional(),
  actionType: ActionType.optional(),
  rule: z.string().min(1).max(256).optional(),
  policyVersion: z.string().min(1).max(256).optional(),
  type: z.enum(EVENT_TYPES as [string, ...string[]]).optional(),
  from: Timestamp.optional().describe(
    'events at or after this time; a `from` after `to` is an empty window (no events, like SQL BETWEEN)',
  ),
  to: Timestamp.optional().describe('events at or before this time'),
};

export const AuditQuery = z.strictObject({
  ...auditFilterShape,
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: Cursor.optional(),
});

export const AuditExportQuery = z.strictObject({
  ...auditFilterShape,
  format: z.enum(['ndjson', 'csv']).default('ndjson'),
});

export const StreamQuery = z.strictObject({
  after: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .describe('replay from this position (exclusive); default: only new events'),
  types: z
    .string()
    .max(2000)
    .optional()
    .describe('comma-separated event types')
    .meta({ pattern: `^ *(${EVENT_TYPES.join('|')}) *(, *(${EVENT_TYPES.join('|')}) *)*$` })
    .refine((s) => !s || s.split(',').every((t) => (EVENT_TYPES as string[]).includes(t.trim())), {
      message: `comma-separated event types from: ${EVENT_TYPES.join(', ')}`,
    }),
});
