/**
 * The Shared Signals transmitter: follows the event store and pushes each containment that took
 * effect to every configured receiver as a signed SET (RFC 8935 push delivery:
 * `POST application/secevent+jwt`, 202 Accepted).
 *
 * Each receiver has its own checkpoint in the store (`signals:<name>`) and its own queue, in event
 * order: a receiver that is down holds back only its own signals, which are retried with backoff until
 * it answers (nothing is skipped), and the others go on. At least once: a SET sent just before a
 * crash is sent again, with the same `jti`. A SET the receiver refuses for good (400 with an RFC 8935
 * error, or another 4xx that a retry cannot fix) goes to the dead-letter file with the receiver's
 * answer, and the queue moves on.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { type JWK, SignJWT } from 'jose';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import { type Dispatcher, request } from 'undici';
import { isRetriable, TourniquetError } from '../../platform/errors.ts';
import type { EventStore, Subscription } from '../../platform/eventstore/port.ts';
import { metrics } from '../../platform/metrics.ts';
import type { SignalType } from '../../schemas/shared-signals.ts';
import type { SigningKey } from './keys.ts';
import { type Signal, signalsFor } from './sets.ts';

export interface SignalReceiver {
  /** Names its checkpoint and its metrics: letters, digits, '.', '_', '-'. */
  name: string;
  /** The receiver's push endpoint. */
  url: string;
  /** The SET's `aud`. */
  audience: string;
  /** Sent as the Authorization header (e.g. `Bearer …`), when the receiver wants one. */
  authorization?: string;
  /** Only these event types (default: all). */
  events?: readonly SignalType[];
  timeoutMs?: number;
}

export interface TransmitterOptions {
  store: EventStore;
  issuer: string;
  key: SigningKey;
  receivers: readonly SignalReceiver[];
  /** JSON lines, one per SET a receiver refused for good. */
  deadLetterPath: string;
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  log?: Logger;
  dispatcher?: Dispatcher;
}

const signalsTotal = new Counter({
  name: 'tourniquet_signals_total',
  help: 'Shared Signals SETs by receiver, event type and outcome (delivered, dead_lettered, retried)',
  labelNames: ['receiver', 'type', 'outcome'],
  registers: [metrics],
});

const TYPES = ['ActionExecuted', 'ActionRolledBack'] as const;

export interface ReceiverStatus {
  name: string;
  url: string;
  audience: string;
  events: SignalType[] | null;
  running: boolean;
  /** Position of the last event whose signals the receiver has had (or that were dead-lettered). */
  position: number;
  delivered: number;
  deadLettered: number;
  retries: number;
}

/** What the API shows of a transmitter (services/api). */
export interface SignalsView {
  readonly issuer: string;
  jwks(): { keys: JWK[] };
  status(): Promise<ReceiverStatus[]>;
}

/** A receiver's name: it names its checkpoint (`signals:<name>`) and its metrics. */
export const RECEIVER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Where the SETs receivers refused for good are written, in a data dir. */
export function deadLetterPathOf(dataDir: string): string {
  return join(dataDir, 'signals-dead-letters.jsonl');
}

/** One line of the dead-letter file: a SET a receiver refused for good, and its answer. */
export interface SignalDeadLetter {
  at: string;
  receiver: string;
  type: SignalType;
  jti: string;
  eventId: string;
  position: number;
  status: number;
  answer: string;
  /** The signed SET as it was sent. */
  set: string;
}

/** One line, one write (O_APPEND): lines from two writers never interleave. */
export function appendDeadLetter(path: string, letter: SignalDeadLetter): void {
  appendFileSync(path, `${JSON.stringify(letter)}\n`);
}

/** What the RFC 8935 receiver said when it refused a SET. */
export interface Refusal {
  status: number;
  body: string;
}

export class SignalTransmitter implements SignalsView {
  private readonly opts: TransmitterOptions;
  private readonly subs = new Map<string, Subscription>();
  private abort = new AbortController();
  /** Per receiver: SETs delivered and dead-lettered since start. */
  readonly stats = new Map<string, { delivered: number; deadLettered: number; retries: number }>();

  constructor(opts: TransmitterOptions) {
    const names = new Set<string>();
    for (const r of opts.receivers) {
      if (!RECEIVER_NAME.test(r.name))
        throw new TourniquetError('CONFIG_INVALID', `signal receiver name '${r.name}' is not a plain name`);
      if (names.has(r.name))
        throw new TourniquetError('CONFIG_INVALID', `signal receiver '${r.name}' is named twice`);
      names.add(r.name);
    }
    this.opts = opts;
  }

  get issuer(): string {
    return this.opts.issuer;
  }

  /** The public key receivers verify SETs with. */
  jwks(): { keys: JWK[] } {
    return { keys: [this.opts.key.publicJwk] };
  }

  /** Each receiver: where its queue stands (its checkpoint in the store) and what it has had since start. */
  async status(): Promise<ReceiverStatus[]> {
    return Promise.all(
      this.opts.receivers.map(async (r) => ({
        name: r.name,
        url: r.url,
        audience: r.audience,
        events: r.events ? [...r.events] : null,
        running: this.subs.has(r.name),
        position: (await this.opts.store.getCheckpoint(SignalTransmitter.checkpointName(r.name))) ?? 0,
        ...(this.stats.get(r.name) ?? { delivered: 0, deadLettered: 0, retries: 0 }),
      })),
    );
  }

