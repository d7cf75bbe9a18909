import { TourniquetError } from '../errors.ts';
import { type Anchor, parseAnchor, type Witness } from './port.ts';

/**
 * An HTTP endpoint run by someone else (a SIEM's HTTP collector, a notary service, a ticketing
 * webhook). `publish` POSTs the anchor as JSON (`{store, position, hash, at}`) and expects a 2xx;
 * `read` GETs the same URL with `?store=<id>` and accepts a JSON array of anchors or NDJSON.
 * Optional headers (e.g. an Authorization token) go with both.
 */
export class HttpWitness implements Witness {
  readonly name: string;
  private readonly url: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(opts: { url: string; headers?: Record<string, string>; timeoutMs?: number }) {
    this.url = opts.url;
    this.headers = opts.headers ?? {};
    this.timeoutMs = opts.timeoutMs ?? 5000;
    const u = new URL(opts.url);
    u.username = '';
    u.password = '';
    this.name = u.toString();
  }

  async publish(anchor: Anchor): Promise<void> {
    const res = await this.call(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.headers },
      body: JSON.stringify(anchor),
    });
    await res.arrayBuffer();
  }

  async read(store: string): Promise<Anchor[]> {
    const u = new URL(this.url);
    u.searchParams.set('store', store);
    const res = await this.call(u.toString(), { method: 'GET', headers: this.headers });
    const text = await res.text();
    const trimmed = text.trim();
    if (trimmed === '') return [];
    const values: unknown[] = trimmed.startsWith('[')
      ? (JSON.parse(trimmed) as unknown[])
      : trimmed.split('\n').map((l) => JSON.parse(l) as unknown);
    return values.map(parseAnchor).filter((a): a is Anchor => a !== undefined && a.store === store);
  }

  async close(): Promise<void> {}

  private async call(url: string, init: RequestInit): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new TourniquetError(
        'STORE_UNAVAILABLE',
        `witness ${this.name} unreachable: ${(e as Error).message}`,
        {
          retriable: true,
          status: 503,
          cause: e,
        },
      );
    }
    if (!res.ok) {
      await res.arrayBuffer().catch(() => undefined);
      throw new TourniquetError('STORE_UNAVAILABLE', `witness ${this.name} answered ${res.status}`, {
        retriable: res.status >= 500 || res.status === 429,
        status: 503,
      });
    }
    return res;
  }
}
