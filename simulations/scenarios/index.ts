import { TourniquetError } from '../../platform/errors.ts';
import type { DetectionKind, IdentityType } from '../../schemas/detection.ts';
import type { DetectionLine, HistoryLine } from '../history.ts';
import { Rng } from '../prng.ts';
import {
  DAY_MS,
  identityRef,
  iso,
  type Member,
  Population,
  type Scenario,
  type ScenarioEnv,
  severityOf,
  Timeline,
} from './common.ts';
import { mixed, PARTS } from './mixed.ts';
import { storm } from './storm.ts';

const SCENARIOS: Readonly<Record<string, Scenario>> = Object.fromEntries(
  [...PARTS, mixed, storm].map((s) => [s.name, s]),
);
export const SCENARIO_NAMES = Object.keys(SCENARIOS);

export interface SimulateOptions {
  scenario: string;
  seed: number;
  /** Size of the simulated company (catalogued identities); incidents scale with it. */
  identities: number;
  days: number;
  /** Start of the simulated period (default 2026-10-01T00:00:00Z; never the wall clock). */
  start?: string;
  /**
   * Background detections per identity per day (mostly low-confidence SIEM noise that opens no
   * case). Default 1 for `mixed`, 0.3 for a single scenario.
   */
  noisePerIdentityDay?: number;
}

const DEFAULT_START = '2026-10-01T00:00:00.000Z';

const NOISE_KINDS: Record<IdentityType, readonly DetectionKind[]> = {
  human: ['other', 'impossible_travel', 'anomalous_token_use', 'credential_abuse', 'mfa_fatigue', 'other'],
  service_account: [
    'other',
    'suspicious_api_use',
    'suspicious_api_use',
    'privilege_escalation',
    'secret_exposure',
  ],
  api_key: ['other', 'suspicious_api_use', 'secret_exposure'],
  workload: ['other', 'suspicious_api_use', 'suspicious_api_use', 'privilege_escalation'],
  oauth_app: ['other', 'suspicious_api_use'],
};
const NOISE_SOURCES = ['splunk', 'sentinel', 'elastic', 'chronicle', 'okta', 'guardduty'];

function validate(opts: SimulateOptions): Scenario {
  const scenario = SCENARIOS[opts.scenario];
  if (!scenario) {
    throw new TourniquetError(
      'VALIDATION_FAILED',
      `unknown scenario "${opts.scenario}" (one of ${SCENARIO_NAMES.join(', ')})`,
      {
        status: 400,
      },
    );
  }
  const positiveInt = (name: string, v: number, max: number) => {
    if (!Number.isInteger(v) || v < 1 || v > max) {
      throw new TourniquetError(
        'VALIDATION_FAILED',
        `--${name} must be an integer from 1 to ${max}, got ${v}`,
        { status: 400 },
      );
    }
  };
  if (!Number.isInteger(opts.seed))
    throw new TourniquetError('VALIDATION_FAILED', `--seed must be an integer, got ${opts.seed}`, {
      status: 400,
    });
  positiveInt('identities', opts.identities, 5_000_000);
  positiveInt('days', opts.days, 3660);
  if (opts.start !== undefined && Number.isNaN(Date.parse(opts.start))) {
    throw new TourniquetError('VALIDATION_FAILED', `start "${opts.start}" is not a timestamp`, {
      status: 400,
    });
  }
  return scenario;
}

