import type { ProposalReversibility } from '../../schemas/capabilities.ts';
import type { RecordedEvent } from '../../schemas/events.ts';

/**
 * What an approver needs to decide, the same facts the console's queue shows: who, what rule at
 * which stage, the exact arguments (and their digest, which the buttons bind to), how strong the
 * evidence is, the blast radius, whether a rollback would be complete, and when the request expires.
 * Folded from the identity's event stream alone (the proposal, its detections, the decisions so far).
 */
export interface ApprovalFacts {
  actionId: string;
  caseId: string;
  action: string;
  identity: { provider: string; id: string; type: string };
  ruleId: string;
  policyVersion: string;
  stage: number;
  args: Record<string, unknown>;
  argsDigest: string;
  approvalMode: string;
  approvalReason: string;
  expiresAt: string;
  proposedBy: string | null;
  /** Highest confidence among the detections that triggered it. */
  confidence: number | null;
  evidence: Array<{
    source: string;
    kind: string;
    confidence: number;
    severity: string;
    title: string | null;
  }>;
  blastRadius: { tier: string; consumers: number; shared: boolean; thirdParty: boolean; reversible: boolean };
  rollback: { complete: boolean; residue: string[] };
  /** What the acting provider declared it can undo of this action (null: not known). */
  provider: ProposalReversibility | null;
  guards: string[];
  consoleUrl: string | null;
}

export type Outcome =
  | { kind: 'pending'; approvers: string[] }
  | { kind: 'approved'; approvers: string[] }
  | { kind: 'rejected'; by: string; reason: string }
  | { kind: 'expired'; at: string }
  | { kind: 'executed'; approvers: string[] }
  | { kind: 'failed'; message: string };

const actorName = (by: { kind: string; id?: string; ruleId?: string }) =>
  by.kind === 'human' || by.kind === 'system' ? (by.id ?? by.kind) : `policy (${by.ruleId ?? 'rule'})`;

/**
 * The facts and the outcome so far of one action, from the events of its identity's stream in
 * order; undefined when the stream holds no proposal for it.
 */
