import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type EmbeddedOptions, type EmbeddedStack, startEmbedded } from '../../app/embedded.ts';
import { verifyChainDb } from '../../platform/eventstore/chain-verify.ts';

/** The whole embedded stack (real decider, store, projector, API) in a temporary directory, for HTTP-level tests. */
export interface EmbeddedHttp {
  stack: EmbeddedStack;
  dataDir: string;
  post(url: string, body: unknown, headers?: Record<string, string>): Promise<HttpAnswer>;
  /** Sends `text` as it is (for bodies JSON.stringify cannot write). */
  postText(url: string, text: string, headers?: Record<string, string>): Promise<HttpAnswer>;
  get(url: string, headers?: Record<string, string>): Promise<HttpAnswer>;
  /** Waits until the views include everything appended so far (a 202 promises the store, not the views). */
  views(): Promise<void>;
  /** `audit verify` over the store as it is now. */
  verify(): ReturnType<typeof verifyChainDb>;
  close(): Promise<void>;
}

export interface HttpAnswer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: bodies are checked by assertions, not by types
  json: any;
  headers: Record<string, string | string[] | number | undefined>;
}

export async function embeddedHttp(opts: Partial<EmbeddedOptions> = {}): Promise<EmbeddedHttp> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'tq-hardening-'));
  const stack = await startEmbedded({
    dataDir,
    port: 0,
    log: pino({ level: 'silent' }),
    durability: 'normal',
    ...opts,
  });
  const admin = { authorization: `Bearer ${stack.adminToken}` };
  const send = async (method: 'GET' | 'POST', url: string, payload?: string, headers = {}) => {
    const res = await stack.api.inject({
      method,
      url,
      headers: {
        ...admin,
        ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(payload !== undefined ? { payload } : {}),
    });
    let json: unknown;
    try {
      json = res.json();
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, json, headers: res.headers };
  };
  return {
    stack,
    dataDir,
    post: (url, body, headers) => send('POST', url, JSON.stringify(body), headers),
    postText: (url, text, headers) => send('POST', url, text, headers),
    get: (url, headers) => send('GET', url, undefined, headers),
    views: async () => stack.projector.waitFor(await stack.store.headPosition()),
    verify: () => verifyChainDb(stack.store.database),
    async close() {
      await stack.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
