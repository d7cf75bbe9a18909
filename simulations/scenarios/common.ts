import type { CatalogueEntryInput } from '../../schemas/catalogue.ts';
import type { DetectionKind, IdentityType, Severity } from '../../schemas/detection.ts';
import type { ApprovalLine, DetectionLine, HistoryLine, VerdictLine } from '../history.ts';
import { Rng } from '../prng.ts';

/**
 * Building blocks of the scenario generators: a population of catalogued identities, a timeline
 * that incidents write history lines into, and helpers that shape detections, approvals and
 * verdicts the way SIEMs and analysts produce them. Everything is driven by seeded streams.
 */

export const DAY_MS = 86_400_000;
export const HOUR_MS = 3_600_000;
export const MIN_MS = 60_000;

export type Truth = 'malicious' | 'benign';

export type MemberEntry = CatalogueEntryInput & {
  type: IdentityType;
  tier: NonNullable<CatalogueEntryInput['tier']>;
};

export interface Member {
  /** The entry as it is now (incidents may re-catalogue an identity). */
  entry: MemberEntry;
  /** The entry catalogued at the start of the period. */
  readonly initial: MemberEntry;
  /** Taken by an incident (each identity plays in at most one incident, so ground truth is unambiguous). */
  used: boolean;
}

/** What a scenario asks for when it picks a victim. */
export type Want =
  | 'human'
  | 'okta-human'
  | 'service_account'
  | 'shared_service_account'
  | 'machine'
  | 'workload'
  | 'oauth_app'
  | 'third_party_app';

const HUMAN_NAMES = [
  'alex',
  'bea',
  'carlos',
  'dina',
  'emil',
  'fatima',
  'goran',
  'hana',
  'ivan',
  'jia',
  'kofi',
  'lena',
  'mo',
  'nora',
  'omar',
  'priya',
];
const PARTNERS = ['salesforce-sync', 'zapier', 'docusign', 'hubspot', 'slack-bot', 'jira-cloud'];
export const ANALYSTS = [
  { id: 'ana.lopez', role: 'analyst' },
  { id: 'ben.okafor', role: 'analyst' },
  { id: 'chen.wei', role: 'analyst' },
  { id: 'dana.kim', role: 'analyst' },
];
export const LEADS = [{ id: 'sam.reyes', role: 'soc-lead' }];

/** The identities of a simulated company, with their catalogue entries. */
export class Population {
  readonly members: Member[] = [];
  private readonly rng: Rng;
  private readonly counters = new Map<string, number>();

  constructor(rng: Rng, size: number) {
    this.rng = rng;
    for (let i = 0; i < size; i++) this.create(this.drawWant());
  }

  private drawWant(): Want {
    const u = this.rng.float();
    if (u < 0.7) return 'human';
    if (u < 0.82) return 'service_account';
    if (u < 0.89) return 'machine';
    if (u < 0.96) return 'workload';
    return 'oauth_app';
  }

  private next(prefix: string): number {
    const n = (this.counters.get(prefix) ?? 0) + 1;
    this.counters.set(prefix, n);
    return n;
  }

