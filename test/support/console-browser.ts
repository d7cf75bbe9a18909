/**
 * Browser harness for the console: the embedded stack (the same one `tourniquet start` runs) with
 * API keys for two analysts, an auditor, an admin and a detection forwarder, and a real Chromium
 * driven by puppeteer-core. Every page opened through `open()` records page errors, console
 * errors, failed requests and HTTP errors; `problems()` lists them so a test can fail on any.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type BrowserContext, type Page } from 'puppeteer-core';
import { type EmbeddedStack, startEmbedded } from '../../app/embedded.ts';
import { createLogger } from '../../platform/log.ts';
import type { NormalizedDetectionInput } from '../../schemas/detection.ts';
import { type AuthConfig, generateApiKey, generateAuthConfig } from '../../services/api/auth.ts';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function chromiumUnavailableReason(): string | null {
  return existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (set CHROMIUM_PATH)`;
}

export const PEOPLE = {
  ann: ['analyst'],
  ben: ['analyst'],
  audrey: ['auditor'],
  root: ['admin'],
  forwarder: ['service'],
} as const;
export type Person = keyof typeof PEOPLE;

export interface ConsoleStack {
  stack: EmbeddedStack;
  url: string;
  keys: Record<Person, string>;
  close(): Promise<void>;
}

/** The embedded stack with one API key per person, written to its auth.json before start. */
export async function startConsoleStack(opts: { port?: number } = {}): Promise<ConsoleStack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'tq-console-'));
  mkdirSync(dataDir, { recursive: true });
  const auth: AuthConfig = generateAuthConfig();
  const keys = {} as Record<Person, string>;
  auth.apiKeys = [];
  for (const [id, roles] of Object.entries(PEOPLE)) {
    const k = generateApiKey(id, [...roles]);
    keys[id as Person] = k.key;
    auth.apiKeys.push(k.entry);
  }
  writeFileSync(join(dataDir, 'auth.json'), JSON.stringify(auth), { mode: 0o600 });
  const stack = await startEmbedded({
    dataDir,
    port: opts.port ?? 0,
    durability: 'normal',
    log: createLogger(),
  });
  return { stack, url: stack.url, keys, close: () => stack.close() };
}

/** Sends detections as the forwarder would (service key), answers once they are recorded and in the views. */
export async function sendDetections(
  cs: ConsoleStack,
  detections: NormalizedDetectionInput[],
): Promise<void> {
  const res = await fetch(`${cs.url}/v1/detections?wait=views`, {
    method: 'POST',
    headers: { 'x-api-key': cs.keys.forwarder, 'content-type': 'application/json' },
    body: JSON.stringify(detections),
  });
  if (res.status !== 202) throw new Error(`detections refused: ${res.status} ${await res.text()}`);
}

