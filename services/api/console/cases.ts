import { SEVERITIES } from '../../../schemas/detection.ts';
import type { ActionView, AutomationView, CaseDetail, CaseView } from '../../projector/views.ts';
import type { Principal } from '../auth.ts';
import type { DetectionBrief } from './data.ts';
import { type Html, html } from './html.ts';
import { actorText } from './layout.ts';
import { caseLink, identityLink, list, mayDecide, relative, statusBadge, time } from './ui.ts';

/** Cases: the triage list (sort, filter) and one case with its timeline, state and verdict. */

export interface TriageRow {
  c: CaseView;
  maxSeverity: string;
  kinds: string[];
  titles: string[];
  pending: number;
}

export const CASE_SORTS = ['severity', 'age', 'pending', 'identity'] as const;
type CaseSort = (typeof CASE_SORTS)[number];

export interface CaseListQuery {
  status: 'open' | 'resolved' | 'all';
  sort: CaseSort;
  severity: string;
  q: string;
}

const sevRank = (s: string) => SEVERITIES.indexOf(s as (typeof SEVERITIES)[number]);

export function triageRows(
  cases: readonly CaseView[],
  detections: Map<string, DetectionBrief[]>,
  pending: Map<string, number>,
): TriageRow[] {
  return cases.map((c) => {
    const ds = detections.get(c.id) ?? [];
    const maxSeverity = ds.reduce((m, d) => (sevRank(d.severity) > sevRank(m) ? d.severity : m), 'info');
    return {
      c,
      maxSeverity: ds.length ? maxSeverity : '—',
      kinds: [...new Set(ds.map((d) => d.kind))],
      titles: [...new Set(ds.map((d) => d.title).filter((t): t is string => !!t))],
      pending: pending.get(c.id) ?? 0,
    };
  });
}

export function filterAndSort(rows: TriageRow[], q: CaseListQuery): TriageRow[] {
  const needle = q.q.trim().toLowerCase();
  const minSev = q.severity ? sevRank(q.severity) : -1;
  const kept = rows.filter(
    (r) =>
      (minSev < 0 || sevRank(r.maxSeverity) >= minSev) &&
      (!needle ||
        r.c.identityKey.toLowerCase().includes(needle) ||
        r.c.id.toLowerCase().includes(needle) ||
        r.kinds.some((k) => k.includes(needle)) ||
        r.titles.some((t) => t.toLowerCase().includes(needle))),
  );
  const by: Record<CaseSort, (a: TriageRow, b: TriageRow) => number> = {
    severity: (a, b) => sevRank(b.maxSeverity) - sevRank(a.maxSeverity) || b.pending - a.pending,
    age: (a, b) => a.c.openedAt.localeCompare(b.c.openedAt),
    pending: (a, b) => b.pending - a.pending || sevRank(b.maxSeverity) - sevRank(a.maxSeverity),
    identity: (a, b) => a.c.identityKey.localeCompare(b.c.identityKey),
  };
  return kept.sort(by[q.sort]);
}

function sortLink(q: CaseListQuery, sort: CaseSort, label: string): Html {
  const params = new URLSearchParams({ status: q.status, sort, severity: q.severity, q: q.q });
  return html`<a href="/cases?${params.toString()}" ${q.sort === sort ? html`aria-current="true"` : ''}>${label}</a>`;
}

