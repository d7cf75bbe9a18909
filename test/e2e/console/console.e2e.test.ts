/**
 * The console in a real Chromium against the embedded stack: live queue, approvals (one and two
 * people, the proposer refused), a benign verdict rolled back with its residue, an auditor who can
 * read, search and verify but not write, the kill switch shown everywhere, CSRF refused, and axe
 * on every page. Every session fails the test on a page error, a console error, a failed request
 * or an HTTP error the test did not provoke on purpose. Screenshots go to docs/console/.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  apiAs,
  type ConsoleStack,
  chromiumUnavailableReason,
  detection,
  fillQueue,
  launchChromium,
  measureQueueRender,
  type Session,
  sendDetections,
  signedIn,
  startConsoleStack,
  until,
} from '../../support/console-browser.ts';

const unavailable = chromiumUnavailableReason();
if (unavailable) console.warn(`[console.e2e] SKIPPED: ${unavailable}`);

const SHOTS = fileURLToPath(new URL('../../../docs/console/', import.meta.url));
const AXE = fileURLToPath(new URL('../../../node_modules/axe-core/axe.min.js', import.meta.url));

/** Runs a snippet in the page (a string: this project compiles without DOM types). */
const js = <T>(page: Page, code: string) => page.evaluate(code) as Promise<T>;
const text = (page: Page, selector: string) =>
  js<string>(page, `document.querySelector(${JSON.stringify(selector)})?.textContent ?? ''`);
const visible = (page: Page, selector: string) =>
  js<boolean>(
    page,
    `(() => { const e = document.querySelector(${JSON.stringify(selector)}); return !!e && !e.hidden && e.getClientRects().length > 0; })()`,
  );

interface ActionItem {
  id: string;
  status: string;
  verified: boolean;
  approvers: string[];
  caseId: string;
  proposedAt: string;
  residue: string[];
}

async function actionsOf(cs: ConsoleStack, identity: string): Promise<ActionItem[]> {
  const r = await apiAs<{ items: ActionItem[] }>(
    cs,
    'root',
    'GET',
    `/v1/actions?identity=${encodeURIComponent(identity)}`,
  );
  return r.json.items;
}

async function waitForFeed(page: Page) {
  await page.waitForSelector('body[data-feed="connected"]', { timeout: 10_000 });
}

async function shot(page: Page, name: string) {
  await page.screenshot({ path: `${SHOTS}${name}.png`, type: 'png' });
}

