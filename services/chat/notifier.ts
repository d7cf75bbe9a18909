import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import { isRetriable, TourniquetError } from '../../platform/errors.ts';
import type { EventStore, Subscription } from '../../platform/eventstore/port.ts';
import { metrics } from '../../platform/metrics.ts';
import type { SlackApi } from '../../platform/slack.ts';
import { actionStream, type EventType, identityStream, type RecordedEvent } from '../../schemas/events.ts';
import {
  type ApprovalFacts,
  foldAction,
  type Outcome,
  slackBlocks,
  summaryText,
  webhookPayload,
} from './facts.ts';
import { webhookSignature } from './webhook-signature.ts';

/**
 * Chat approvals out: follows the event store and, for every approval request of an announced mode
 * (analyst and two-person by default), posts the facts with Approve / Reject buttons to Slack
 * (chat.postMessage) and to the signed webhook; when the action is approved, rejected, expires,
 * runs or fails, it updates the Slack message (chat.update) and tells the webhook.
 *
 * In event order, from its checkpoint in the store (`chat`), at least once: a failure a retry can
 * fix (network, 5xx, rate limit) is retried with backoff until it succeeds; one that cannot (e.g.
 * Slack says channel_not_found) is logged as an error, counted, and the queue moves on, so one bad
 * message never holds back every later approval. Which Slack message belongs to which action is
 * kept in `chat-messages.jsonl` (so a restart updates the messages it posted before).
 */

const TYPES: readonly EventType[] = [
  'ActionProposed',
  'ActionApproved',
  'ActionRejected',
  'ActionExpired',
  'ActionExecuted',
  'ActionFailed',
];

const CHAT_CHECKPOINT = 'chat';
const messagesPathOf = (dataDir: string): string => join(dataDir, 'chat-messages.jsonl');

const chatTotal = new Counter({
  name: 'tourniquet_chat_messages_total',
  help: 'Chat approval messages by target (slack, webhook), kind (request, update) and outcome (sent, failed)',
  labelNames: ['target', 'kind', 'outcome'],
  registers: [metrics],
});

interface MessageRef {
  actionId: string;
  slack: { channel: string; ts: string } | null;
}

/** What the notifier needs of the chat configuration (secrets already read). */
interface NotifierConfig {
  /** Approval modes announced (e.g. analyst, two-person). */
  modes: readonly string[];
  consoleUrl?: string | undefined;
  slack?: { channel: string } | undefined;
  webhook?: { url: string; secret: string; timeoutMs: number } | undefined;
}

export interface ChatNotifierOptions {
  store: EventStore;
  config: NotifierConfig;
  slack?: SlackApi | undefined;
  dataDir: string;
  log?: Logger | undefined;
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  fetch?: typeof fetch;
}

export class ChatNotifier {
  private readonly opts: ChatNotifierOptions;
  private readonly messages = new Map<string, MessageRef>();
  private sub: Subscription | undefined;
  private abort = new AbortController();

  constructor(opts: ChatNotifierOptions) {
    this.opts = opts;
    const path = messagesPathOf(opts.dataDir);
    if (existsSync(path))
      for (const line of readFileSync(path, 'utf8').split('\n').filter(Boolean)) {
        const ref = JSON.parse(line) as MessageRef;
        this.messages.set(ref.actionId, ref);
      }
  }

  /** The Slack message posted for an action, if any. */
  messageOf(actionId: string): MessageRef['slack'] {
    return this.messages.get(actionId)?.slack ?? null;
  }

  async start(onStop?: (err: unknown) => void): Promise<void> {
    if (this.sub) return;
    this.abort = new AbortController();
    const after = (await this.opts.store.getCheckpoint(CHAT_CHECKPOINT)) ?? 0;
    this.sub = this.opts.store.subscribeAll(
      {
        after,
        types: TYPES,
        onError: (err) => {
          if (this.abort.signal.aborted) return;
          this.sub = undefined;
          this.opts.log?.error({ err }, 'chat approvals stopped');
          onStop?.(err);
        },
      },
      async (event) => {
        await this.handle(event);
        await this.opts.store.saveCheckpoint(CHAT_CHECKPOINT, event.position);
      },
    );
  }

  async stop(): Promise<void> {
    this.abort.abort();
    const sub = this.sub;
    this.sub = undefined;
    await sub?.stop();
  }

  private async handle(event: RecordedEvent): Promise<void> {
    const data = event.data as { actionId?: string; identity?: { provider: string; id: string } };
    const actionId = data.actionId;
    if (!actionId || !data.identity) return;
    const announced = this.messages.has(actionId);
    if (event.type !== 'ActionProposed' && !announced) return; // never announced (auto, never, …)
    if (event.type === 'ActionProposed' && announced) return; // announced before a restart
    const state = await this.actionAsOf(actionId, data.identity, event.position);
    if (!state) return;
    if (event.type === 'ActionProposed') {
      if (!this.opts.config.modes.includes(state.facts.approvalMode)) return;
      await this.announce(state.facts, state.outcome);
    } else {
      await this.update(state.facts, state.outcome);
    }
  }

