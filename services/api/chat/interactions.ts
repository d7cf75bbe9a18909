import type { Logger } from 'pino';
import { TourniquetError } from '../../../platform/errors.ts';
import type { SlackApi } from '../../../platform/slack.ts';
import type { ApprovalCommands } from '../approvals.ts';
import type { Principal, Role } from '../auth.ts';
import type { ChatRefusal, RefusalLog, RefusalReason } from './refusals.ts';
import { verifySlackSignature } from './slack-signature.ts';

/**
 * Slack interactions in (POST /v1/chat/slack/interactions): a button press on an approval message.
 * The request must carry Slack's v0 signature over the raw body, made within 5 minutes; the Slack
 * user must be in the configured table, which names the Tourniquet principal and roles it acts as;
 * the decision then goes through the same approval commands as the API (ApprovalCommands), so the
 * role, two-person and proposer rules are the API's. Every refusal is recorded for the auditor and,
 * when the request is genuine, told to the user in an ephemeral message.
 */

export interface SlackInteractionsOptions {
  /** Slack user id -> the principal and roles it acts as. */
  users: Readonly<Record<string, { principal: string; roles: readonly Role[] }>>;
  signingSecret: string;
  approvals: ApprovalCommands;
  refusals: RefusalLog;
  slack?: SlackApi | undefined;
  log?: Logger | undefined;
  nowSeconds?: () => number;
}

export interface InteractionAnswer {
  status: number;
  body: Record<string, unknown>;
}

interface BlockAction {
  user: string;
  channel: string | undefined;
  actionId: string;
  decision: 'approve' | 'reject';
  argsDigest: string | undefined;
}

function parseBlockAction(rawBody: string): BlockAction {
  const payload = new URLSearchParams(rawBody).get('payload');
  if (!payload) throw new Error('no payload field');
  const p = JSON.parse(payload) as {
    type?: string;
    user?: { id?: string };
    channel?: { id?: string };
    container?: { channel_id?: string };
    actions?: Array<{ action_id?: string; value?: string }>;
  };
  if (p.type !== 'block_actions') throw new Error(`unsupported interaction type ${p.type}`);
  const a = p.actions?.[0];
  const user = p.user?.id;
  if (!user || !a?.value || (a.action_id !== 'tq_approve' && a.action_id !== 'tq_reject'))
    throw new Error('not a Tourniquet approval button');
  const [actionId, argsDigest] = a.value.split('|');
  if (!actionId) throw new Error('the button names no action');
  return {
    user,
    channel: p.channel?.id ?? p.container?.channel_id,
    actionId,
    decision: a.action_id === 'tq_approve' ? 'approve' : 'reject',
    argsDigest: argsDigest || undefined,
  };
}

export class SlackInteractions {
  private readonly opts: SlackInteractionsOptions;

  constructor(opts: SlackInteractionsOptions) {
    this.opts = opts;
  }

  async handle(req: {
    headers: Record<string, string | string[] | undefined>;
    rawBody: string;
    remoteAddress?: string;
  }): Promise<InteractionAnswer> {
    const h = (n: string) => {
      const v = req.headers[n];
      return Array.isArray(v) ? v[0] : v;
    };
    const at = new Date().toISOString();
    const base = {
      at,
      channel: 'slack' as const,
      ...(req.remoteAddress ? { remoteAddress: req.remoteAddress } : {}),
    };
    const verdict = verifySlackSignature({
      secret: this.opts.signingSecret,
      timestamp: h('x-slack-request-timestamp'),
      signature: h('x-slack-signature'),
      rawBody: req.rawBody,
      nowSeconds: (this.opts.nowSeconds ?? (() => Date.now() / 1000))(),
    });
    if (!verdict.ok) {
      // not from Slack (or replayed): nothing in the body is trusted, not even the user named in it
      const message = {
        missing_headers: 'no Slack signature or timestamp',
        stale_timestamp: 'the Slack request timestamp is more than 5 minutes away from now',
        bad_signature: 'the Slack signature does not match',
      }[verdict.reason];
      this.refuse({ ...base, reason: verdict.reason, message });
      return { status: 401, body: { error: { code: 'UNAUTHORIZED', reason: verdict.reason, message } } };
    }
    let action: BlockAction;
    try {
      action = parseBlockAction(req.rawBody);
    } catch (err) {
      const message = `not an approval interaction: ${(err as Error).message}`;
      this.refuse({ ...base, reason: 'malformed', message });
      return { status: 400, body: { error: { code: 'VALIDATION_FAILED', message } } };
    }
    const who = { slackUser: action.user, actionId: action.actionId, decision: action.decision };
    const mapped = this.opts.users[action.user];
    if (!mapped) {
      const message = `Slack user ${action.user} is not mapped to a Tourniquet principal`;
      this.refuse({ ...base, ...who, reason: 'unmapped_user', message });
      await this.tell(action, `Tourniquet: you are not set up to decide approvals (${message}).`);
      return { status: 403, body: { error: { code: 'FORBIDDEN', reason: 'unmapped_user', message } } };
    }
    const principal: Principal = { id: mapped.principal, roles: [...mapped.roles], via: 'chat' };
    try {
      const { action: view } =
        action.decision === 'approve'
          ? await this.opts.approvals.approve(action.actionId, principal, {
              argsDigest: action.argsDigest,
              comment: 'approved in Slack',
            })
          : await this.opts.approvals.reject(
              action.actionId,
              principal,
              `rejected in Slack by ${principal.id}`,
            );
      this.opts.log?.info(
        { actionId: action.actionId, by: principal.id, decision: action.decision, status: view.status },
        'chat decision recorded',
      );
      return { status: 200, body: { ok: true, status: view.status, approvers: view.approvers } };
    } catch (err) {
      if (!(err instanceof TourniquetError) || err.status >= 500) throw err;
      this.refuse({
        ...base,
        ...who,
        principal: principal.id,
        reason: 'refused_by_rules',
        code: err.code,
        message: err.message,
      });
      await this.tell(action, `Tourniquet refused your ${action.decision}: ${err.message}`);
      return { status: err.status, body: { error: err.toJSON() } };
    }
  }

  private refuse(r: ChatRefusal & { reason: RefusalReason }): void {
    this.opts.refusals.record(r);
    this.opts.log?.warn(
      { reason: r.reason, slackUser: r.slackUser, actionId: r.actionId },
      'chat interaction refused',
    );
  }

  /** An ephemeral note to the user who pressed the button (best effort: the refusal is recorded either way). */
  private async tell(action: BlockAction, text: string): Promise<void> {
    if (!this.opts.slack || !action.channel) return;
    try {
      await this.opts.slack.postEphemeral({ channel: action.channel, user: action.user, text });
    } catch (err) {
      this.opts.log?.warn(
        { err, slackUser: action.user },
        'could not tell the Slack user why their decision was refused',
      );
    }
  }
}