export function casesBody(rows: readonly TriageRow[], q: CaseListQuery, now: number): Html {
  const opt = (v: string, cur: string, label = v) =>
    html`<option value="${v}" ${v === cur ? 'selected' : ''}>${label}</option>`;
  return html`<form class="filters" method="get" action="/cases" role="search" aria-label="Filter cases"
  hx-get="/cases" hx-target="#cases-live" hx-select="#cases-live" hx-swap="outerHTML" hx-push-url="true" hx-trigger="change, submit">
  <label for="f-status">Status</label>
  <select id="f-status" name="status">${opt('open', q.status)}${opt('resolved', q.status)}${opt('all', q.status)}</select>
  <label for="f-severity">Severity at least</label>
  <select id="f-severity" name="severity">${opt('', q.severity, 'any')}${SEVERITIES.map((s) => opt(s, q.severity))}</select>
  <label for="f-q">Identity, kind or title</label>
  <input id="f-q" name="q" value="${q.q}" type="search">
  <label for="f-sort">Sort by</label>
  <select id="f-sort" name="sort">${CASE_SORTS.map((s) => opt(s, q.sort))}</select>
  <button type="submit">Filter</button>
</form>
<div id="cases-live" data-live="cases">
<p class="lead">${rows.length} case${rows.length === 1 ? '' : 's'}.</p>
<table class="cases">
<caption class="sr-only">Cases, sorted by ${q.sort}</caption>
<thead><tr>
  <th scope="col">${sortLink(q, 'severity', 'Max severity')}</th>
  <th scope="col">Case</th>
  <th scope="col">${sortLink(q, 'identity', 'Identity')}</th>
  <th scope="col">Kinds</th>
  <th scope="col">Titles</th>
  <th scope="col">${sortLink(q, 'pending', 'Pending approvals')}</th>
  <th scope="col">${sortLink(q, 'age', 'Age')}</th>
  <th scope="col">Status</th>
</tr></thead>
<tbody>
${rows.map(
  (r) => html`<tr data-case="${r.c.id}">
  <td><span class="sev sev-${r.maxSeverity}">${r.maxSeverity}</span></td>
  <td>${caseLink(r.c.id)}</td>
  <td>${identityLink(r.c.identity)}</td>
  <td>${r.kinds.join(', ')}</td>
  <td>${r.titles.slice(0, 3).join('; ')}</td>
  <td class="num">${r.pending || ''}</td>
  <td>${time(r.c.openedAt, now)}</td>
  <td>${r.c.status === 'open' ? 'open' : `resolved: ${r.c.verdict}`}</td>
</tr>`,
)}
</tbody>
</table>
</div>`;
}

/** Where the case stands when nothing (more) has happened: what each action and rule is waiting for. */
function whyNothingYet(c: CaseDetail, automation: AutomationView, now: number): Html {
  const reasons: Html[] = [];
  if (automation.paused)
    reasons.push(
      html`Automation is paused (by ${actorText(automation.by)}: ${automation.reason ?? ''}): nothing is approved automatically.`,
    );
  if (c.actions.length === 0)
    reasons.push(
      html`No rule has proposed an action yet: ${c.detections.length} detection${c.detections.length === 1 ? '' : 's'} (${[...new Set(c.detections.map((d) => `${d.kind} ${d.confidence.toFixed(2)}`))].join(', ')}) ${c.detections.length === 1 ? 'has' : 'have'} not met a rule's threshold (minimum confidence, count within a window, distinct sources) of policy ${automation.policy ? `${automation.policy.policyId}@${automation.policy.version}` : '(none active)'}.`,
    );
  for (const a of c.actions) {
    if (a.status === 'proposed')
      reasons.push(
        html`${a.type} (stage ${a.stage}) waits for ${a.approvalMode} approval${a.approvers.length ? html` — approved so far by ${a.approvers.join(', ')}` : ''}; it expires ${relative(a.expiresAt, now)}.`,
      );
    else if (a.status === 'approved')
      reasons.push(
        html`${a.type} is approved and waits for the executor (${a.claims.length} claim(s) so far).`,
      );
    else if (a.status === 'failed' && a.failure)
      reasons.push(
        html`${a.type} failed in ${a.failure.phase} at ${a.failure.provider}: ${a.failure.code} ${a.failure.message}.`,
      );
    else if (a.status === 'executed' && !a.verified)
      reasons.push(html`${a.type} is executed; its verification has not reported yet.`);
  }
  for (const t of c.timeline.filter((e) => e.type === 'GuardTripped'))
    reasons.push(html`Guard tripped: ${t.summary}`);
  if (!reasons.length) return html``;
  return html`<section aria-labelledby="why-h" class="why"><h2 id="why-h">Why nothing happened yet</h2>
<ul class="plain">${reasons.map((r) => html`<li>${r}</li>`)}</ul></section>`;
}

function actionRow(a: ActionView, now: number): Html {
  return html`<tr data-action="${a.id}">
  <td>${a.type} <small>stage ${a.stage}</small></td>
  <td>${statusBadge(a)}</td>
  <td>${a.ruleId}@${a.policyVersion}</td>
  <td>${a.approvals.map((x) => x.approver).join(', ') || html`<span class="muted">—</span>`}</td>
  <td>${time(a.executedAt, now)}</td>
  <td class="residue">${a.status === 'rolled_back' ? list(a.residue, 'nothing: fully restored') : a.rollbackPlan.complete ? html`<span class="muted">rollback would be complete</span>` : html`would leave: ${list(a.rollbackPlan.notes)}`}</td>
</tr>`;
}

