import type { AutomationView } from '../../projector/views.ts';
import type { Principal } from '../auth.ts';
import type { BudgetUse, GuardTrip } from './data.ts';
import { type Html, html } from './html.ts';
import { actorText } from './layout.ts';
import { mayControl, time } from './ui.ts';

/** The kill switch (pause / resume with a reason), and the budgets and guard trips of the last 24 h. */
export function automationBody(
  a: AutomationView,
  budgets: readonly BudgetUse[],
  trips: readonly GuardTrip[],
  p: Principal,
  now: number,
): Html {
  const verb = a.paused ? 'resume' : 'pause';
  return html`<div id="automation-live" data-live="automation">
<section class="card" aria-labelledby="ks-h">
<h2 id="ks-h">Kill switch</h2>
<p id="automation-state">${a.paused ? html`<strong>Paused</strong> by ${actorText(a.by)} ${time(a.at, now)}: ${a.reason ?? ''}` : html`<strong>Running</strong>: policy-approved actions execute automatically.`}</p>
<p>Policy: ${a.policy ? `${a.policy.policyId}@${a.policy.version} (activated by ${a.policy.author})` : 'none active'}</p>
${
  mayControl(p)
    ? html`<form id="automation-form" data-verb="${verb}">
  <label for="automation-reason">Reason (recorded)</label>
  <input id="automation-reason" name="reason" required maxlength="2000" autocomplete="off">
  <button type="submit" class="${a.paused ? 'primary' : 'danger'}">${a.paused ? 'Resume automation' : 'Pause automation'}</button>
  <p class="result" role="status" aria-live="polite"></p>
</form>`
    : html`<p class="muted">Only an admin may pause or resume automation.</p>`
}
</section>
<h2>Budgets (last 24 h)</h2>
${
  budgets.length
    ? html`<table><thead><tr><th scope="col">Budget</th><th scope="col">Used</th><th scope="col">Limit</th><th scope="col">Last counted</th></tr></thead>
<tbody>${budgets.map((b) => html`<tr><td>${b.key}</td><td class="num">${b.used}</td><td class="num">${b.limit}</td><td>${time(b.lastAt, now)}</td></tr>`)}</tbody></table>`
    : html`<p class="muted">No automatic action was counted against a budget in the last 24 h.</p>`
}
<h2>Guard trips (last 24 h)</h2>
${
  trips.length
    ? html`<table><thead><tr><th scope="col">When</th><th scope="col">Guard</th><th scope="col">Scope</th><th scope="col">Limit</th><th scope="col">Identity</th></tr></thead>
<tbody>${trips.map((t) => html`<tr><td>${time(t.at, now)}</td><td>${t.guard}</td><td>${t.scope}</td><td class="num">${t.limit} / ${t.windowSeconds} s</td><td>${t.identity ?? ''}</td></tr>`)}</tbody></table>`
    : html`<p class="muted">No guard tripped in the last 24 h.</p>`
}
</div>`;
}