/** One day of background detections across the population, in time order. */
function noiseForDay(
  rng: Rng,
  members: readonly Member[],
  dayStartMs: number,
  day: number,
  rate: number,
): Array<{ ms: number; line: HistoryLine }> {
  const out: Array<{ ms: number; line: HistoryLine }> = [];
  let n = 0;
  for (const m of members) {
    // Identities that play an incident get no unrelated noise: their first detection starts the incident.
    if (m.used) continue;
    const count = rate < 1 && rate > 0 ? (rng.float() < rate ? 1 : 0) : rng.poisson(rate);
    for (let i = 0; i < count; i++) {
      const u = rng.float();
      const confidence =
        u < 0.92
          ? rng.confidence(0.02, 0.29)
          : u < 0.99
            ? rng.confidence(0.3, 0.49)
            : rng.confidence(0.5, 0.72);
      const ms = dayStartMs + Math.floor(rng.float() * DAY_MS);
      const delay = rng.int(1, 120) * 1000;
      const kinds = NOISE_KINDS[m.entry.type];
      n++;
      const triaged = confidence >= 0.5 && rng.chance(0.5);
      const line: DetectionLine = {
        type: 'detection',
        at: iso(ms + delay),
        id: `bg-${day + 1}-${n}`,
        source: NOISE_SOURCES[Math.floor(rng.float() * NOISE_SOURCES.length)]!,
        kind: kinds[Math.floor(rng.float() * kinds.length)]!,
        confidence,
        severity: severityOf(confidence),
        identity: identityRef(m),
        occurredAt: iso(ms),
        evidence: { scenario: 'background', truth: triaged ? 'benign' : 'unknown' },
      };
      out.push({ ms: ms + delay, line });
      if (triaged) {
        // An analyst triaged this alert as benign a day or two later.
        const at = ms + delay + rng.int(20, 60) * 3_600_000;
        out.push({
          ms: at,
          line: {
            type: 'verdict',
            identity: { provider: m.entry.provider, id: m.entry.id },
            verdict: 'benign',
            at: iso(at),
            by: { id: 'triage-bot', role: 'analyst' },
          },
        });
      }
    }
  }
  out.sort((a, b) => a.ms - b.ms);
  return out;
}

/**
 * Generates a scenario's history lines in time order: the catalogue first, then detections,
 * recorded approvals and verdicts. Deterministic: the same options always give the same lines.
 */
export function* generateHistory(opts: SimulateOptions): Generator<HistoryLine> {
  const scenario = validate(opts);
  const startMs = Date.parse(opts.start ?? DEFAULT_START);
  const population = new Population(new Rng(`${opts.seed}/population`), opts.identities);
  const timeline = new Timeline();
  const env: ScenarioEnv = {
    rng: new Rng(`${opts.seed}/${scenario.name}`),
    startMs,
    days: opts.days,
    identities: opts.identities,
    population,
    timeline,
    mixed: false,
  };
  scenario.generate(env);
  for (const m of population.members)
    yield { type: 'identity', at: iso(startMs), entry: { ...m.initial, at: iso(startMs) } };

  const incidents = timeline.sorted();
  const rate = opts.noisePerIdentityDay ?? (scenario.name === 'mixed' ? 1 : 0.3);
  const noiseRng = new Rng(`${opts.seed}/background`);
  const pending: Array<{ ms: number; line: HistoryLine }> = []; // verdicts of triaged noise, due later
  let next = 0;
  for (let day = 0; day < opts.days; day++) {
    const dayStart = startMs + day * DAY_MS;
    const dayEnd = dayStart + DAY_MS;
    const noise = rate > 0 ? noiseForDay(noiseRng, population.members, dayStart, day, rate) : [];
    for (const item of noise) {
      if (item.line.type === 'verdict') pending.push(item);
    }
    pending.sort((a, b) => a.ms - b.ms);
    // Merge, in time order: incident lines, today's noise, and triage verdicts due today.
    let j = 0;
    for (;;) {
      while (j < noise.length && noise[j]!.line.type === 'verdict') j++;
      const inc = next < incidents.length && incidents[next]!.ms < dayEnd ? incidents[next]! : undefined;
      const bg = j < noise.length && noise[j]!.ms < dayEnd ? noise[j]! : undefined;
      const due = pending.length > 0 && pending[0]!.ms < dayEnd ? pending[0]! : undefined;
      const candidates = [inc, bg, due].filter(
        (x): x is { ms: number; line: HistoryLine } => x !== undefined,
      );
      if (candidates.length === 0) break;
      let best = candidates[0]!;
      for (const c of candidates) if (c.ms < best.ms) best = c;
      if (best === inc) next++;
      else if (best === bg) j++;
      else pending.shift();
      yield best.line;
    }
    // Today's noise after dayEnd cannot exist (ingestion delays are seconds); keep the leftovers anyway.
    for (; j < noise.length; j++) if (noise[j]!.line.type !== 'verdict') pending.push(noise[j]!);
  }
  // Whatever falls after the period (late verdicts): still ground truth.
  const rest = [...incidents.slice(next), ...pending].sort((a, b) => a.ms - b.ms);
  for (const item of rest) yield item.line;
}

/** The scenario generator of issue 7: an async stream of history lines. */
export async function* simulate(opts: SimulateOptions): AsyncGenerator<HistoryLine> {
  yield* generateHistory(opts);
}
