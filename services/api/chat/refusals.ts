import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Counter } from 'prom-client';
import { metrics } from '../../../platform/metrics.ts';

/**
 * Refused chat interactions, for the auditor: a bad or missing signature, a stale timestamp, a Slack
 * user with no principal, and decisions the approval rules turned down (second approval by the
 * same person, no deciding role, not pending). One JSON line each in `chat-refusals.jsonl` (one
 * write per line, O_APPEND: lines never interleave), shown by GET /v1/chat/refusals.
 */

export type RefusalReason =
  | 'missing_headers'
  | 'stale_timestamp'
  | 'bad_signature'
  | 'malformed'
  | 'unmapped_user'
  | 'refused_by_rules';

export interface ChatRefusal {
  at: string;
  channel: 'slack';
  reason: RefusalReason;
  message: string;
  slackUser?: string;
  principal?: string;
  actionId?: string;
  decision?: 'approve' | 'reject';
  /** The rule's error code when the approval rules refused (e.g. APPROVAL_INVALID, FORBIDDEN). */
  code?: string;
  remoteAddress?: string;
}

const refusalsTotal = new Counter({
  name: 'tourniquet_chat_refusals_total',
  help: 'Chat interactions refused, by reason',
  labelNames: ['reason'],
  registers: [metrics],
});

export const refusalsPathOf = (dataDir: string): string => join(dataDir, 'chat-refusals.jsonl');

export class RefusalLog {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  record(r: ChatRefusal): void {
    appendFileSync(this.path, `${JSON.stringify(r)}\n`, { mode: 0o600 });
    refusalsTotal.inc({ reason: r.reason });
  }

  /** Newest last; at most `limit` (the most recent ones). */
  list(limit = 500): ChatRefusal[] {
    if (!existsSync(this.path)) return [];
    const lines = readFileSync(this.path, 'utf8').split('\n').filter(Boolean);
    return lines.slice(-limit).map((l) => JSON.parse(l) as ChatRefusal);
  }
}
