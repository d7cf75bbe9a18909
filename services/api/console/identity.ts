import type { CatalogueEntry } from '../../../schemas/catalogue.ts';
import type { IdentityView } from '../../projector/views.ts';
import { type Html, html } from './html.ts';
import { caseLink, list, time } from './ui.ts';

/** One identity: current state, open case, residue left by past rollbacks, catalogue entry. */
export function identityBody(v: IdentityView, entry: CatalogueEntry | undefined, now: number): Html {
  return html`<div id="identity-live" data-live="identity">
<dl class="facts">
  <dt>State</dt><dd id="identity-state">${v.contained ? html`<strong>contained</strong>: ${v.containment.length} action(s) in effect` : 'not contained'}</dd>
  <dt>Open case</dt><dd>${v.openCaseId ? caseLink(v.openCaseId) : html`<span class="muted">none</span>`}</dd>
  <dt>All cases</dt><dd>${v.caseIds.length ? v.caseIds.map((c, i) => html`${i ? ', ' : ''}${caseLink(c)}`) : html`<span class="muted">none</span>`}</dd>
  <dt>Detections</dt><dd>${v.detectionCount}, first seen ${time(v.firstSeenAt, now)}, last event ${time(v.lastEventAt, now)}</dd>
</dl>
<h2>Catalogue entry</h2>
${
  entry
    ? html`<dl class="facts">
  <dt>Owner</dt><dd>${entry.owner ?? '—'}</dd>
  <dt>Tier</dt><dd>${entry.tier}</dd>
  <dt>Consumers</dt><dd>${entry.consumers}${entry.consumers > 1 ? ' (shared)' : ''}</dd>
  <dt>Break-glass</dt><dd>${entry.breakGlass ? html`<strong>yes</strong>: never actioned automatically` : 'no'}</dd>
  <dt>Third party</dt><dd>${entry.thirdParty ? `${entry.thirdParty.partner} (grant ${entry.thirdParty.grant})` : 'none'}</dd>
  <dt>Secrets</dt><dd>${entry.secrets}</dd>
  <dt>Tags</dt><dd>${entry.tags.join(', ') || '—'}</dd>
</dl>`
    : html`<p class="muted">Not in the identity catalogue: the policy treats it with its defaults.</p>`
}
<h2>Containment in effect</h2>
${
  v.containment.length
    ? html`<ul class="plain">${v.containment.map((c) => html`<li>${c.type} (${c.actionId}) in ${caseLink(c.caseId)}, executed ${time(c.executedAt, now)}${c.verified ? ', verified' : ''}</li>`)}</ul>`
    : html`<p class="muted">none</p>`
}
<h2>Pending approvals</h2>
${
  v.pendingApprovals.length
    ? html`<ul class="plain">${v.pendingApprovals.map((a) => html`<li><a href="/#action-${a.actionId}">${a.type}</a> (${a.approvalMode}${a.approvers.length ? `, approved by ${a.approvers.join(', ')}` : ''}), expires ${time(a.expiresAt, now)}</li>`)}</ul>`
    : html`<p class="muted">none</p>`
}
<h2>Residue left by rollbacks</h2>
${
  v.residue.length
    ? html`<ul class="plain">${v.residue.map((r) => html`<li>${r.type} (${r.actionId}) rolled back ${time(r.rolledBackAt, now)}: ${r.complete ? 'fully restored' : list(r.residue)}</li>`)}</ul>`
    : html`<p class="muted">none</p>`
}
</div>`;
}