describe.skipIf(unavailable !== null)('console in Chromium', () => {
  let cs: ConsoleStack;
  let browser: Browser;
  const sessions: Session[] = [];
  const open = async (who: Parameters<typeof signedIn>[2]) => {
    const s = await signedIn(browser, cs, who);
    sessions.push(s);
    return s;
  };

  beforeAll(async () => {
    cs = await startConsoleStack();
    browser = await launchChromium();
  });
  afterEach(async () => {
    // the suite fails on any page error, console error, failed request or unexpected HTTP error
    const problems = sessions.flatMap((s) => s.problems().map((p) => `${s.who}: ${p}`));
    for (const s of sessions.splice(0)) await s.close();
    expect(problems).toEqual([]);
  });
  afterAll(async () => {
    await browser?.close();
    await cs?.close();
  });

  it('a proposed action appears live; an analyst approves it and sees it executed and verified', async () => {
    const ann = await open('ann');
    await ann.page.goto(`${cs.url}/`);
    await waitForFeed(ann.page);
    // when the card appears, by the page's clock (same machine as the server's)
    await js(
      ann.page,
      `new MutationObserver((_, o) => { if (document.querySelector('#queue .approval[data-group^="analyst-review"]')) { window.cardSeenAt = Date.now(); o.disconnect(); } }).observe(document.getElementById('queue'), { childList: true, subtree: true })`,
    );
    await sendDetections(cs, [
      detection('live-1', { provider: 'okta', id: 'alice@example.com', type: 'human' }),
    ]);
    await ann.page.waitForSelector('#queue .approval', { timeout: 5_000 });
    const [action] = await actionsOf(cs, 'okta:alice@example.com');
    const seenAt = await js<number>(ann.page, 'window.cardSeenAt');
    const sseMs = seenAt - Date.parse(action!.proposedAt);
    console.log(`[console.e2e] SSE: proposal recorded -> card on the page in ${sseMs} ms`);
    expect(await text(ann.page, '#toast')).toContain('New approval');
    const card = `#action-${action!.id}`;
    expect(await text(ann.page, card)).toContain('okta:alice@example.com');
    expect(await text(ann.page, card)).toContain('analyst-review');
    expect(await text(ann.page, card)).toContain('0.70');
    expect(await text(ann.page, card)).toContain('revoked sessions cannot be restored');
    // the explanation loads when the card is opened
    await ann.page.click(`${card} details summary`);
    await ann.page.waitForFunction(
      `document.querySelector('${card} .detail-body')?.textContent.includes('203.0.113.7')`,
    );
    expect(await text(ann.page, `${card} .narrative`)).toContain('analyst-review');
    await shot(ann.page, 'queue');

    await ann.page.type(`${card} input[name="comment"]`, 'called Alice: not her');
    await ann.page.click(`${card} button[value="approve"]`);
    await ann.page.waitForSelector(card, { hidden: true, timeout: 10_000 });
    const done = await until(async () => {
      const [a] = await actionsOf(cs, 'okta:alice@example.com');
      return a?.status === 'executed' && a.verified ? a : undefined;
    });
    expect(done.approvers).toEqual(['ann']);
    await ann.page.goto(`${cs.url}/cases/${done.caseId}`);
    await ann.page.waitForSelector(`tr[data-action="${done.id}"] [data-status="executed-verified"]`);
  });

  it('two-person approval: the first approver is shown and refused a second time; a second analyst completes it', async () => {
    const ann = await open('ann');
    const ben = await open('ben');
    await ann.page.goto(`${cs.url}/`);
    await waitForFeed(ann.page);
    await sendDetections(cs, [
      detection(
        'esc-1',
        { provider: 'aws', id: 'svc-build', type: 'service_account' },
        { kind: 'privilege_escalation', confidence: 0.92, title: 'Build role attached AdministratorAccess' },
      ),
    ]);
    await ann.page.waitForSelector('#queue .approval[data-group*="two-person"]');
    const id = await js<string>(
      ann.page,
      `document.querySelector('#queue .approval[data-group*="two-person"]').dataset.action`,
    );
    const sel = `#action-${id}`;
    await ann.page.click(`${sel} button[value="approve"]`);
    await ann.page.waitForFunction(
      `document.querySelector('${sel} .approval-state')?.textContent.includes('first approved by ann')`,
    );
    ann.expect(409, '/approve');
    await ann.page.click(`${sel} button[value="approve"]`);
    await ann.page.waitForFunction(
      `document.querySelector('${sel} .result')?.textContent.includes('Refused')`,
    );
    expect(await text(ann.page, `${sel} .result`)).toContain('already approved');

    await ben.page.goto(`${cs.url}/`);
    expect(await text(ben.page, `${sel} .approval-state`)).toContain('first approved by ann');
    await shot(ben.page, 'two-person');
    await ben.page.click(`${sel} button[value="approve"]`);
    await ben.page.waitForSelector(sel, { hidden: true });
    // ann's page drops the card live too
    await ann.page.waitForSelector(sel, { hidden: true });
    const [a] = await actionsOf(cs, 'aws:svc-build');
    expect(a!.approvers).toEqual(['ann', 'ben']);
  });

  it("the proposer's own approve is refused", async () => {
    const ann = await open('ann');
    await ann.page.goto(`${cs.url}/`);
    await waitForFeed(ann.page);
    await sendDetections(cs, [
      detection('dave-1', { provider: 'okta', id: 'dave', type: 'human' }, { confidence: 0.4 }),
    ]);
    const proposed = await apiAs<{ action: ActionItem }>(cs, 'ann', 'POST', '/v1/actions', {
      identity: { provider: 'okta', id: 'dave', type: 'human' },
      action: 'revoke_sessions',
      reason: 'phishing report from dave',
    });
    expect(proposed.status).toBe(201);
    const sel = `#action-${proposed.json.action.id}`;
    await ann.page.waitForSelector(sel);
    expect(await text(ann.page, sel)).toContain('You proposed this action');
    ann.expect(409, '/approve');
    await ann.page.click(`${sel} button[value="approve"]`);
    await ann.page.waitForFunction(
      `document.querySelector('${sel} .result')?.textContent.includes('Refused')`,
    );
    expect(await text(ann.page, `${sel} .result`)).toContain('cannot approve');
    const [a] = await actionsOf(cs, 'okta:dave');
    expect(a!.status).toBe('proposed');
  });

  it('a benign verdict shows the rollback plan and residue first, then rolls back', async () => {
    const ann = await open('ann');
    await sendDetections(cs, [
      detection(
        'bob-1',
        { provider: 'okta', id: 'bob@example.com', type: 'human' },
        { kind: 'known_compromise', confidence: 0.95 },
      ),
    ]);
    const executed = await until(async () => {
      const [a] = await actionsOf(cs, 'okta:bob@example.com');
      return a?.status === 'executed' ? a : undefined;
    });
    await ann.page.goto(`${cs.url}/cases/${executed.caseId}`);
    await waitForFeed(ann.page);
    await ann.page.click('input[name="verdict"][value="benign"]');
    await ann.page.type('#verdict-comment', 'Bob was travelling');
    await ann.page.click('#verdict-submit');
    expect(await visible(ann.page, '#rollback-plan')).toBe(true);
    expect(await text(ann.page, '#rollback-plan')).toContain('residue');
    expect(await text(ann.page, '#rollback-plan')).toContain('revoke_sessions');
    expect(await text(ann.page, '#verdict-submit')).toContain('Confirm');
    await shot(ann.page, 'verdict');
    await Promise.all([ann.page.waitForNavigation(), ann.page.click('#verdict-submit')]);
    await ann.page.waitForFunction(`document.getElementById('case-status')?.textContent.includes('benign')`);
    await waitForFeed(ann.page);
    // the rollback lands after the verdict: the page shows it without a reload
    await ann.page.waitForSelector(`tr[data-action="${executed.id}"] [data-status="rolled_back"]`, {
      timeout: 10_000,
    });
    expect(await text(ann.page, `tr[data-action="${executed.id}"] .residue`)).toContain('sessions');
    await shot(ann.page, 'case');
  });

  it('an auditor reads, searches and verifies, and has no write control (and the API refuses writes)', async () => {
    const audrey = await open('audrey');
    await audrey.page.goto(`${cs.url}/`);
    expect(await js<number>(audrey.page, `document.querySelectorAll('form.decide, #bulk').length`)).toBe(0);
    const [dave] = await actionsOf(cs, 'okta:dave');
    expect(await text(audrey.page, `#action-${dave!.id}`)).toContain('revoke_sessions');
    await audrey.page.goto(`${cs.url}/cases/${dave!.caseId}`);
    expect(await js<number>(audrey.page, `document.querySelectorAll('#verdict-form').length`)).toBe(0);
    await audrey.page.goto(`${cs.url}/automation`);
    expect(await js<number>(audrey.page, `document.querySelectorAll('#automation-form').length`)).toBe(0);

    await audrey.page.goto(`${cs.url}/audit`);
    await audrey.page.type('#a-identity', 'okta:alice@example.com');
    await Promise.all([audrey.page.waitForNavigation(), audrey.page.click('.filters button[type="submit"]')]);
    const rows = await js<number>(audrey.page, `document.querySelectorAll('table.audit tbody tr').length`);
    expect(rows).toBeGreaterThanOrEqual(4); // detection, case, proposal, approval, execution, verification
    expect(await text(audrey.page, 'table.audit')).toContain('ActionApproved');
    await audrey.page.click('#verify-chain');
    await audrey.page.waitForFunction(
      `document.getElementById('verify-result')?.textContent.includes('Chain intact')`,
    );
    const csv = await js<string>(audrey.page, `document.getElementById('export-csv').getAttribute('href')`);
    expect(csv).toContain('format=csv');
    expect(csv).toContain('identity=okta%3Aalice%40example.com');
    const exported = await js<{ status: number; body: string }>(
      audrey.page,
      `fetch(${JSON.stringify(csv)}).then(async (r) => ({ status: r.status, body: await r.text() }))`,
    );
    expect(exported.status).toBe(200);
    expect(exported.body.split('\r\n')[0]).toContain('position,id,type');
    await shot(audrey.page, 'audit');

    // the API refuses what the page does not offer, even with the session's own CSRF token
    audrey.expect(403, '/approve');
    const refused = await js<number>(
      audrey.page,
      `fetch('/v1/actions/${dave!.id}/approve', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': document.querySelector('meta[name="csrf-token"]').content }, body: '{}' }).then((r) => r.status)`,
    );
    expect(refused).toBe(403);
  });

  it('pause shows on every page, live, and resume clears it', async () => {
    const root = await open('root');
    const ann = await open('ann');
    await ann.page.goto(`${cs.url}/`);
    await waitForFeed(ann.page);
    expect(await visible(ann.page, '#paused-banner')).toBe(false);

    await root.page.goto(`${cs.url}/automation`);
    await root.page.type('#automation-reason', 'bad rule rollout');
    await root.page.click('#automation-form button[type="submit"]');
    await root.page.waitForFunction(
      `document.getElementById('automation-state')?.textContent.includes('Paused')`,
    );
    // ann's open page shows it without reloading
    await ann.page.waitForFunction(`!document.getElementById('paused-banner').hidden`, { timeout: 5_000 });
    expect(await text(ann.page, '#paused-banner')).toContain('bad rule rollout');
    for (const path of ['/cases', '/audit', '/automation']) {
      await ann.page.goto(`${cs.url}${path}`);
      expect(await visible(ann.page, '#paused-banner'), path).toBe(true);
    }
    await shot(root.page, 'automation');

    await root.page.type('#automation-reason', 'rule fixed');
    await root.page.click('#automation-form button[type="submit"]');
    await waitForFeed(ann.page);
    await ann.page.waitForFunction(`document.getElementById('paused-banner').hidden`, { timeout: 5_000 });
    await ann.page.goto(`${cs.url}/`);
    expect(await visible(ann.page, '#paused-banner')).toBe(false);
  });

  it('CSRF: a cross-site form post and a cross-site fetch carrying the cookie cannot approve', async () => {
    const ann = await open('ann');
    await sendDetections(cs, [detection('eve-1', { provider: 'okta', id: 'erin', type: 'human' })]);
    const target = await until(async () => (await actionsOf(cs, 'okta:erin'))[0]);
    const approveUrl = `${cs.url}/v1/actions/${target.id}/approve`;
    // another site (localhost is not the same site as 127.0.0.1) with a page that tries both
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><title>win a prize</title>
<form id="f" method="post" action="${approveUrl}" enctype="text/plain"><input name='{"comment":"x","a":"' value='"}'></form>
<script>
fetch(${JSON.stringify(approveUrl)}, { method: 'POST', credentials: 'include', mode: 'no-cors', body: '{}' })
  .finally(() => document.getElementById('f').submit());
</script>`);
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const evilUrl = `http://localhost:${(evil.address() as AddressInfo).port}/`;
    try {
      // a tab in ann's own browser profile: her session cookie exists
      const tab = await ann.context.newPage();
      await tab.goto(evilUrl);
      await tab.waitForFunction(`location.href.includes('/approve')`, { timeout: 5_000 });
      const answer = await js<string>(tab, 'document.body.innerText');
      expect(answer).toMatch(/UNAUTHORIZED|FORBIDDEN/);
      await tab.close();
    } finally {
      await new Promise((r) => evil.close(r));
    }
    const [after] = await actionsOf(cs, 'okta:erin');
    expect(after!.status).toBe('proposed');
    expect(after!.approvers).toEqual([]);
    // and the cookie still works from the console itself
    await ann.page.goto(`${cs.url}/`);
    await ann.page.click(`#action-${target.id} button[value="approve"]`);
    await ann.page.waitForSelector(`#action-${target.id}`, { hidden: true });
  });

  it('keyboard: skip link first, then a card is answered with Tab and Enter; titles from a SIEM stay text', async () => {
    const ann = await open('ann');
    await sendDetections(cs, [
      detection(
        'kb-1',
        { provider: 'okta', id: 'kim', type: 'human' },
        { title: '<img src=x onerror="window.owned=1">' },
      ),
    ]);
    const target = await until(async () => (await actionsOf(cs, 'okta:kim'))[0]);
    await ann.page.goto(`${cs.url}/`);
    await ann.page.keyboard.press('Tab');
    expect(await js<string>(ann.page, 'document.activeElement.textContent')).toContain('Skip to content');
    const card = `#action-${target.id}`;
    await ann.page.focus(`${card} input[name="comment"]`);
    await ann.page.keyboard.type('checked with Kim');
    await ann.page.keyboard.press('Tab');
    expect(await js<string>(ann.page, 'document.activeElement.value')).toBe('approve');
    await ann.page.keyboard.press('Enter');
    await ann.page.waitForSelector(card, { hidden: true });
    expect((await actionsOf(cs, 'okta:kim'))[0]!.approvers).toEqual(['ann']);
    const c = await until(async () => (await actionsOf(cs, 'okta:kim'))[0]);
    await ann.page.goto(`${cs.url}/cases/${c.caseId}`);
    expect(await text(ann.page, 'main')).toContain('<img src=x onerror="window.owned=1">');
    expect(await js<unknown>(ann.page, 'window.owned')).toBeUndefined();
  });

  it('related approvals answered together: one decision, one ActionApproved per action', async () => {
    const ben = await open('ben');
    await ben.page.goto(`${cs.url}/`);
    await waitForFeed(ben.page);
    await sendDetections(cs, [
      detection('rel-1', { provider: 'okta', id: 'rel-one', type: 'human' }, { kind: 'anomalous_token_use' }),
      detection('rel-2', { provider: 'okta', id: 'rel-two', type: 'human' }, { kind: 'anomalous_token_use' }),
    ]);
    const ids = await until(async () => {
      const a = [...(await actionsOf(cs, 'okta:rel-one')), ...(await actionsOf(cs, 'okta:rel-two'))];
      return a.length === 2 ? a.map((x) => x.id) : undefined;
    });
    for (const id of ids) await ben.page.waitForSelector(`#action-${id}`);
    // both in one group: tick them, one comment, one click
    for (const id of ids) await ben.page.click(`#action-${id} input.select`);
    await ben.page.type('#bulk-comment', 'same phishing wave');
    await ben.page.click('#bulk-approve');
    await ben.page.waitForFunction(
      `document.getElementById('bulk-result')?.textContent.includes('Approved 2 of 2')`,
    );
    for (const id of ids) await ben.page.waitForSelector(`#action-${id}`, { hidden: true });
    const approvals = await apiAs<{
      items: Array<{ type: string; index: { actionId: string; actor: string } }>;
    }>(cs, 'root', 'GET', `/v1/audit/events?type=ActionApproved&actor=ben`);
    const perAction = approvals.json.items.filter((e) => ids.includes(e.index.actionId));
    expect(perAction.map((e) => e.index.actionId).sort()).toEqual([...ids].sort());
  });

  it('cases: the triage list filters and sorts in place', async () => {
    const ann = await open('ann');
    await sendDetections(cs, [
      detection('fil-a', { provider: 'okta', id: 'filter-one', type: 'human' }),
      detection('fil-b', { provider: 'okta', id: 'filter-two', type: 'human' }, { severity: 'low' }),
    ]);
    await until(async () => (await actionsOf(cs, 'okta:filter-two')).length > 0);
    await ann.page.goto(`${cs.url}/cases?status=all`);
    const all = await js<number>(ann.page, `document.querySelectorAll('table.cases tbody tr').length`);
    expect(all).toBeGreaterThanOrEqual(2);
    await ann.page.type('#f-q', 'filter-two');
    await ann.page.keyboard.press('Enter');
    await ann.page.waitForFunction(`location.search.includes('q=filter-two')`);
    await ann.page.waitForFunction(`document.querySelectorAll('table.cases tbody tr').length === 1`);
    expect(await text(ann.page, 'table.cases tbody')).toContain('okta:filter-two');
    await ann.page.click('#f-q', { count: 3 });
    await ann.page.keyboard.press('Backspace');
    await ann.page.select('#f-sort', 'pending');
    await ann.page.waitForFunction(
      `location.search.includes('sort=pending') && !location.search.includes('q=alice')`,
    );
    await ann.page.waitForFunction(`document.querySelectorAll('table.cases tbody tr').length === ${all}`);
    const pending = await js<string[]>(
      ann.page,
      `[...document.querySelectorAll('table.cases tbody tr td.num')].map((td) => td.textContent.trim())`,
    );
    const counts = pending.map((p) => Number(p || 0));
    expect(counts).toEqual([...counts].sort((a, b) => b - a));
    await shot(ann.page, 'cases');
  });

  it('axe: no serious or critical accessibility violation on any page', async () => {
    const ann = await open('ann');
    await ann.page.setBypassCSP(true); // axe is injected as an inline script
    const [dave] = await actionsOf(cs, 'okta:dave');
    const pages = [
      '/',
      '/cases',
      `/cases/${dave!.caseId}`,
      '/identities/okta/bob%40example.com',
      '/automation',
      '/audit?identity=okta%3Aalice%40example.com',
    ];
    const found: string[] = [];
    for (const path of pages) {
      await ann.page.goto(`${cs.url}${path}`);
      await ann.page.addScriptTag({ path: AXE });
      const violations = await js<Array<{ id: string; impact: string; help: string; nodes: unknown[] }>>(
        ann.page,
        `axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target) })))`,
      );
      for (const v of violations)
        if (v.impact === 'serious' || v.impact === 'critical')
          found.push(`${path}: ${v.impact} ${v.id} (${v.help}) at ${JSON.stringify(v.nodes).slice(0, 200)}`);
    }
    const login = await browser.createBrowserContext();
    const lp = await login.newPage();
    await lp.setBypassCSP(true);
    await lp.goto(`${cs.url}/login`);
    await lp.addScriptTag({ path: AXE });
    const lv = await js<Array<{ id: string; impact: string }>>(
      lp,
      `axe.run(document).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact })))`,
    );
    for (const v of lv)
      if (v.impact === 'serious' || v.impact === 'critical') found.push(`/login: ${v.impact} ${v.id}`);
    await shot(lp, 'login');
    await login.close();
    expect(found).toEqual([]);
  });

  it('Swagger UI at /docs renders the Markdown descriptions and runs a request with "Try it out"', async () => {
    const ann = await open('ann');
    await ann.page.goto(`${cs.url}/docs`);
    await ann.page.waitForSelector('.opblock-summary-path', { timeout: 15_000 });
    // the API description's inline code is Markdown: rendered as <code>, not shown as backticks
    const info = await text(ann.page, '.information-container .description');
    expect(info).toContain('Authorization: Bearer <jwt>');
    expect(info).not.toContain('`');
    expect(
      await js<number>(
        ann.page,
        `document.querySelectorAll('.information-container .description code').length`,
      ),
    ).toBeGreaterThan(0);
    await ann.page.click('#operations-ops-get_healthz .opblock-summary-control');
    await ann.page.waitForSelector('#operations-ops-get_healthz .execute');
    await ann.page.click('#operations-ops-get_healthz .execute');
    await ann.page.waitForSelector(
      '#operations-ops-get_healthz .live-responses-table tbody .response-col_status',
    );
    expect(
      await text(ann.page, '#operations-ops-get_healthz .live-responses-table tbody .response-col_status'),
    ).toContain('200');
    await shot(ann.page, 'docs');
  });

  it('the queue with 1,000 pending approvals: render time and first paint, measured here', async () => {
    const ann = await open('ann');
    await fillQueue(cs, 1000);
    // the first load also warms the browser's caches (scripts, styles); both are reported
    for (const run of ['first load', 'second load']) {
      const m = await measureQueueRender(ann.page, cs.url);
      expect(m.pending).toBeGreaterThanOrEqual(1000);
      console.log(
        `[console.e2e] queue with ${m.pending} pending, ${run}: server ${m.serverMs} ms, first contentful paint ${m.firstContentfulPaintMs} ms, DOMContentLoaded ${m.domContentLoadedMs} ms, page ${Math.round(m.htmlBytes / 1024)} KiB, all ${m.pending} cards on the page at ${m.allCardsMs} ms`,
      );
    }
  });
});
