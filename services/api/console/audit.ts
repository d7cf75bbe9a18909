import type { AuditEvent, Page } from '../../projector/views.ts';
import type { Principal } from '../auth.ts';
import { type Html, html } from './html.ts';
import { mayExport } from './ui.ts';

/** Audit: search by identity, case, actor, type and time; export as CSV or NDJSON; verify the chain. */

const AUDIT_FIELDS = ['identity', 'case', 'actor', 'type', 'from', 'to'] as const;
export type AuditSearch = Partial<Record<(typeof AUDIT_FIELDS)[number], string>>;

function exportHref(q: AuditSearch, format: 'csv' | 'ndjson'): string {
  const params = new URLSearchParams();
  for (const f of AUDIT_FIELDS) if (q[f]) params.set(f, q[f]!);
  if (format === 'csv') params.set('format', 'csv');
  return `/v1/audit/export?${params.toString()}`;
}

export function auditBody(
  q: AuditSearch,
  result: Page<AuditEvent> | { error: string },
  eventTypes: readonly string[],
  p: Principal,
): Html {
  const labels: Record<(typeof AUDIT_FIELDS)[number], string> = {
    identity: 'Identity (provider:id)',
    case: 'Case id',
    actor: 'Actor',
    type: 'Event type',
    from: 'From (RFC 3339)',
    to: 'To (RFC 3339)',
  };
  return html`<form class="filters" method="get" action="/audit" role="search" aria-label="Search the audit trail">
${AUDIT_FIELDS.map((f) =>
  f === 'type'
    ? html`<label for="a-type">${labels[f]}</label><select id="a-type" name="type"><option value="">any</option>${eventTypes.map((t) => html`<option ${q.type === t ? 'selected' : ''}>${t}</option>`)}</select>`
    : html`<label for="a-${f}">${labels[f]}</label><input id="a-${f}" name="${f}" value="${q[f] ?? ''}" autocomplete="off">`,
)}
<button type="submit" class="primary">Search</button>
</form>
<div class="toolbar">
${
  mayExport(p)
    ? html`<a class="button" id="export-csv" href="${exportHref(q, 'csv')}" download>Export CSV</a>
<a class="button" id="export-ndjson" href="${exportHref(q, 'ndjson')}" download>Export NDJSON</a>
<button type="button" id="verify-chain">Verify the chain</button>`
    : html`<span class="muted">Export and chain verification are for auditors and admins.</span>`
}
<div id="verify-result" role="status" aria-live="polite"></div>
</div>
<div id="audit-live">
${
  'error' in result
    ? html`<p class="error" role="alert">${result.error}</p>`
    : html`<p class="lead">${result.items.length}${result.nextCursor ? '+' : ''} event${result.items.length === 1 ? '' : 's'}${result.nextCursor ? ' (the first 200; narrow the search or export all)' : ''}.</p>
<table class="audit"><thead><tr><th scope="col">#</th><th scope="col">Type</th><th scope="col">Occurred</th><th scope="col">Identity</th><th scope="col">Case</th><th scope="col">Action</th><th scope="col">Actor</th></tr></thead>
<tbody>${result.items.map(
        (e) =>
          html`<tr${e.missingFromStore ? html` class="missing"` : ''}><td class="num">${e.position}</td><td>${e.type}</td><td><time datetime="${e.occurredAt}">${e.occurredAt}</time></td><td>${e.index.identity ?? ''}</td><td>${e.index.caseId ? html`<a href="/cases/${encodeURIComponent(e.index.caseId)}">${e.index.caseId}</a>` : ''}</td><td>${e.index.actionId ?? ''}</td><td>${e.index.actor ?? ''}</td></tr>`,
      )}</tbody></table>`
}
</div>`;
}