  /** A new identity of the wanted kind (added to the population and hence to the catalogue). */
  create(want: Want): Member {
    const r = this.rng;
    const pad = (n: number) => String(n).padStart(5, '0');
    let entry: MemberEntry;
    switch (want) {
      case 'human':
      case 'okta-human': {
        const okta = want === 'okta-human' || r.chance(0.75);
        const n = this.next('human');
        const breakGlass = r.chance(0.01);
        entry = {
          provider: okta ? 'okta' : 'entra',
          id: `${breakGlass ? 'breakglass' : r.pick(HUMAN_NAMES)}.${pad(n)}@acme.example`,
          type: 'human',
          tenant: okta ? 'acme' : 'acme-tenant',
          owner: 'workforce',
          consumers: 1,
          tier: 'production',
          tags: breakGlass ? ['break-glass'] : r.chance(0.08) ? ['admin'] : [],
          breakGlass,
          secrets: 'none',
        };
        break;
      }
      case 'service_account':
      case 'shared_service_account': {
        const n = this.next('svc');
        const aws = r.chance(0.6);
        const shared = want === 'shared_service_account' || r.chance(0.25);
        entry = {
          provider: aws ? 'aws' : 'github',
          id: aws ? `arn:aws:iam::123456789012:user/svc-${pad(n)}` : `svc-ci-${pad(n)}`,
          type: 'service_account',
          tenant: aws ? '123456789012' : 'acme-org',
          owner: `team-${r.int(1, 24)}`,
          consumers: shared ? r.int(2, 12) : 1,
          tier:
            want === 'shared_service_account'
              ? 'production'
              : r.pick(['production', 'production', 'staging', 'development'] as const),
          tags: shared ? ['shared'] : [],
          breakGlass: false,
          secrets: r.chance(0.3) ? 'unmanaged' : 'managed_vault',
        };
        break;
      }
      case 'machine': {
        const n = this.next('key');
        entry = {
          provider: 'github',
          id: `key-${pad(n)}`,
          type: 'api_key',
          tenant: 'acme-org',
          owner: `team-${r.int(1, 24)}`,
          consumers: 1,
          tier: r.pick(['production', 'staging', 'development'] as const),
          tags: ['ci'],
          breakGlass: false,
          secrets: r.chance(0.4) ? 'unmanaged' : 'managed_vault',
        };
        break;
      }
      case 'workload': {
        const n = this.next('wl');
        entry = {
          provider: 'kubernetes',
          id: `system:serviceaccount:apps:wl-${pad(n)}`,
          type: 'workload',
          tenant: r.chance(0.6) ? 'prod-cluster' : 'staging-cluster',
          owner: `team-${r.int(1, 24)}`,
          consumers: 1,
          tier: r.chance(0.6) ? 'production' : 'staging',
          tags: ['ci'],
          breakGlass: false,
          secrets: 'managed_vault',
        };
        break;
      }
      case 'oauth_app':
      case 'third_party_app': {
        const n = this.next('app');
        const partner = want === 'third_party_app' || r.chance(0.7) ? r.pick(PARTNERS) : undefined;
        entry = {
          provider: 'entra',
          id: `app-${pad(n)}`,
          type: 'oauth_app',
          tenant: 'acme-tenant',
          owner: partner ? `partner:${partner}` : `team-${r.int(1, 24)}`,
          consumers: 1,
          tier: 'production',
          tags: partner ? ['third-party'] : [],
          breakGlass: false,
          ...(partner ? { thirdParty: { partner, grant: `grant-${pad(n)}` } } : {}),
          secrets: 'managed_vault',
        };
        break;
      }
    }
    const m: Member = { entry, initial: entry, used: false };
    this.members.push(m);
    return m;
  }

  private matches(m: Member, want: Want): boolean {
    const e = m.entry;
    switch (want) {
      case 'human':
        return e.type === 'human' && !e.breakGlass;
      case 'okta-human':
        return e.type === 'human' && e.provider === 'okta' && !e.breakGlass;
      case 'service_account':
        return e.type === 'service_account' && (e.consumers ?? 1) < 2;
      case 'shared_service_account':
        return e.type === 'service_account' && (e.consumers ?? 1) >= 2 && e.tier === 'production';
      case 'machine':
        return e.type === 'service_account' || e.type === 'api_key';
      case 'workload':
        return e.type === 'workload' || e.type === 'service_account';
      case 'oauth_app':
        return e.type === 'oauth_app';
      case 'third_party_app':
        return e.type === 'oauth_app' && e.thirdParty !== undefined;
    }
  }

  /** Takes an unused identity of the wanted kind (drawn with the caller's stream), creating one if none is left. */
  take(want: Want, rng: Rng): Member {
    // Sample a few random positions first (cheap on large populations), then scan.
    for (let tries = 0; tries < 24; tries++) {
      const m = this.members[Math.floor(rng.float() * this.members.length)];
      if (m && !m.used && this.matches(m, want)) {
        m.used = true;
        return m;
      }
    }
    const start = Math.floor(rng.float() * this.members.length);
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[(start + i) % this.members.length]!;
      if (!m.used && this.matches(m, want)) {
        m.used = true;
        return m;
      }
    }
    const m = this.create(want);
    m.used = true;
    return m;
  }
}

/** History lines of incidents, each with its merge time; sorted once before streaming. */
export class Timeline {
  readonly items: Array<{ ms: number; seq: number; line: HistoryLine }> = [];
  private seq = 0;

  push(ms: number, line: HistoryLine): void {
    this.items.push({ ms, seq: this.seq++, line });
  }

  sorted(): Array<{ ms: number; seq: number; line: HistoryLine }> {
    return this.items.sort((a, b) => a.ms - b.ms || a.seq - b.seq);
  }
}

export interface ScenarioEnv {
  rng: Rng;
  startMs: number;
  days: number;
  /** How many identities the run was asked for (scenarios scale their incident counts with it). */
  identities: number;
  population: Population;
  timeline: Timeline;
  /** True when the scenario runs inside `mixed` (attack counts are rarer there). */
  mixed: boolean;
}

export interface Scenario {
  name: string;
  description: string;
  /** The ground truth this scenario's incidents carry. */
  truth: Truth | 'both';
  generate(env: ScenarioEnv): void;
}

const iso = (ms: number) => new Date(ms).toISOString();

export function severityOf(confidence: number): Severity {
  if (confidence >= 0.9) return 'critical';
  if (confidence >= 0.75) return 'high';
  if (confidence >= 0.5) return 'medium';
  if (confidence >= 0.3) return 'low';
  return 'info';
}

