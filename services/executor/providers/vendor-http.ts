import { type Dispatcher, request } from 'undici';
import { ProviderError, parseRetryAfter } from '../../../platform/errors.ts';

/**
 * The HTTP edge the SaaS adapters (Okta, Entra ID, Google Workspace, GitHub) share: JSON in and out,
 * a timeout on every call, and one classification of failures the executor's retry policy trusts:
 * network errors, 408, 429 and 5xx are retriable (with the server's Retry-After, or the vendor's own
 * rate-limit reset header, as retryAfterMs); every other non-2xx is permanent. Request bodies and
 * credentials never appear in error messages.
 */
export interface VendorHttpOptions {
  provider: string;
  baseUrl: string;
  timeoutMs?: number;
  dispatcher?: Dispatcher;
  now?: () => number;
  /** The vendor's error text from a reply body (e.g. Okta errorSummary, Graph error.message). */
  describeError?: (body: unknown) => string | undefined;
  /** A vendor-specific wait (ms) when there is no Retry-After (Okta X-Rate-Limit-Reset, GitHub x-ratelimit-reset). */
  rateLimitWaitMs?: (headers: Record<string, string | undefined>, nowMs: number) => number | undefined;
  /** A status the vendor uses for throttling besides 429 (GitHub: 403 with x-ratelimit-remaining 0). */
  retriableStatus?: (status: number, headers: Record<string, string | undefined>) => boolean;
}

export interface VendorRequest {
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  json?: unknown;
  form?: Record<string, string>;
  /** Statuses answered without throwing (e.g. 404 for a probe that expects "gone"). */
  accept?: readonly number[];
}

export interface VendorReply {
  status: number;
  headers: Record<string, string | undefined>;
  body: unknown;
}

export class VendorHttp {
  readonly base: string;
  private readonly o: VendorHttpOptions;
  private readonly timeoutMs: number;

  constructor(o: VendorHttpOptions) {
    this.o = o;
    this.base = o.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = o.timeoutMs ?? 10_000;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** `path` is relative to the base URL (or absolute, for a Location the server gave us). */
  async send(method: string, path: string, req: VendorRequest = {}): Promise<VendorReply> {
    const url = new URL(/^https?:\/\//.test(path) ? path : this.base + path);
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...(req.headers ?? {}) };
    let body: string | undefined;
    if (req.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.json);
    } else if (req.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(req.form).toString();
    }
    const what = `${method} ${url.pathname}`;
    let status: number;
    let text: string;
    let replyHeaders: Record<string, string | undefined>;
    try {
      const res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers,
        ...(body !== undefined ? { body } : {}),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(this.o.dispatcher ? { dispatcher: this.o.dispatcher } : {}),
      });
      status = res.statusCode;
      text = await res.body.text();
      replyHeaders = Object.fromEntries(
        Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]),
      );
    } catch (err) {
      throw new ProviderError(`${this.o.provider}: ${what} failed: ${(err as Error).message}`, {
        retriable: true,
        provider: this.o.provider,
        cause: err,
        details: { request: what },
      });
    }
    const parsed = parseBody(text);
    if ((status >= 200 && status < 300) || req.accept?.includes(status))
      return { status, headers: replyHeaders, body: parsed };
    const retriable =
      status === 408 ||
      status === 429 ||
      status >= 500 ||
      (this.o.retriableStatus?.(status, replyHeaders) ?? false);
    const retryAfterMs = retriable
      ? (parseRetryAfter(replyHeaders['retry-after'], this.now()) ??
        this.o.rateLimitWaitMs?.(replyHeaders, this.now()))
      : undefined;
    const detail = this.o.describeError?.(parsed) ?? (typeof parsed === 'string' ? parsed.slice(0, 200) : '');
    throw new ProviderError(`${this.o.provider}: ${what} answered ${status}${detail ? `: ${detail}` : ''}`, {
      retriable,
      provider: this.o.provider,
      details: { request: what, status },
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A permanent ProviderError: the request cannot succeed by being repeated. */
export function permanent(
  provider: string,
  message: string,
  details?: Record<string, unknown>,
): ProviderError {
  return new ProviderError(`${provider}: ${message}`, {
    retriable: false,
    provider,
    ...(details ? { details } : {}),
  });
}

/**
 * Collects items submitted within `windowMs` (or until `max`) into one call, as vendors ask for
 * (GitHub credential revocation, Graph risky-user dismissal). Each submitter gets the batch's outcome.
 */
export class Batcher<T> {
  private items: Array<{ item: T; resolve: () => void; reject: (e: unknown) => void }> = [];
  private timer: NodeJS.Timeout | null = null;
  private readonly flushFn: (items: T[]) => Promise<void>;
  private readonly windowMs: number;
  private readonly max: number;

  constructor(opts: { windowMs: number; max: number; flush: (items: T[]) => Promise<void> }) {
    this.flushFn = opts.flush;
    this.windowMs = opts.windowMs;
    this.max = opts.max;
  }

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.items.push({ item, resolve, reject });
      if (this.items.length >= this.max) void this.flush();
      else if (!this.timer) this.timer = setTimeout(() => void this.flush(), this.windowMs);
    });
  }

  private async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.items.splice(0, this.max);
    if (batch.length === 0) return;
    if (this.items.length > 0) this.timer = setTimeout(() => void this.flush(), this.windowMs);
    try {
      await this.flushFn(batch.map((b) => b.item));
      for (const b of batch) b.resolve();
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
  }
}