  static checkpointName(receiver: string): string {
    return `signals:${receiver}`;
  }

  /** Starts one queue per receiver from its checkpoint. `onStop` hears of a queue that stopped on an error. */
  async start(onStop?: (err: unknown, receiver: string) => void): Promise<void> {
    this.abort = new AbortController();
    for (const r of this.opts.receivers) {
      if (this.subs.has(r.name)) continue;
      this.stats.set(r.name, { delivered: 0, deadLettered: 0, retries: 0 });
      const checkpoint = SignalTransmitter.checkpointName(r.name);
      const after = (await this.opts.store.getCheckpoint(checkpoint)) ?? 0;
      const sub = this.opts.store.subscribeAll(
        {
          after,
          types: TYPES,
          onError: (err) => {
            if (this.abort.signal.aborted) return; // stopped mid-retry
            this.subs.delete(r.name);
            this.opts.log?.error({ err, receiver: r.name }, 'signal queue stopped');
            onStop?.(err, r.name);
          },
        },
        async (event) => {
          for (const signal of signalsFor(event, this.opts.issuer)) {
            if (r.events && !r.events.includes(signal.type)) continue;
            await this.deliver(r, signal);
          }
          await this.opts.store.saveCheckpoint(checkpoint, event.position);
        },
      );
      this.subs.set(r.name, sub);
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    const subs = [...this.subs.values()];
    this.subs.clear();
    await Promise.all(subs.map((s) => s.stop()));
  }

  /** Signs the SET for this receiver and pushes it, retrying what a retry can fix. */
  private async deliver(r: SignalReceiver, signal: Signal): Promise<void> {
    const { key } = this.opts;
    const jwt = await new SignJWT({ ...signal.claims, aud: r.audience })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'secevent+jwt' })
      .sign(key.privateKey);
    const stats = this.stats.get(r.name)!;
    const policy = retry(handleWhen(isRetriable), {
      maxAttempts: Number.POSITIVE_INFINITY,
      backoff: new ExponentialBackoff({
        initialDelay: this.opts.retry?.initialDelayMs ?? 500,
        maxDelay: this.opts.retry?.maxDelayMs ?? 60_000,
      }),
    });
    const retried = policy.onRetry((e) => {
      stats.retries += 1;
      signalsTotal.inc({ receiver: r.name, type: signal.type, outcome: 'retried' });
      const err = 'error' in e ? e.error : undefined;
      this.opts.log?.warn(
        { err, receiver: r.name, jti: signal.claims.jti, delayMs: e.delay },
        'signal not delivered yet; retrying',
      );
    });
    let refusal: Refusal | undefined;
    try {
      refusal = await policy.execute(
        ({ signal: abort }) => pushSet(r, jwt, abort, this.opts.dispatcher),
        this.abort.signal,
      );
    } finally {
      retried.dispose();
    }
    if (refusal) {
      stats.deadLettered += 1;
      signalsTotal.inc({ receiver: r.name, type: signal.type, outcome: 'dead_lettered' });
      appendDeadLetter(this.opts.deadLetterPath, {
        at: new Date().toISOString(),
        receiver: r.name,
        type: signal.type,
        jti: signal.claims.jti,
        eventId: signal.eventId,
        position: signal.position,
        status: refusal.status,
        answer: refusal.body.slice(0, 2000),
        set: jwt,
      });
      this.opts.log?.error(
        {
          receiver: r.name,
          jti: signal.claims.jti,
          status: refusal.status,
          answer: refusal.body.slice(0, 500),
        },
        'receiver refused a signal; written to the dead-letter file',
      );
      return;
    }
    stats.delivered += 1;
    signalsTotal.inc({ receiver: r.name, type: signal.type, outcome: 'delivered' });
  }
}

/**
 * One RFC 8935 push: undefined when accepted, the refusal when a retry cannot help; throws a
 * retriable SIGNAL_DELIVERY_FAILED for what a retry can (and the abort reason when aborted).
 */
export async function pushSet(
  r: SignalReceiver,
  jwt: string,
  abort: AbortSignal,
  dispatcher?: Dispatcher,
): Promise<Refusal | undefined> {
  const timeoutMs = r.timeoutMs ?? 10_000;
  let status: number;
  let body: string;
  try {
    const res = await request(r.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/secevent+jwt',
        accept: 'application/json',
        ...(r.authorization ? { authorization: r.authorization } : {}),
      },
      body: jwt,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.any([abort, AbortSignal.timeout(timeoutMs)]),
      ...(dispatcher ? { dispatcher } : {}),
    });
    status = res.statusCode;
    body = await res.body.text();
  } catch (err) {
    if (abort.aborted) throw err;
    throw new TourniquetError('SIGNAL_DELIVERY_FAILED', `${r.name}: ${(err as Error).message}`, {
      retriable: true,
      cause: err,
      details: { receiver: r.name },
    });
  }
  if (status >= 200 && status < 300) return undefined;
  // An expired token or a receiver being set up is fixed on its side: keep the signal until then.
  const retriable = status >= 500 || [401, 403, 408, 425, 429].includes(status);
  if (!retriable) return { status, body };
  throw new TourniquetError('SIGNAL_DELIVERY_FAILED', `${r.name} answered ${status}: ${body.slice(0, 200)}`, {
    retriable: true,
    details: { receiver: r.name, status },
  });
}
