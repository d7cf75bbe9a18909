import type { AutomationView } from '../../projector/views.ts';
import type { Principal } from '../auth.ts';
import { type Html, html } from './html.ts';
import { CSRF_FIELD } from './session.ts';

/** The console's page shell: navigation, who is signed in, the kill-switch banner, live regions. */

export type PageId = 'queue' | 'cases' | 'case' | 'identity' | 'automation' | 'audit' | 'login';

const NAV: Array<{ id: PageId; href: string; label: string }> = [
  { id: 'queue', href: '/', label: 'Approvals' },
  { id: 'cases', href: '/cases', label: 'Cases' },
  { id: 'automation', href: '/automation', label: 'Automation' },
  { id: 'audit', href: '/audit', label: 'Audit' },
];

export interface ShellContext {
  principal: Principal;
  csrfToken: string;
  automation: AutomationView;
  pendingCount: number;
  /** The views' position this page shows: its live feed starts right after it (no event falls in between). */
  position: number;
}

export function actorText(by: AutomationView['by']): string {
  if (!by) return 'unknown';
  if (by.kind === 'policy') return `policy ${by.ruleId}@${by.policyVersion}`;
  return by.id;
}

function pausedBanner(a: AutomationView): Html {
  return html`<div id="paused-banner" class="banner paused" role="alert" ${a.paused ? '' : 'hidden'}>
    <strong>Automation is paused</strong>
    <span data-paused-detail>${a.paused ? `by ${actorText(a.by)}: ${a.reason ?? ''}` : ''}</span>
    — nothing is approved automatically until it is resumed. <a href="/automation">Automation</a>
  </div>`;
}

export function page(opts: { id: PageId; title: string; ctx: ShellContext; body: Html }): Html {
  const { ctx } = opts;
  const current = opts.id === 'case' || opts.id === 'identity' ? 'cases' : opts.id;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${ctx.csrfToken}">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"historyCacheSize":0}'>
<title>${opts.title} · Tourniquet</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/htmx.min.js" defer></script>
<script src="/assets/console.js" defer></script>
</head>
<body data-page="${opts.id}" data-position="${ctx.position}" data-principal="${ctx.principal.id}" data-roles="${ctx.principal.roles.join(' ')}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <span class="brand">Tourniquet</span>
  <nav aria-label="Console">
    ${NAV.map(
      (n) =>
        html`<a href="${n.href}" ${n.id === current ? html`aria-current="page"` : ''}>${n.label}${
          n.id === 'queue' ? html` <span class="count" id="pending-count">${ctx.pendingCount}</span>` : ''
        }</a>`,
    )}
    <a href="/docs">API</a>
  </nav>
  <div class="who">
    <span>${ctx.principal.id} <small>(${ctx.principal.roles.join(', ')})</small></span>
    <form method="post" action="/logout" class="inline">
      <input type="hidden" name="${CSRF_FIELD}" value="${ctx.csrfToken}">
      <button type="submit" class="link">Sign out</button>
    </form>
  </div>
</header>
${pausedBanner(ctx.automation)}
<div id="announcer" class="sr-only" aria-live="polite"></div>
<div id="toast" class="toast" role="status" hidden></div>
<main id="main" tabindex="-1">
<h1>${opts.title}</h1>
${opts.body}
</main>
</body>
</html>`;
}

/** A page without the signed-in shell (sign-in, errors before a session exists). */
export function barePage(title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Tourniquet</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/console.css">
</head>
<body data-page="login">
<main id="main" class="narrow">
<h1>${title}</h1>
${body}
</main>
</body>
</html>`;
}
