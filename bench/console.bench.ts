/**
 * Console speed, measured by a real Chromium against the embedded stack:
 * - the approval queue with 1,000 pending approvals: server time (request to last byte), first
 *   contentful paint and DOMContentLoaded, read from the browser's own navigation and paint
 *   timings (median of 5 loads after a warm-up load), and when all 1,000 cards are on the page;
 * - a live update: from the proposal's recorded time to its card appearing on an open queue page
 *   (median of 5 proposals).
 */
import { loadavg, uptime } from 'node:os';
import {
  apiAs,
  chromiumUnavailableReason,
  detection,
  fillQueue,
  launchChromium,
  measureQueueRender,
  sendDetections,
  signedIn,
  startConsoleStack,
} from '../test/support/console-browser.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchConsole(): Promise<Record<string, number | string>> {
  const reason = chromiumUnavailableReason();
  if (reason) {
    console.log(`console bench SKIPPED: ${reason}`);
    return {};
  }
  const cs = await startConsoleStack();
  const browser = await launchChromium();
  try {
    const ann = await signedIn(browser, cs, 'ann');
    // live updates first, on a short queue
    await ann.page.goto(`${cs.url}/`);
    await ann.page.waitForSelector('body[data-feed="connected"]');
    const sse: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = `bench-live-${i}`;
      await ann.page.evaluate(
        `void (window.benchSeen = new Promise((resolve) => new MutationObserver((_, o) => { if ([...document.querySelectorAll('#queue .approval h3')].some((h) => h.textContent.includes(${JSON.stringify(`${id}@`)}))) { o.disconnect(); resolve(Date.now()); } }).observe(document.getElementById('queue'), { childList: true, subtree: true })))`,
      );
      await sendDetections(cs, [detection(id, { provider: 'okta', id: `${id}@example.com`, type: 'human' })]);
      const seenAt = (await ann.page.evaluate('window.benchSeen')) as number;
      const r = await apiAs<{ items: Array<{ proposedAt: string }> }>(
        cs,
        'root',
        'GET',
        `/v1/actions?identity=${encodeURIComponent(`okta:${id}@example.com`)}`,
      );
      sse.push(seenAt - Date.parse(r.json.items[0]!.proposedAt));
    }

    await fillQueue(cs, 1000);
    await measureQueueRender(ann.page, cs.url); // warm-up
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await measureQueueRender(ann.page, cs.url));
    const problems = ann.problems();
    if (problems.length) throw new Error(`the console reported problems: ${problems.join('; ')}`);
    const [l1, l5, l15] = loadavg();
    return {
      'queue.1000.pending (cards on the page)': runs[0]!.pending,
      'queue.1000.server.ms (median of 5)': median(runs.map((r) => r.serverMs)),
      'queue.1000.firstContentfulPaint.ms (median of 5)': median(runs.map((r) => r.firstContentfulPaintMs)),
      'queue.1000.domContentLoaded.ms (median of 5)': median(runs.map((r) => r.domContentLoadedMs)),
      'queue.1000.allCards.ms (median of 5)': median(runs.map((r) => r.allCardsMs)),
      'sse.proposal→card.ms (median of 5)': median(sse),
      'load average (1/5/15 min)': `${l1!.toFixed(1)} / ${l5!.toFixed(1)} / ${l15!.toFixed(1)} (up ${Math.round(uptime() / 60)} min)`,
    };
  } finally {
    await browser.close();
    await cs.close();
  }
}