  /**
   * The action as of this event: its identity's stream (proposal, detections, decisions) and its own
   * stream (execution), in global order, up to the event being handled, so that a replay after a
   * restart shows each message as it was then.
   */
  private async actionAsOf(
    actionId: string,
    identity: { provider: string; id: string },
    position: number,
  ): Promise<{ facts: ApprovalFacts; outcome: Outcome } | undefined> {
    const [byIdentity, byAction] = await Promise.all([
      this.opts.store.readStream(identityStream(identity)),
      this.opts.store.readStream(actionStream(actionId)),
    ]);
    const events = [...byIdentity, ...byAction]
      .filter((e) => e.position <= position)
      .sort((a, b) => a.position - b.position);
    return foldAction(events, actionId, this.opts.config.consoleUrl);
  }

  private async announce(facts: ApprovalFacts, outcome: Outcome): Promise<void> {
    let slack: MessageRef['slack'] = null;
    const s = this.opts.config.slack;
    if (s && this.opts.slack) {
      const api = this.opts.slack;
      slack =
        (await this.attempt('slack', 'request', () =>
          api.postMessage({
            channel: s.channel,
            text: summaryText(facts),
            blocks: slackBlocks(facts, outcome),
          }),
        )) ?? null;
    }
    await this.attempt('webhook', 'request', () =>
      this.post(webhookPayload(facts, outcome, 'approval.requested')),
    );
    const ref: MessageRef = { actionId: facts.actionId, slack };
    this.messages.set(ref.actionId, ref);
    appendFileSync(messagesPathOf(this.opts.dataDir), `${JSON.stringify(ref)}\n`, { mode: 0o600 });
  }

  private async update(facts: ApprovalFacts, outcome: Outcome): Promise<void> {
    const ref = this.messages.get(facts.actionId)?.slack;
    if (ref && this.opts.slack) {
      const api = this.opts.slack;
      await this.attempt('slack', 'update', () =>
        api.update({
          channel: ref.channel,
          ts: ref.ts,
          text: summaryText(facts),
          blocks: slackBlocks(facts, outcome),
        }),
      );
    }
    await this.attempt('webhook', 'update', () =>
      this.post(webhookPayload(facts, outcome, 'approval.updated')),
    );
  }

  /** Posts the signed webhook, when one is configured. */
  private async post(payload: Record<string, unknown>): Promise<void> {
    const w = this.opts.config.webhook;
    if (!w) return;
    const body = JSON.stringify(payload);
    const timestamp = String(Math.floor(Date.now() / 1000));
    let res: Response;
    try {
      res = await (this.opts.fetch ?? fetch)(w.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-tourniquet-event': String(payload.event),
          'x-tourniquet-timestamp': timestamp,
          'x-tourniquet-signature': webhookSignature(w.secret, timestamp, body),
        },
        body,
        signal: AbortSignal.any([AbortSignal.timeout(w.timeoutMs), this.abort.signal]),
      });
    } catch (err) {
      throw new TourniquetError('PROVIDER_RETRIABLE', `chat webhook unreachable: ${(err as Error).message}`, {
        retriable: true,
        cause: err,
      });
    }
    await res.arrayBuffer().catch(() => undefined);
    if (res.ok) return;
    const retriable = res.status >= 500 || res.status === 429 || res.status === 408;
    throw new TourniquetError(
      retriable ? 'PROVIDER_RETRIABLE' : 'PROVIDER_PERMANENT',
      `chat webhook answered ${res.status}`,
      {
        retriable,
      },
    );
  }

  /**
   * Runs a send: retried with backoff while a retry can fix it; a permanent failure is logged as
   * an error and counted (undefined), and the queue goes on.
   */
  private async attempt<T>(
    target: 'slack' | 'webhook',
    kind: 'request' | 'update',
    send: () => Promise<T>,
  ): Promise<T | undefined> {
    if (target === 'webhook' && !this.opts.config.webhook) return undefined;
    let delay = this.opts.retry?.initialDelayMs ?? 500;
    const maxDelay = this.opts.retry?.maxDelayMs ?? 30_000;
    for (;;) {
      try {
        const result = await send();
        chatTotal.inc({ target, kind, outcome: 'sent' });
        return result;
      } catch (err) {
        if (this.abort.signal.aborted) throw err;
        if (!isRetriable(err)) {
          chatTotal.inc({ target, kind, outcome: 'failed' });
          this.opts.log?.error({ err, target, kind }, 'chat approval message refused for good; moving on');
          return undefined;
        }
        this.opts.log?.warn(
          { err, target, kind, retryInMs: delay },
          'chat approval message not sent; retrying',
        );
        // a stop ends the wait at once (the send is retried from the checkpoint on the next start)
        await new Promise<void>((r) => {
          const t = setTimeout(r, delay);
          const wake = () => {
            clearTimeout(t);
            r();
          };
          this.abort.signal.addEventListener('abort', wake, { once: true });
        });
        if (this.abort.signal.aborted) throw err;
        delay = Math.min(maxDelay, delay * 2);
      }
    }
  }
}