/** The rollback plan a benign verdict would carry out: executed actions, newest first, and their residue. */
function rollbackPlan(c: CaseDetail): Html {
  const inEffect = c.actions.filter((a) => a.status === 'executed' || a.status === 'approved').reverse();
  const pending = c.actions.filter((a) => a.status === 'proposed');
  return html`<div id="rollback-plan" class="plan" hidden>
<h3>A benign verdict will</h3>
<ul class="plain">
${inEffect.map(
  (a) =>
    html`<li>roll back <strong>${a.type}</strong> (${a.id})${a.rollbackPlan.complete ? html` — fully restorable` : html` — <strong>residue</strong>: ${a.rollbackPlan.notes.join('; ') || 'not fully restorable'}`}</li>`,
)}
${pending.map((a) => html`<li>reject pending <strong>${a.type}</strong> (${a.id})</li>`)}
${inEffect.length + pending.length === 0 ? html`<li>close the case; no action is in effect</li>` : ''}
</ul>
</div>`;
}

function verdictForm(c: CaseDetail, p: Principal): Html {
  if (c.status !== 'open' || !mayDecide(p)) return html``;
  return html`<section aria-labelledby="verdict-h" class="card">
<h2 id="verdict-h">Verdict</h2>
<form id="verdict-form" data-case-id="${c.id}">
  <fieldset><legend>This case is</legend>
    <label><input type="radio" name="verdict" value="malicious" required> malicious (keep the containment)</label>
    <label><input type="radio" name="verdict" value="benign" required> benign (roll back)</label>
  </fieldset>
  <label for="verdict-comment">Comment</label>
  <input id="verdict-comment" name="comment" maxlength="2000" autocomplete="off">
  ${rollbackPlan(c)}
  <button type="submit" class="primary" id="verdict-submit">Record verdict</button>
  <p class="result" role="status" aria-live="polite"></p>
</form>
</section>`;
}

export function caseBody(c: CaseDetail, p: Principal, automation: AutomationView, now: number): Html {
  return html`<div id="case-live" data-live="case" data-case="${c.id}">
<dl class="facts">
  <dt>Identity</dt><dd>${identityLink(c.identity)}</dd>
  <dt>Status</dt><dd id="case-status">${c.status === 'open' ? 'open' : html`resolved: <strong>${c.verdict}</strong> by ${actorText(c.resolvedBy)}`}</dd>
  <dt>Opened</dt><dd>${time(c.openedAt, now)}</dd>
</dl>
${c.status === 'open' ? whyNothingYet(c, automation, now) : ''}
<h2>Actions</h2>
${
  c.actions.length
    ? html`<table class="actions"><thead><tr><th scope="col">Action</th><th scope="col">Status</th><th scope="col">Rule</th><th scope="col">Approved by</th><th scope="col">Executed</th><th scope="col">Residue</th></tr></thead>
<tbody>${c.actions.map((a) => actionRow(a, now))}</tbody></table>`
    : html`<p class="muted">No action.</p>`
}
<h2>Detections</h2>
<table><thead><tr><th scope="col">Kind</th><th scope="col">Source</th><th scope="col">Confidence</th><th scope="col">Severity</th><th scope="col">Title</th><th scope="col">Occurred</th></tr></thead>
<tbody>${c.detections.map(
    (d) =>
      html`<tr><td>${d.kind}</td><td>${d.source}</td><td class="num">${d.confidence.toFixed(2)}</td><td><span class="sev sev-${d.severity}">${d.severity}</span></td><td>${d.title ?? ''}</td><td>${time(d.occurredAt, now)}</td></tr>`,
  )}</tbody></table>
<h2>Timeline</h2>
<ol class="timeline">${c.timeline.map(
    (e) =>
      html`<li class="t-${e.type}"><time datetime="${e.at}">${e.at}</time> <strong>${e.type}</strong> ${e.summary}</li>`,
  )}</ol>
</div>
${verdictForm(c, p)}`;
}
