import type { Explanation } from '../../projector/explain.ts';
import type { ActionView } from '../../projector/views.ts';
import type { Principal } from '../auth.ts';
import type { DetectionBrief, evidenceOf } from './data.ts';
import { type Html, html } from './html.ts';
import { args, caseLink, identityLink, list, mayDecide, relative, time } from './ui.ts';

/**
 * The approval queue: every pending action with the facts an analyst needs to decide, grouped so
 * that related approvals (same rule, same action, same stage) can be answered together — each
 * action is still approved or rejected by its own request and recorded on its own.
 */

function groupKey(a: ActionView): string {
  return `${a.ruleId}|${a.type}|${a.stage}|${a.approvalMode}`;
}

function proposer(a: ActionView): string {
  return a.proposedBy ? a.proposedBy : `policy rule ${a.ruleId}@${a.policyVersion}`;
}

function approvalState(a: ActionView): Html {
  if (a.approvalMode === 'two-person') {
    const first = a.approvers[0];
    return first
      ? html`<strong>1 of 2</strong>: first approved by <span class="approver">${first}</span>; a second, different person completes it`
      : html`0 of 2: needs two different people`;
  }
  return html`${a.approvalMode}: ${a.approvalReason}`;
}

function blastRadius(a: ActionView): Html {
  const b = a.blastRadius;
  const notes = [
    `tier ${b.tier}`,
    `${b.consumers} consumer${b.consumers === 1 ? '' : 's'}`,
    b.shared ? 'shared identity' : 'not shared',
    b.thirdParty ? 'third-party grant' : 'no third party',
    b.budgetLimit >= 0 ? `budget ${b.budgetUsed}/${b.budgetLimit}` : '',
  ].filter(Boolean);
  return html`${notes.join(' · ')}`;
}

function reversibility(a: ActionView): Html {
  const rev = a.blastRadius.reversible;
  return html`${rev ? 'reversible' : html`<strong>not reversible</strong>`}${
    a.rollbackPlan.complete
      ? html`; a rollback restores everything`
      : html`; a rollback would leave: ${list(a.rollbackPlan.notes, 'residue not described')}`
  }`;
}

function evidenceSummary(ds: readonly DetectionBrief[]): Html {
  if (!ds.length) return html`<span class="muted">no detection (analyst-initiated)</span>`;
  const max = Math.max(...ds.map((d) => d.confidence));
  const kinds = [...new Set(ds.map((d) => `${d.kind} (${d.source})`))];
  return html`<strong>${max.toFixed(2)}</strong> max over ${ds.length} detection${ds.length === 1 ? '' : 's'}: ${kinds.join(', ')}`;
}

function note(a: ActionView, p: Principal): Html {
  if (a.proposedBy === p.id)
    return html`<p class="note">You proposed this action: another analyst must approve it.</p>`;
  if (a.approvers.includes(p.id))
    return html`<p class="note">You approved first: a second, different analyst completes it.</p>`;
  return html``;
}

function decideForm(a: ActionView, p: Principal): Html {
  if (!mayDecide(p)) return html``;
  return html`<form class="decide" data-action-id="${a.id}" data-digest="${a.argsDigest}">
  ${note(a, p)}
  <label for="c-${a.id}">Comment (required to reject)</label>
  <input id="c-${a.id}" name="comment" maxlength="2000" autocomplete="off">
  <button type="submit" name="verb" value="approve" class="primary">Approve</button>
  <button type="submit" name="verb" value="reject" class="danger">Reject</button>
  <p class="result" role="status" aria-live="polite"></p>
</form>`;
}

export function approvalCard(
  a: ActionView,
  detections: readonly DetectionBrief[],
  p: Principal,
  now: number,
): Html {
  const expiresIn = Date.parse(a.expiresAt) - now;
  return html`<article class="approval card" id="action-${a.id}" data-action="${a.id}" data-group="${groupKey(a)}" aria-labelledby="t-${a.id}">
<header>
  ${mayDecide(p) ? html`<input type="checkbox" class="select" value="${a.id}" aria-label="Select ${a.type} for ${a.identity.provider}:${a.identity.id}">` : ''}
  <h3 id="t-${a.id}"><span class="action-type">${a.type}</span> · ${a.identity.provider}:${a.identity.id}</h3>
  <span class="badge mode-${a.approvalMode}">${a.approvalMode}</span>
  <span class="expires${expiresIn < 10 * 60_000 ? ' soon' : ''}">expires <time datetime="${a.expiresAt}" title="${a.expiresAt}">${relative(a.expiresAt, now)}</time></span>
</header>
<dl class="facts">
  <dt>Identity</dt><dd>${identityLink(a.identity)} <small>(${a.identity.type})</small> · case ${caseLink(a.caseId)}</dd>
  <dt>Rule</dt><dd>${a.ruleId} @ ${a.policyVersion}, stage ${a.stage}</dd>
  <dt>Proposed by</dt><dd class="proposer">${proposer(a)}, ${time(a.proposedAt, now)}</dd>
  <dt>Confidence</dt><dd>${evidenceSummary(detections)}</dd>
  <dt>Blast radius</dt><dd>${blastRadius(a)}</dd>
  <dt>Reversible</dt><dd>${reversibility(a)}</dd>
  <dt>Approval</dt><dd class="approval-state">${approvalState(a)}</dd>
  ${a.guards.length ? html`<dt>Guards</dt><dd>${list(a.guards.map((g) => `${g.guard}: ${g.effect} (${g.reason})`))}</dd>` : ''}
  <dt>Arguments</dt><dd>${args(a.args)}</dd>
</dl>
<details class="detail" data-detail="/console/actions/${encodeURIComponent(a.id)}/detail">
  <summary>Evidence and explanation</summary>
  <div class="detail-body" aria-busy="true">Loading…</div>
</details>
${decideForm(a, p)}
</article>`;
}