export function foldAction(
  events: readonly RecordedEvent[],
  actionId: string,
  consoleUrl?: string,
): { facts: ApprovalFacts; outcome: Outcome } | undefined {
  const detections = new Map<string, ApprovalFacts['evidence'][number]>();
  let facts: ApprovalFacts | undefined;
  let outcome: Outcome = { kind: 'pending', approvers: [] };
  const approvers: string[] = [];
  for (const e of events) {
    if (e.type === 'DetectionReceived') {
      const d = e.data.detection;
      detections.set(d.id, {
        source: d.source,
        kind: d.kind,
        confidence: d.confidence,
        severity: d.severity,
        title: d.title ?? null,
      });
      continue;
    }
    if ((e.data as { actionId?: string }).actionId !== actionId) continue;
    switch (e.type) {
      case 'ActionProposed': {
        const p = e.data;
        const evidence = p.detectionIds.flatMap((id) => {
          const d = detections.get(id);
          return d ? [d] : [];
        });
        facts = {
          actionId,
          caseId: p.caseId,
          action: p.action,
          identity: { provider: p.identity.provider, id: p.identity.id, type: p.identity.type },
          ruleId: p.ruleId,
          policyVersion: p.policyVersion,
          stage: p.stage,
          args: p.args,
          argsDigest: p.argsDigest,
          approvalMode: p.approval.mode,
          approvalReason: p.approval.reason,
          expiresAt: p.approval.expiresAt,
          proposedBy:
            p.ruleId === 'manual' && typeof p.args.proposedBy === 'string' ? p.args.proposedBy : null,
          confidence: evidence.length > 0 ? Math.max(...evidence.map((d) => d.confidence)) : null,
          evidence,
          blastRadius: {
            tier: p.blastRadius.tier,
            consumers: p.blastRadius.consumers,
            shared: p.blastRadius.shared,
            thirdParty: p.blastRadius.thirdParty,
            reversible: p.blastRadius.reversible,
          },
          rollback: { complete: p.rollback.complete, residue: p.rollback.notes },
          provider: p.reversibility ?? null,
          guards: p.guards.map((g) => `${g.guard}: ${g.reason}`),
          consoleUrl: consoleUrl
            ? `${consoleUrl.replace(/\/+$/, '')}/cases/${encodeURIComponent(p.caseId)}`
            : null,
        };
        break;
      }
      case 'ActionApproved':
        approvers.push(actorName(e.data.by));
        outcome = e.data.final
          ? { kind: 'approved', approvers: [...approvers] }
          : { kind: 'pending', approvers: [...approvers] };
        break;
      case 'ActionRejected':
        outcome = { kind: 'rejected', by: actorName(e.data.by), reason: e.data.reason };
        break;
      case 'ActionExpired':
        outcome = { kind: 'expired', at: e.data.expiredAt };
        break;
      case 'ActionExecuted':
        outcome = { kind: 'executed', approvers: [...approvers] };
        break;
      case 'ActionFailed':
        if (e.data.phase !== 'rollback') outcome = { kind: 'failed', message: e.data.error.message };
        break;
      default:
        break;
    }
  }
  return facts ? { facts, outcome } : undefined;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
/** Slack mrkdwn: &, < and > are control characters. */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function outcomeText(o: Outcome, mode: string): string {
  switch (o.kind) {
    case 'pending':
      return o.approvers.length > 0
        ? `:hourglass: Approved by ${esc(o.approvers.join(', '))}; ${mode === 'two-person' ? 'a second, different person must approve' : 'waiting'}`
        : ':hourglass: Waiting for approval';
    case 'approved':
      return `:white_check_mark: Approved by ${esc(o.approvers.join(', '))}`;
    case 'executed':
      return `:white_check_mark: Approved by ${esc(o.approvers.join(', ') || 'policy')} and carried out`;
    case 'rejected':
      return `:no_entry: Rejected by ${esc(o.by)}: ${esc(o.reason)}`;
    case 'expired':
      return `:alarm_clock: Expired at ${o.at} without a decision`;
    case 'failed':
      return `:warning: Approved, but execution failed: ${esc(o.message)}`;
  }
}

/** Plain text (notifications, screen readers, clients without blocks). */
export function summaryText(f: ApprovalFacts): string {
  return `Approval needed (${f.approvalMode}): ${f.action} on ${f.identity.provider}:${f.identity.id} — rule ${f.ruleId}, stage ${f.stage}, expires ${f.expiresAt}`;
}

/** Slack Block Kit message: the facts, the outcome so far, and the buttons while a decision is open. */
export function slackBlocks(f: ApprovalFacts, o: Outcome): unknown[] {
  const evidence =
    f.evidence.length === 0
      ? '_none recorded_'
      : f.evidence
          .slice(0, 5)
          .map(
            (e) =>
              `• ${esc(e.source)} ${esc(e.kind)} (${e.confidence.toFixed(2)}, ${esc(e.severity)})${e.title ? ` ${esc(clip(e.title, 80))}` : ''}`,
          )
          .join('\n');
  const blast = `tier ${esc(f.blastRadius.tier)}, ${f.blastRadius.consumers} consumer(s)${f.blastRadius.shared ? ', shared' : ''}${f.blastRadius.thirdParty ? ', third-party grant' : ''}`;
  const residue = [...f.rollback.residue, ...(f.provider?.residue ?? [])];
  const rollback = f.rollback.complete
    ? 'complete'
    : `incomplete — residue: ${esc(residue.join('; ') || 'unspecified')}`;
  const reversible = f.provider
    ? `${esc(f.provider.reversibility)} on ${esc(f.provider.type)}`
    : f.blastRadius.reversible
      ? 'yes'
      : 'no';
  const blocks: unknown[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: clip(`Approval needed: ${f.action} on ${f.identity.id}`, 150) },
    },
    {
      type: 'section',
      fields: [
        {
          type: 'mrkdwn',
          text: `*Identity*\n${esc(`${f.identity.provider}:${f.identity.id}`)} (${esc(f.identity.type)})`,
        },
        { type: 'mrkdwn', text: `*Rule / stage*\n${esc(f.ruleId)} @ ${esc(f.policyVersion)} / ${f.stage}` },
        { type: 'mrkdwn', text: `*Approval*\n${esc(f.approvalMode)}: ${esc(clip(f.approvalReason, 200))}` },
        { type: 'mrkdwn', text: `*Confidence*\n${f.confidence === null ? 'n/a' : f.confidence.toFixed(2)}` },
        { type: 'mrkdwn', text: `*Blast radius*\n${blast}` },
        {
          type: 'mrkdwn',
          text: `*Reversible*\n${reversible}; rollback ${clip(rollback, 1500)}`,
        },
        {
          type: 'mrkdwn',
          text: `*Expires*\n<!date^${Math.floor(Date.parse(f.expiresAt) / 1000)}^{date_short_pretty} {time}|${f.expiresAt}>`,
        },
        { type: 'mrkdwn', text: `*Proposed by*\n${esc(f.proposedBy ?? `policy (${f.ruleId})`)}` },
      ],
    },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `*Arguments* (digest \`${f.argsDigest.slice(0, 16)}\`)\n\`\`\`${clip(JSON.stringify(f.args, null, 1), 1200)}\`\`\``,
      },
    },
    { type: 'section', text: { type: 'mrkdwn', text: `*Evidence*\n${evidence}` } },
  ];
  if (f.guards.length > 0)
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: esc(clip(`Guards: ${f.guards.join('; ')}`, 2000)) }],
    });
  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: outcomeText(o, f.approvalMode) } });
  if (o.kind === 'pending') {
    // value = the action and the digest of the arguments shown: an approval binds to exactly these
    const value = `${f.actionId}|${f.argsDigest}`;
    blocks.push({
      type: 'actions',
      block_id: 'tq_decision',
      elements: [
        {
          type: 'button',
          action_id: 'tq_approve',
          style: 'primary',
          text: { type: 'plain_text', text: 'Approve' },
          value,
        },
        {
          type: 'button',
          action_id: 'tq_reject',
          style: 'danger',
          text: { type: 'plain_text', text: 'Reject' },
          value,
        },
        ...(f.consoleUrl
          ? [
              {
                type: 'button',
                action_id: 'tq_open',
                text: { type: 'plain_text', text: 'Open in console' },
                url: f.consoleUrl,
              },
            ]
          : []),
      ],
    });
  }
  return blocks;
}

/** The generic webhook's JSON: the facts, the outcome, and where to approve or reject. */
export function webhookPayload(
  f: ApprovalFacts,
  o: Outcome,
  event: 'approval.requested' | 'approval.updated',
): Record<string, unknown> {
  return {
    event,
    text: summaryText(f),
    approval: f,
    outcome: o,
    // Teams and other receivers render these as buttons; they open the console where the same
    // rules apply (the API endpoints need the approver's own credentials).
    actions:
      o.kind === 'pending'
        ? [
            {
              id: 'approve',
              label: 'Approve',
              method: 'POST',
              api: `/v1/actions/${encodeURIComponent(f.actionId)}/approve`,
              argsDigest: f.argsDigest,
              ...(f.consoleUrl ? { url: f.consoleUrl } : {}),
            },
            {
              id: 'reject',
              label: 'Reject',
              method: 'POST',
              api: `/v1/actions/${encodeURIComponent(f.actionId)}/reject`,
              ...(f.consoleUrl ? { url: f.consoleUrl } : {}),
            },
          ]
        : [],
  };
}