/** A JSON API call as a person (API key), for setting up what the browser then sees. */
export async function apiAs<T = Record<string, unknown>>(
  cs: ConsoleStack,
  who: Person,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${cs.url}${path}`, {
    method,
    headers: {
      'x-api-key': cs.keys[who],
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json().catch(() => ({}))) as T };
}

export async function launchChromium(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless=new', '--disable-gpu', '--window-size=1366,900'],
    defaultViewport: { width: 1366, height: 900 },
  });
}

export interface Session {
  who: Person;
  context: BrowserContext;
  page: Page;
  /** Everything that went wrong in this browser session so far. */
  problems(): string[];
  /** Marks a refusal the test provokes on purpose (status and URL part), so it is not a problem. */
  expect(status: number, urlPart: string): void;
  close(): Promise<void>;
}

/**
 * A fresh browser profile (own cookies) signed in as `who` through the API-key form. Problems:
 * uncaught page errors, console errors, failed requests (a feed closed by leaving the page is
 * not one), and HTTP 4xx/5xx responses the test did not announce with `expect`.
 */
export async function signedIn(browser: Browser, cs: ConsoleStack, who: Person): Promise<Session> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const problems: string[] = [];
  const expected: Array<{ status: number; urlPart: string }> = [];
  const expectedConsole: Array<{ status: number; urlPart: string }> = [];
  // a request the page had started before it navigated away is aborted by the browser, not failed
  const startedAt = new WeakMap<object, number>();
  let clock = 0;
  let navigationStartedAt = 0;
  const aborted: Array<{ started: number; line: string }> = [];
  page.on('request', (r) => {
    startedAt.set(r, ++clock);
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) {
      navigationStartedAt = clock;
    }
  });
  // the old document lives on until the new one commits; requests it started end aborted
  page.on('framenavigated', (_f) => {});
  page.on('pageerror', (err) =>
    problems.push(`pageerror: ${err instanceof Error ? err.message : String(err)}`),
  );
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = m.location().url ?? '';
    // Chromium logs every refused request; the ones the test provokes are announced
    const status = /status of (\d+)/.exec(m.text())?.[1];
    const i = expectedConsole.findIndex((e) => String(e.status) === status && url.includes(e.urlPart));
    if (i >= 0) expectedConsole.splice(i, 1);
    else problems.push(`console error: ${m.text()} (${url})`);
  });
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText ?? 'failed';
    const line = `request failed: ${r.method()} ${r.url()} ${why}`;
    // Chromium aborts the old document's requests as a navigation begins, and may report that
    // before the navigation's own request: judged once the session is over (see problems())
    if (why === 'net::ERR_ABORTED') aborted.push({ started: startedAt.get(r) ?? 0, line });
    else problems.push(line);
  });
  page.on('response', (r) => {
    const status = r.status();
    if (status < 400) return;
    const i = expected.findIndex((e) => e.status === status && r.url().includes(e.urlPart));
    if (i >= 0) expected.splice(i, 1);
    else problems.push(`HTTP ${status}: ${r.request().method()} ${r.url()}`);
  });
  await page.goto(`${cs.url}/login`);
  await page.type('#key', cs.keys[who]);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  if (new URL(page.url()).pathname === '/login') throw new Error(`${who} could not sign in`);
  return {
    who,
    context,
    page,
    problems: () => [
      ...problems,
      // an aborted request is a problem unless the page navigated away after it started
      ...aborted.filter((a) => a.started >= navigationStartedAt).map((a) => a.line),
    ],
    expect: (status, urlPart) => {
      expected.push({ status, urlPart });
      expectedConsole.push({ status, urlPart });
    },
    close: () => context.close(),
  };
}

export function detection(
  id: string,
  identity: NormalizedDetectionInput['identity'],
  over: Partial<NormalizedDetectionInput> = {},
): NormalizedDetectionInput {
  return {
    id,
    source: 'splunk',
    kind: 'impossible_travel',
    confidence: 0.7,
    severity: 'high',
    identity,
    occurredAt: new Date().toISOString(),
    title: `Sign-in from two continents for ${identity.id}`,
    evidence: { ip: '203.0.113.7', country: 'NZ' },
    ...over,
  };
}

/** Polls until `fn` answers something truthy. */
export async function until<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface QueueRender {
  pending: number;
  /** Request start to the last byte of the page (server time plus transfer). */
  serverMs: number;
  /** Navigation start to the first contentful paint. */
  firstContentfulPaintMs: number;
  /** Navigation start to DOMContentLoaded (scripts run, page usable). */
  domContentLoadedMs: number;
  /** Navigation start until every pending card is on the page (the first come with it, the rest follow). */
  allCardsMs: number;
  htmlBytes: number;
}

/** Opens the approval queue in a signed-in page and reads the browser's own timings of that load. */
export async function measureQueueRender(page: Page, url: string): Promise<QueueRender> {
  await page.goto(`${url}/`, { waitUntil: 'load' });
  await page.waitForSelector('body[data-queue-loaded="all"]', { timeout: 30_000 });
  const allCardsMs = Math.round((await page.evaluate('performance.now()')) as number);
  // a string: the test project has no DOM types; this runs in the page
  const timings = (await page.evaluate(`(async () => {
    // the paint entry can land a frame after load
    for (let i = 0; i < 50 && performance.getEntriesByName('first-contentful-paint').length === 0; i++)
      await new Promise((r) => requestAnimationFrame(r));
    const nav = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return {
      pending: document.querySelectorAll('#queue .approval').length,
      serverMs: Math.round(nav.responseEnd - nav.requestStart),
      firstContentfulPaintMs: Math.round(fcp ? fcp.startTime : NaN),
      domContentLoadedMs: Math.round(nav.domContentLoadedEventEnd),
      htmlBytes: nav.transferSize,
    };
  })()`)) as Omit<QueueRender, 'allCardsMs'>;
  return { ...timings, allCardsMs };
}

/** Sends `n` detections for `n` identities, each of which needs an analyst; waits until all are pending. */
export async function fillQueue(cs: ConsoleStack, n: number, prefix = 'bulk'): Promise<void> {
  const ds = Array.from({ length: n }, (_, i) =>
    detection(`${prefix}-${i}`, { provider: 'okta', id: `${prefix}-user-${i}@example.com`, type: 'human' }),
  );
  for (let i = 0; i < ds.length; i += 500) await sendDetections(cs, ds.slice(i, i + 500));
  await until(async () => {
    const r = await apiAs<{ items: Array<{ identityKey: string }>; nextCursor: string | null }>(
      cs,
      'root',
      'GET',
      '/v1/actions?status=proposed&limit=1000',
    );
    return r.json.items.filter((a) => a.identityKey.includes(`${prefix}-user-`)).length >= n;
  }, 60_000);
}