export const identityRef = (m: Member) => ({
  provider: m.entry.provider,
  id: m.entry.id,
  type: m.entry.type,
  ...(m.entry.tenant ? { tenant: m.entry.tenant } : {}),
});

/** An incident's writer: numbered detections, recorded answers and a verdict, all with one truth. */
export class Incident {
  private n = 0;
  readonly id: string;
  private readonly env: ScenarioEnv;
  private readonly scenario: string;
  readonly truth: Truth;

  constructor(env: ScenarioEnv, scenario: string, id: string, truth: Truth) {
    this.env = env;
    this.scenario = scenario;
    this.id = id;
    this.truth = truth;
  }

  /** A detection that occurred at `ms` and reached Tourniquet after an ingestion delay of a few seconds. */
  detect(
    m: Member,
    ms: number,
    d: {
      source: string;
      kind: DetectionKind;
      confidence: number;
      title: string;
      evidence?: Record<string, unknown>;
    },
  ): void {
    this.n++;
    const delay = this.env.rng.int(1, 90) * 1000;
    const line: DetectionLine = {
      type: 'detection',
      at: iso(ms + delay),
      id: `${this.id}-${this.n}`,
      source: d.source,
      kind: d.kind,
      confidence: d.confidence,
      severity: severityOf(d.confidence),
      identity: identityRef(m),
      occurredAt: iso(ms),
      title: d.title,
      evidence: { scenario: this.scenario, incident: this.id, truth: this.truth, ...(d.evidence ?? {}) },
    };
    this.env.timeline.push(ms + delay, line);
  }

  /** How an analyst answered whatever was pending for this identity at `ms`. */
  answer(
    m: Member,
    ms: number,
    decision: 'approve' | 'reject',
    by: { id: string; role: string },
    reason?: string,
  ): void {
    const line: ApprovalLine = {
      type: 'approval',
      identity: { provider: m.entry.provider, id: m.entry.id },
      decision,
      by,
      at: iso(ms),
      ...(reason ? { reason } : {}),
    };
    this.env.timeline.push(ms, line);
  }

  verdict(m: Member, ms: number, by: { id: string; role: string } = ANALYSTS[0]!): void {
    const line: VerdictLine = {
      type: 'verdict',
      identity: { provider: m.entry.provider, id: m.entry.id },
      verdict: this.truth,
      at: iso(ms),
      by,
    };
    this.env.timeline.push(ms, line);
  }

  /** A catalogue change for this identity, effective at `ms`. */
  recatalogue(m: Member, ms: number, change: Partial<MemberEntry>): void {
    m.entry = { ...m.entry, ...change };
    this.env.timeline.push(ms, { type: 'identity', at: iso(ms), entry: { ...m.entry, at: iso(ms) } });
  }
}

/** A start time for an incident: uniform over the period, leaving `tailMs` before its end. */
export function incidentStart(env: ScenarioEnv, tailMs = 6 * HOUR_MS): number {
  const span = Math.max(HOUR_MS, env.days * DAY_MS - tailMs);
  return env.startMs + Math.floor(env.rng.float() * span);
}

/** How many incidents of a kind: `perThousandPerMonth` when mixed, else `share` of the identities asked for. */
function incidentCount(env: ScenarioEnv, share: number, perThousandPerMonth: number): number {
  const scale = env.days / 30;
  const n = env.mixed
    ? (env.identities / 1000) * perThousandPerMonth * scale
    : env.identities * share * Math.min(1, scale * 4);
  return Math.max(1, Math.round(n));
}

/** How a scenario's incidents of one kind are drawn: who the victims are, how many, and what they are called. */
export interface IncidentPlan {
  /** The scenario name recorded in each detection's evidence. */
  scenario: string;
  /** Incident ids are `${idPrefix}-1`, `${idPrefix}-2`, … */
  idPrefix: string;
  truth: Truth;
  victim: Want;
  /** As incidentCount's `share` and `perThousandPerMonth`. */
  share: number;
  perThousandPerMonth: number;
  /** As incidentStart's `tailMs` (its default when left out). */
  tailMs?: number;
}

/**
 * Plays `incident` once per incident of a plan: for each, takes an unused victim, opens its
 * Incident and draws its start time, in that order (the order fixes the seeded draws).
 */
export function forEachIncident(
  env: ScenarioEnv,
  plan: IncidentPlan,
  incident: (m: Member, inc: Incident, t0: number) => void,
): void {
  const count = incidentCount(env, plan.share, plan.perThousandPerMonth);
  for (let k = 0; k < count; k++) {
    const m = env.population.take(plan.victim, env.rng);
    const inc = new Incident(env, plan.scenario, `${plan.idPrefix}-${k + 1}`, plan.truth);
    incident(m, inc, incidentStart(env, plan.tailMs));
  }
}

export { iso, Rng };