/** The queue's display order: groups in the order their oldest action arrived, oldest first within each. */
export function queueOrder(oldestFirst: readonly ActionView[]): ActionView[][] {
  const groups = new Map<string, ActionView[]>();
  for (const a of oldestFirst) {
    const k = groupKey(a);
    const list = groups.get(k);
    if (list) list.push(a);
    else groups.set(k, [a]);
  }
  return [...groups.values()];
}

/** Cards rendered with the page; the rest follow in chunks once it has painted (ids in #queue-more). */
export const FIRST_CARDS = 60;

export function queueBody(
  groups: readonly ActionView[][],
  detections: Map<string, DetectionBrief[]>,
  p: Principal,
  now: number,
  truncated: boolean,
): Html {
  const total = groups.reduce((n, g) => n + g.length, 0);
  const later: string[] = [];
  let shown = 0;
  const cardsOf = (list: readonly ActionView[]) =>
    list.map((a) => {
      if (shown >= FIRST_CARDS) {
        later.push(a.id);
        return '';
      }
      shown += 1;
      return approvalCard(
        a,
        detections.get(a.caseId)?.filter((d) => a.detectionIds.includes(d.id)) ?? [],
        p,
        now,
      );
    });
  const sections = groups.map((list) => {
    const first = list[0]!;
    const k = groupKey(first);
    return html`<section class="group" data-group="${k}" aria-label="${first.ruleId}: ${first.type}, stage ${first.stage}">
<h2>${first.ruleId} → ${first.type} <small>stage ${first.stage}, ${first.approvalMode}, ${list.length} pending</small>
${mayDecide(p) && list.length > 1 ? html`<button type="button" class="link select-group" data-group="${k}">Select all shown</button>` : ''}</h2>
${cardsOf(list)}
</section>`;
  });
  return html`<p class="lead"><span id="queue-count">${total}</span> action${total === 1 ? '' : 's'} waiting for a decision${truncated ? ' (the 1,000 most recent are shown; list the rest with GET /v1/actions?status=proposed)' : ''}.</p>
${
  mayDecide(p)
    ? html`<div class="bulk" id="bulk" role="region" aria-label="Answer selected approvals together">
  <label for="bulk-comment">Comment for the selected</label>
  <input id="bulk-comment" maxlength="2000" autocomplete="off">
  <button type="button" id="bulk-approve" class="primary">Approve selected</button>
  <button type="button" id="bulk-reject" class="danger">Reject selected</button>
  <span id="bulk-result" role="status" aria-live="polite"></span>
</div>`
    : html`<p class="muted">Read only: your roles (${p.roles.join(', ')}) may not approve or reject.</p>`
}
<div id="queue" data-live="queue">
${total === 0 ? html`<p class="empty" id="queue-empty">Nothing is waiting for approval.</p>` : sections}
</div>
${later.length ? html`<p id="queue-more" class="muted" data-ids="${later.join(' ')}">Loading ${later.length} more…</p>` : ''}`;
}

/** The lazily loaded part of a card: each detection's evidence and the explain narrative. */
export function approvalDetail(
  evidence: Awaited<ReturnType<typeof evidenceOf>>,
  explanation: Explanation | undefined,
): Html {
  return html`<h4>Detections</h4>
${
  evidence.length
    ? html`<ul class="plain">${evidence.map(
        (d) =>
          html`<li><strong>${d.kind}</strong> from ${d.source}, confidence ${d.confidence.toFixed(2)}, severity ${d.severity}${d.title ? html` — ${d.title}` : ''}<br><small>${d.occurredAt}</small><pre class="evidence">${JSON.stringify(d.evidence, null, 2)}</pre></li>`,
      )}</ul>`
    : html`<p class="muted">No detection: an analyst proposed it.</p>`
}
<h4>Why (from the event streams)</h4>
${explanation ? html`<ol class="narrative">${explanation.narrative.map((s) => html`<li>${s}</li>`)}</ol>` : html`<p class="muted">No explanation recorded.</p>`}`;
}
