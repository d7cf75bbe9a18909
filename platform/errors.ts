/**
 * One module of typed errors. Every error Tourniquet raises on purpose is a TourniquetError with a
 * stable `code` (for logs, metrics and API bodies), an HTTP status where one applies, and a
 * `retriable` flag that retry policies (cockatiel) and consumers (Kafka offset handling) trust.
 */
export type ErrorCode =
  | 'VALIDATION_FAILED'
  | 'PAYLOAD_TOO_LARGE'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'CONFLICT'
  | 'DUPLICATE_CONFLICT'
  | 'WRONG_EXPECTED_REVISION'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'RATE_LIMITED'
  | 'APPROVAL_INVALID'
  | 'POLICY_INVALID'
  | 'HISTORY_INVALID'
  | 'PROVIDER_RETRIABLE'
  | 'PROVIDER_PERMANENT'
  | 'PROVIDER_VERIFY_FAILED'
  | 'ROLLBACK_REFUSED'
  | 'SIGNAL_DELIVERY_FAILED'
  | 'STORE_UNAVAILABLE'
  | 'CHAIN_BROKEN'
  | 'BUS_UNAVAILABLE'
  | 'CONFIG_INVALID'
  | 'DECODE_FAILED'
  | 'NORMALIZE_FAILED'
  | 'SIGN_IN_REFUSED'
  | 'IDP_UNAVAILABLE'
  | 'INTERNAL';

export interface FieldIssue {
  path: string;
  message: string;
}

export class TourniquetError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retriable?: boolean; status?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TourniquetError';
    this.code = code;
    this.retriable = opts.retriable ?? false;
    this.status = opts.status ?? 500;
    this.details = opts.details;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retriable: this.retriable, ...(this.details ?? {}) };
  }
}

export class NotFoundError extends TourniquetError {
  constructor(what: string, id: string) {
    super('NOT_FOUND', `${what} ${id} not found`, { status: 404, details: { what, id } });
    this.name = 'NotFoundError';
  }
}

export class ConflictError extends TourniquetError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('CONFLICT', message, { status: 409, ...(details ? { details } : {}) });
    this.name = 'ConflictError';
  }
}

/** Who a detection names, as a conflict reports it. */
export interface DetectionHolder {
  identity: { provider: string; id: string; type?: string };
  stream: string;
  eventId?: string;
}

/**
 * A detection whose `source` + `id` is already recorded for another identity or with other content:
 * the dedupe key is unique across the system, so the second copy is refused, never stored and never
 * dropped silently (the refusal is recorded as a DetectionConflicted event for the auditor).
 */
export class DuplicateConflictError extends TourniquetError {
  readonly source: string;
  readonly detectionId: string;
  readonly recorded: DetectionHolder;
  readonly refused: DetectionHolder;
  readonly reason: 'other_identity' | 'different_content';
  constructor(c: {
    source: string;
    id: string;
    recorded: DetectionHolder;
    refused: DetectionHolder;
    reason: 'other_identity' | 'different_content';
  }) {
    const who = (h: DetectionHolder) => `${h.identity.provider}:${h.identity.id}`;
    super(
      'DUPLICATE_CONFLICT',
      c.reason === 'other_identity'
        ? `detection ${c.source}:${c.id} is already recorded for identity ${who(c.recorded)}; this copy names ${who(c.refused)}`
        : `detection ${c.source}:${c.id} is already recorded for identity ${who(c.recorded)} with other content; this copy (same identity) differs`,
      {
        status: 409,
        details: { source: c.source, id: c.id, reason: c.reason, recorded: c.recorded, refused: c.refused },
      },
    );
    this.name = 'DuplicateConflictError';
    this.source = c.source;
    this.detectionId = c.id;
    this.recorded = c.recorded;
    this.refused = c.refused;
    this.reason = c.reason;
  }
}

/** Optimistic concurrency: the stream moved on since the writer read it. Retriable after a re-read. */
export class WrongExpectedRevisionError extends TourniquetError {
  readonly stream: string;
  readonly expected: unknown;
  readonly actual: number | 'no_stream';
  constructor(stream: string, expected: unknown, actual: number | 'no_stream') {
    super(
      'WRONG_EXPECTED_REVISION',
      `stream ${stream}: expected revision ${String(expected)}, actual ${String(actual)}`,
      { retriable: true, status: 409, details: { stream, expected, actual } },
    );
    this.name = 'WrongExpectedRevisionError';
    this.stream = stream;
    this.expected = expected;
    this.actual = actual;
  }
}

export class ApprovalError extends TourniquetError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('APPROVAL_INVALID', message, { status: 409, ...(details ? { details } : {}) });
    this.name = 'ApprovalError';
  }
}

export class ProviderError extends TourniquetError {
  /** How long the provider asked us to wait before trying again (429/503 Retry-After), in ms. */
  readonly retryAfterMs: number | undefined;
  constructor(
    message: string,
    opts: {
      retriable: boolean;
      provider: string;
      cause?: unknown;
      details?: Record<string, unknown>;
      retryAfterMs?: number;
    },
  ) {
    super(opts.retriable ? 'PROVIDER_RETRIABLE' : 'PROVIDER_PERMANENT', message, {
      retriable: opts.retriable,
      status: 502,
      details: {
        provider: opts.provider,
        ...(opts.retryAfterMs !== undefined ? { retryAfterMs: opts.retryAfterMs } : {}),
        ...(opts.details ?? {}),
      },
      cause: opts.cause,
    });
    this.name = 'ProviderError';
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/**
 * Retry-After (RFC 9110 §10.2.3) as milliseconds from `nowMs`: delay-seconds or an HTTP date;
 * undefined when absent or unreadable. A date in the past means "now" (0).
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * A rollback the provider refuses: the action cannot be undone, or undoing it would do harm (deleting
 * an AWS token-issue-time deny revives the stolen sessions). Permanent; the reason is recorded with
 * the failed rollback, so a refused step is never silently skipped.
 */
export class RollbackRefusedError extends TourniquetError {
  readonly reason: string;
  constructor(opts: { provider: string; action: string; reason: string }) {
    super('ROLLBACK_REFUSED', `${opts.provider}: ${opts.action} cannot be rolled back: ${opts.reason}`, {
      retriable: false,
      status: 409,
      details: { provider: opts.provider, action: opts.action, reason: opts.reason },
    });
    this.name = 'RollbackRefusedError';
    this.reason = opts.reason;
  }
}

export function isRetriable(err: unknown): boolean {
  return err instanceof TourniquetError && err.retriable;
}

/** Turns zod issues into the FieldIssue list every 400 carries. */
export function issuesFromZod(
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>,
): FieldIssue[] {
  return issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
}
