import type { IdentityRef } from '../../../schemas/detection.ts';
import type { ActionView } from '../../projector/views.ts';
import type { Principal, Role } from '../auth.ts';
import { type Html, html } from './html.ts';

/** Small pieces shared by the console pages: links, times, badges, who may do what. */

const has = (p: Principal, roles: readonly Role[]) => p.roles.some((r) => roles.includes(r));
/** Same roles as the JSON API's routes (ROUTE_ROLES): the page only hides what the API would refuse. */
export const mayDecide = (p: Principal) => has(p, ['analyst', 'admin']);
export const mayControl = (p: Principal) => has(p, ['admin']);
export const mayExport = (p: Principal) => has(p, ['auditor', 'admin']);

function identityHref(i: IdentityRef): string {
  return `/identities/${encodeURIComponent(i.provider)}/${encodeURIComponent(i.id)}`;
}

export function identityLink(i: IdentityRef): Html {
  return html`<a href="${identityHref(i)}">${i.provider}:${i.id}</a>`;
}

export function caseLink(id: string): Html {
  return html`<a href="/cases/${encodeURIComponent(id)}">${id}</a>`;
}

/** "in 23 min", "3 h ago": coarse, for people, beside the exact time in a <time> element. */
export function relative(iso: string | null | undefined, now: number): string {
  if (!iso) return '';
  const ms = Date.parse(iso) - now;
  const abs = Math.abs(ms);
  const unit =
    abs < 60_000
      ? `${Math.round(abs / 1000)} s`
      : abs < 3600_000
        ? `${Math.round(abs / 60_000)} min`
        : abs < 86_400_000
          ? `${(abs / 3600_000).toFixed(1)} h`
          : `${(abs / 86_400_000).toFixed(1)} d`;
  return ms >= 0 ? `in ${unit}` : `${unit} ago`;
}

export function time(iso: string | null | undefined, now: number): Html {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime="${iso}" title="${iso}">${relative(iso, now)}</time>`;
}

const STATUS_TEXT: Record<ActionView['status'], string> = {
  proposed: 'pending approval',
  approved: 'approved',
  executed: 'executed',
  rolled_back: 'rolled back',
  rejected: 'rejected',
  expired: 'expired',
  failed: 'failed',
};

export function statusBadge(a: Pick<ActionView, 'status' | 'verified'>): Html {
  // verified only describes an action in effect; after a rollback the status says it all
  const verified = a.status === 'executed' && a.verified;
  const text = verified ? 'executed, verified' : STATUS_TEXT[a.status];
  return html`<span class="badge s-${a.status}${verified ? ' verified' : ''}" data-status="${a.status}${verified ? '-verified' : ''}">${text}</span>`;
}

export function list(items: readonly string[], empty = 'none'): Html {
  return items.length
    ? html`<ul class="plain">${items.map((i) => html`<li>${i}</li>`)}</ul>`
    : html`<span class="muted">${empty}</span>`;
}

/** Arguments as a definition list (values JSON-encoded when not plain text). */
export function args(a: Record<string, unknown>): Html {
  const entries = Object.entries(a);
  if (!entries.length) return html`<span class="muted">none</span>`;
  return html`<dl class="args">${entries.map(
    ([k, v]) => html`<dt>${k}</dt><dd><code>${typeof v === 'string' ? v : JSON.stringify(v)}</code></dd>`,
  )}</dl>`;
}
