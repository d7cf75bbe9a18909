/**
 * Test kit for the decider core: builders for detections and catalogue entries, a reference fold
 * (`runCore`) that drives decide/evolve exactly as the engine does, a readable `Scenario` for table
 * tests, and fast-check arbitraries for generated detection streams, catalogues, commands and policies.
 *
 * Only tests and benchmarks import this module.
 */

import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { digestOf } from '../../platform/digest.ts';
import { ApprovalError, NotFoundError } from '../../platform/errors.ts';
import type { ProviderCapabilities } from '../../schemas/capabilities.ts';
import {
  type CatalogueEntry,
  type CatalogueEntryInput,
  CatalogueEntry as CatalogueEntrySchema,
  TIERS,
} from '../../schemas/catalogue.ts';
import {
  DETECTION_KINDS,
  type DetectionKind,
  IDENTITY_TYPES,
  type IdentityRef,
  identityKey,
  type NormalizedDetection,
  SEVERITIES,
} from '../../schemas/detection.ts';
import { ACTION_TYPES, type ActionType, type EventType, type NewEvent } from '../../schemas/events.ts';
import { CatalogueIndex } from '../../services/decider/core/catalogue.ts';
import { type CompiledPolicy, compilePolicy } from '../../services/decider/core/compiled-policy.ts';
import { type DeciderContext, decide } from '../../services/decider/core/decide.ts';
import { evolve, initialState } from '../../services/decider/core/evolve.ts';
import { DecisionLedger } from '../../services/decider/core/ledger.ts';
import { resolveIdentity } from '../../services/decider/core/resolve.ts';
import { applyDecision, type Forgetting } from '../../services/decider/core/step.ts';
import type { DeciderInput, HumanActor, IdentityState } from '../../services/decider/core/types.ts';
import { type LoadedPolicy, loadDefaultPolicy, parsePolicy } from '../../services/decider/policy/load.ts';
import { Policy, type PolicyInput } from '../../services/decider/policy/schema.ts';

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/** Monday 2026-03-02 09:00 UTC: the origin of every scenario unless a test says otherwise. */
export const T0 = Date.parse('2026-03-02T09:00:00.000Z');
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const iso = (ms: number): string => new Date(ms).toISOString();

// ---------------------------------------------------------------------------------------------
// Policies and catalogues
// ---------------------------------------------------------------------------------------------

/** A policy as tests like to give it: YAML text, a policy object, a loaded or a compiled policy. */
export type PolicyLike = string | LoadedPolicy | CompiledPolicy | PolicyInput;

let defaultPolicy: CompiledPolicy | undefined;
/** policies/default.yaml, compiled once per process. */
export function defaultCompiledPolicy(): CompiledPolicy {
  if (!defaultPolicy) {
    const loaded = loadDefaultPolicy();
    defaultPolicy = compilePolicy(loaded.policy, loaded.digest);
  }
  return defaultPolicy;
}

export function compile(policy: PolicyLike): CompiledPolicy {
  if (typeof policy === 'string') {
    const loaded = parsePolicy(policy);
    return compilePolicy(loaded.policy, loaded.digest);
  }
  if ('rulesByKind' in policy) return policy as CompiledPolicy;
  if ('source' in policy && 'digest' in policy) {
    const loaded = policy as LoadedPolicy;
    return compilePolicy(loaded.policy, loaded.digest);
  }
  const parsed = Policy.parse(policy);
  return compilePolicy(parsed, digestOf(parsed));
}

export type CatalogueLike = CatalogueIndex | ReadonlyArray<CatalogueEntryInput>;

export function catalogueIndex(catalogue: CatalogueLike | undefined): CatalogueIndex {
  if (catalogue instanceof CatalogueIndex) return catalogue;
  return new CatalogueIndex((catalogue ?? []).map((e) => CatalogueEntrySchema.parse(e)));
}

/** A catalogue entry with the defaults of the schema (provider okta, human, development tier, one consumer). */
export function catalogueEntry(id: string, over: Partial<CatalogueEntryInput> = {}): CatalogueEntry {
  return CatalogueEntrySchema.parse({ provider: 'okta', id, type: 'human', ...over });
}

// ---------------------------------------------------------------------------------------------
// Identities, detections, commands
// ---------------------------------------------------------------------------------------------

export function identityRef(id: string, over: Partial<IdentityRef> = {}): IdentityRef {
  return { provider: 'okta', id, type: 'human', ...over };
}

export interface DetectionSpec {
  identity: IdentityRef;
  kind: DetectionKind;
  confidence: number;
  /** Decision time (ms); also when it occurred unless `occurredAtMs` says otherwise. */
  atMs: number;
  occurredAtMs?: number;
  source?: string;
  id?: string;
  severity?: NormalizedDetection['severity'];
}

export function detection(spec: DetectionSpec): NormalizedDetection {
  const occurredAtMs = spec.occurredAtMs ?? spec.atMs;
  const source = spec.source ?? 'okta';
  return {
    id: spec.id ?? `${spec.kind}-${spec.identity.id}-${occurredAtMs}`,
    source,
    kind: spec.kind,
    confidence: spec.confidence,
    severity: spec.severity ?? (spec.confidence >= 0.9 ? 'high' : spec.confidence >= 0.6 ? 'medium' : 'low'),
    identity: spec.identity,
    occurredAt: iso(occurredAtMs),
    evidence: {},
  };
}

export function detectionInput(spec: DetectionSpec): DeciderInput {
  return { type: 'detection', at: iso(spec.atMs), detection: detection(spec) };
}

/**
 * What the kit accepts on top of the decider's own inputs: the kill switch (control events the
 * engine applies between decisions) and symbolic human commands resolved against the current state,
 * so that generators can approve "some action of this identity" without knowing its id in advance.
 */
export type KitInput =
  | DeciderInput
  | { type: 'pause'; at: string }
  | { type: 'resume'; at: string }
  | {
      type: 'approve-pick';
      at: string;
      identity: IdentityRef;
      pick: number;
      by: HumanActor;
      /** exact: the proposal's digest; omit: no digest; wrong: a digest that matches nothing. */
      digest: 'exact' | 'omit' | 'wrong';
    }
  | { type: 'reject-pick'; at: string; identity: IdentityRef; pick: number; by: HumanActor; reason: string }
  | {
      type: 'verdict-open';
      at: string;
      identity: IdentityRef;
      verdict: 'benign' | 'malicious';
      by: HumanActor;
    };

export interface CoreOptions {
  policy?: PolicyLike;
  catalogue?: CatalogueLike;
  /** Kill switch at the start (pause/resume inputs change it later). */
  paused?: boolean;
  /** Check that decide leaves the state it is given untouched (deep clone before, compare after). */
  assertPure?: boolean;
  /**
   * Remember every detection as evidence (no window pruning, no confidence floor). The engine lets
   * evolve forget what the policy cannot count; decisions must be the same either way.
   */
  rememberAllEvidence?: boolean;
  /** What the configured providers can undo (DeciderContext.capabilities). */
  capabilities?: ProviderCapabilities;
}

export class PurityViolation extends Error {
  constructor(input: DeciderInput) {
    super(`decide mutated its input state while deciding ${input.type} at ${input.at}`);
    this.name = 'PurityViolation';
  }
}

/**
 * The reference fold: one state per identity, one budget ledger across identities, exactly as
 * DeciderEngine.handle does it (decide, then evolve each event and record it in the ledger).
 */
export class CoreRunner {
  readonly policy: CompiledPolicy;
  readonly catalogue: CatalogueIndex;
  readonly ledger = new DecisionLedger();
  readonly budget = this.ledger.budget;
  readonly states = new Map<string, IdentityState>();
  /** Every event decided so far, in order. */
  readonly events: NewEvent[] = [];
  /** Commands the decider refused (the API would answer 4xx), with the error. */
  readonly refused: Array<{ input: DeciderInput; error: Error }> = [];
  /** Decision time (ms) of each event, parallel to `events`, with the kill switch at that moment. */
  readonly pausedAt: boolean[] = [];
  paused: boolean;
  private readonly assertPure: boolean;
  private readonly rememberAll: boolean;
  private readonly capabilities: ProviderCapabilities | undefined;

  constructor(opts: CoreOptions = {}) {
    this.capabilities = opts.capabilities;
    this.policy = compile(opts.policy ?? defaultCompiledPolicy());
    this.catalogue = catalogueIndex(opts.catalogue);
    this.paused = opts.paused ?? false;
    this.assertPure = opts.assertPure ?? false;
    this.rememberAll = opts.rememberAllEvidence ?? false;
  }

  /** Folds one event into a state exactly as the engine does. */
  fold(state: IdentityState, e: NewEvent): void {
    if (this.rememberAll) evolve(state, e);
    else evolve(state, e, this.policy.maxWindowMs, this.policy.evidenceFloor);
  }

  /** What evolve may forget: nothing with rememberAllEvidence. */
  private get forgetting(): Forgetting | undefined {
    return this.rememberAll ? undefined : this.policy;
  }

  context(): DeciderContext {
    return {
      ...this.ledger.context(this.policy, this.catalogue, this.paused),
      ...(this.capabilities ? { capabilities: this.capabilities } : {}),
    };
  }

  state(identity: IdentityRef): IdentityState {
    const key = identityKey(identity);
    let s = this.states.get(key);
    if (!s) {
      s = initialState(identity);
      this.states.set(key, s);
    }
    return s;
  }

  /** Turns a kit input into a decider input (null for kill-switch inputs, applied here). */
  resolve(input: KitInput): DeciderInput | null {
    switch (input.type) {
      case 'pause':
        this.paused = true;
        return null;
      case 'resume':
        this.paused = false;
        return null;
      case 'approve-pick': {
        const actions = this.state(input.identity).openCase?.actions ?? [];
        const a = actions.length > 0 ? actions[input.pick % actions.length] : undefined;
        const actionId = a?.actionId ?? 'act-missing';
        const base = {
          type: 'approve' as const,
          at: input.at,
          identity: input.identity,
          actionId,
          by: input.by,
        };
        if (input.digest === 'omit') return base;
        return { ...base, argsDigest: input.digest === 'exact' && a ? a.argsDigest : 'sha256:0000' };
      }
      case 'reject-pick': {
        const actions = this.state(input.identity).openCase?.actions ?? [];
        const a = actions.length > 0 ? actions[input.pick % actions.length] : undefined;
        return {
          type: 'reject',
          at: input.at,
          identity: input.identity,
          actionId: a?.actionId ?? 'act-missing',
          by: input.by,
          reason: input.reason,
        };
      }
      case 'verdict-open':
        return {
          type: 'verdict',
          at: input.at,
          identity: input.identity,
          caseId: this.state(input.identity).openCase?.caseId ?? 'case-missing',
          verdict: input.verdict,
          by: input.by,
        };
      default:
        return input;
    }
  }

  /** Decides one input and folds the result. Refused commands throw (NotFoundError, ApprovalError). */
  step(input: KitInput): NewEvent[] {
    const command = this.resolve(input);
    if (!command) return [];
    const resolved = resolveIdentity(command, this.catalogue);
    const identity = resolved.type === 'detection' ? resolved.detection.identity : resolved.identity;
    const state = this.state(identity);
    const ctx = this.context();
    // Compared as clones on both sides: structuredClone keeps data, not classes (the dedupe set).
    const before = this.assertPure ? structuredClone(state) : undefined;
    let events: NewEvent[];
    try {
      events = decide(state, resolved, ctx);
    } catch (err) {
      // a refused command must leave the state untouched too
      if (before && !isDeepStrictEqual(before, structuredClone(state))) throw new PurityViolation(resolved);
      throw err;
    }
    if (before && !isDeepStrictEqual(before, structuredClone(state))) throw new PurityViolation(resolved);
    applyDecision(state, events, this.ledger, this.forgetting, (e) => {
      this.events.push(e);
      this.pausedAt.push(this.paused);
    });
    return events;
  }

  /** Like step, but a command the decider refuses is recorded and skipped, as the API answers 4xx. */
  offer(input: KitInput): NewEvent[] {
    try {
      return this.step(input);
    } catch (err) {
      if (err instanceof NotFoundError || err instanceof ApprovalError) {
        const resolved = this.resolve(input);
        if (resolved) this.refused.push({ input: resolved, error: err });
        return [];
      }
      throw err;
    }
  }
}

/** Folds inputs through the core and returns every event in order; refused commands are skipped. */
export function runCore(inputs: readonly KitInput[], opts: CoreOptions = {}): NewEvent[] {
  return runCoreDetailed(inputs, opts).events;
}

export function runCoreDetailed(inputs: readonly KitInput[], opts: CoreOptions = {}): CoreRunner {
  const runner = new CoreRunner(opts);
  for (const input of inputs) runner.offer(input);
  return runner;
}

// ---------------------------------------------------------------------------------------------
// Reading events
// ---------------------------------------------------------------------------------------------

export type EventOf<T extends EventType> = Extract<NewEvent, { type: T }>;

export function ofType<T extends EventType>(events: readonly NewEvent[], type: T): Array<EventOf<T>> {
  return events.filter((e): e is EventOf<T> => e.type === type);
}

/** ActionProposed data, the part table tests talk about. */
export function proposals(events: readonly NewEvent[]): Array<EventOf<'ActionProposed'>['data']> {
  return ofType(events, 'ActionProposed').map((e) => e.data);
}

/** ActionApproved events given by the policy (pre-authorised), not by a human. */
export function autoApprovals(events: readonly NewEvent[]): Array<EventOf<'ActionApproved'>['data']> {
  return ofType(events, 'ActionApproved')
    .map((e) => e.data)
    .filter((d) => d.by.kind === 'policy');
}

// ---------------------------------------------------------------------------------------------
// Scenario: a readable driver for table tests
// ---------------------------------------------------------------------------------------------

export interface ScenarioOptions extends Omit<CoreOptions, 'catalogue'> {
  /** Entries by id; provider defaults to okta and type to human (see `catalogueEntry`). */
  catalogue?: ReadonlyArray<Partial<CatalogueEntryInput> & { id: string }>;
  /** Start of the scenario clock (default T0). */
  startMs?: number;
}

/**
 * A story told to the decider step by step, with a clock that only moves forward when told to.
 * Identities are named by id; their type and provider come from the catalogue when it knows them.
 */
export class Scenario extends CoreRunner {
  nowMs: number;
  private readonly refs = new Map<string, IdentityRef>();
  private seq = 0;

  constructor(opts: ScenarioOptions = {}) {
    const entries = (opts.catalogue ?? []).map((e) => catalogueEntry(e.id, e));
    super({ ...opts, catalogue: entries });
    this.nowMs = opts.startMs ?? T0;
    for (const entry of entries) {
      if (!this.refs.has(entry.id)) {
        this.refs.set(entry.id, {
          provider: entry.provider,
          id: entry.id,
          type: entry.type,
          ...(entry.tenant ? { tenant: entry.tenant } : {}),
        });
      }
    }
  }

  /** The identity reference for an id (catalogue-known, or a human at okta). */
  who(id: string, over: Partial<IdentityRef> = {}): IdentityRef {
    const known = this.refs.get(id);
    const ref = known ? { ...known, ...over } : identityRef(id, over);
    if (!known) this.refs.set(id, ref);
    return ref;
  }

  /** Moves the clock forward by ms and returns the new time. */
  advance(ms: number): number {
    this.nowMs += ms;
    return this.nowMs;
  }

  get at(): string {
    return iso(this.nowMs);
  }

  detect(
    id: string,
    kind: DetectionKind,
    confidence: number,
    opts: { source?: string; detectionId?: string; occurredAtMs?: number } = {},
  ): NewEvent[] {
    this.seq += 1;
    return this.step(
      detectionInput({
        identity: this.who(id),
        kind,
        confidence,
        atMs: this.nowMs,
        ...(opts.occurredAtMs !== undefined ? { occurredAtMs: opts.occurredAtMs } : {}),
        source: opts.source ?? 'okta',
        id: opts.detectionId ?? `det-${this.seq}`,
      }),
    );
  }

  approve(id: string, actionId: string, by: string, argsDigest?: string): NewEvent[] {
    return this.step({
      type: 'approve',
      at: this.at,
      identity: this.who(id),
      actionId,
      by: { id: by, role: 'analyst' },
      ...(argsDigest !== undefined ? { argsDigest } : {}),
    });
  }

  reject(id: string, actionId: string, by: string, reason = 'not warranted'): NewEvent[] {
    return this.step({
      type: 'reject',
      at: this.at,
      identity: this.who(id),
      actionId,
      by: { id: by },
      reason,
    });
  }

  verdict(id: string, verdict: 'benign' | 'malicious', by = 'lead'): NewEvent[] {
    const caseId = this.state(this.who(id)).openCase?.caseId ?? 'case-missing';
    return this.step({
      type: 'verdict',
      at: this.at,
      identity: this.who(id),
      caseId,
      verdict,
      by: { id: by },
    });
  }

  propose(id: string, action: ActionType, by: string, reason = 'analyst decision'): NewEvent[] {
    return this.step({
      type: 'propose',
      at: this.at,
      identity: this.who(id),
      action,
      by: { id: by },
      reason,
    });
  }

  tick(id: string): NewEvent[] {
    return this.step({ type: 'tick', at: this.at, identity: this.who(id) });
  }

  pause(): void {
    this.step({ type: 'pause', at: this.at });
  }

  resume(): void {
    this.step({ type: 'resume', at: this.at });
  }

  /** The open case's actions of an identity (empty when no case is open). */
  actions(id: string) {
    return this.state(this.who(id)).openCase?.actions ?? [];
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

export const ACTORS = ['ana', 'bo', 'cy'] as const;
export const SOURCES = ['okta', 'sentinel', 'splunk'] as const;
const PROVIDERS = ['okta', 'entra'] as const;
const TENANTS = ['acme', 'globex'] as const;
/** The kinds the default policy's narrow rules react to are drawn more often than the rest. */
const RULE_KINDS: DetectionKind[] = [
  'known_compromise',
  'anomalous_token_use',
  'impossible_travel',
  'secret_exposure',
  'mfa_fatigue',
  'privilege_escalation',
  'suspicious_api_use',
];
const CONFIDENCES = [0.1, 0.35, 0.55, 0.65, 0.75, 0.82, 0.88, 0.92, 0.97, 1] as const;

const arbActor: fc.Arbitrary<HumanActor> = fc.constantFrom(...ACTORS).map((id) => ({ id }));

export const arbIdentity: fc.Arbitrary<Omit<IdentityRef, 'id'>> = fc.record(
  {
    provider: fc.constantFrom(...PROVIDERS),
    type: fc.constantFrom(...IDENTITY_TYPES),
    tenant: fc.constantFrom(...TENANTS),
  },
  { requiredKeys: ['provider', 'type'] },
);

/** What the catalogue says about one identity (without provider/id/type, filled from the pool). */
const arbCatalogueFacts = fc.record({
  consumers: fc.oneof(
    { arbitrary: fc.constant(1), weight: 5 },
    { arbitrary: fc.integer({ min: 0, max: 6 }), weight: 1 },
  ),
  tier: fc.constantFrom(...TIERS),
  tags: fc.subarray(['crown-jewel', 'ci', 'vip']),
  breakGlass: fc.oneof(
    { arbitrary: fc.constant(false), weight: 6 },
    { arbitrary: fc.constant(true), weight: 1 },
  ),
  thirdParty: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 5 },
    {
      arbitrary: fc.record({
        partner: fc.constantFrom('payroll-co', 'crm-co'),
        grant: fc.constantFrom('g-1', 'g-2'),
      }),
      weight: 1,
    },
  ),
  secrets: fc.constantFrom('managed_vault', 'unmanaged', 'none') as fc.Arbitrary<CatalogueEntry['secrets']>,
});

/** Catalogue knowledge of an identity: unknown, one entry, or one entry superseded later in event time. */
const arbCatalogueSlot = fc.oneof(
  { arbitrary: fc.constant(null), weight: 1 },
  { arbitrary: fc.record({ first: arbCatalogueFacts, later: fc.constant(null) }), weight: 3 },
  {
    arbitrary: fc.record({
      first: arbCatalogueFacts,
      later: fc.record({ facts: arbCatalogueFacts, afterSeconds: fc.integer({ min: 1, max: 6 * 3600 }) }),
    }),
    weight: 1,
  },
);

type Op =
  | { op: 'detect'; who: number; kind: DetectionKind; confidence: number; source: string; lagSeconds: number }
  | { op: 'resend'; pick: number }
  | { op: 'approve'; who: number; pick: number; by: HumanActor; digest: 'exact' | 'omit' | 'wrong' }
  | { op: 'reject'; who: number; pick: number; by: HumanActor }
  | { op: 'verdict'; who: number; verdict: 'benign' | 'malicious'; by: HumanActor }
  | { op: 'propose'; who: number; action: ActionType; by: HumanActor }
  | { op: 'tick'; who: number }
  | { op: 'pause' }
  | { op: 'resume' };

const arbWho = fc.nat({ max: 31 });
const arbDetectOp: fc.Arbitrary<Op> = fc.record({
  op: fc.constant('detect' as const),
  who: arbWho,
  kind: fc.oneof(
    { arbitrary: fc.constantFrom(...RULE_KINDS), weight: 4 },
    { arbitrary: fc.constantFrom(...DETECTION_KINDS), weight: 1 },
  ),
  confidence: fc.oneof(
    { arbitrary: fc.constantFrom(...CONFIDENCES), weight: 4 },
    { arbitrary: fc.double({ min: 0, max: 1, noNaN: true }), weight: 1 },
  ),
  source: fc.constantFrom(...SOURCES),
  lagSeconds: fc.oneof(
    { arbitrary: fc.constant(0), weight: 3 },
    { arbitrary: fc.integer({ min: 0, max: 600 }), weight: 1 },
  ),
});

function arbOp(commands: boolean, killSwitch: boolean): fc.Arbitrary<Op> {
  const ops: Array<fc.WeightedArbitrary<Op>> = [
    { arbitrary: arbDetectOp, weight: 12 },
    { arbitrary: fc.record({ op: fc.constant('resend' as const), pick: fc.nat() }), weight: 1 },
    { arbitrary: fc.record({ op: fc.constant('tick' as const), who: arbWho }), weight: 2 },
  ];
  if (commands) {
    ops.push(
      {
        arbitrary: fc.record({
          op: fc.constant('approve' as const),
          who: arbWho,
          pick: fc.nat({ max: 7 }),
          by: arbActor,
          digest: fc.constantFrom('exact', 'exact', 'omit', 'wrong') as fc.Arbitrary<
            'exact' | 'omit' | 'wrong'
          >,
        }),
        weight: 4,
      },
      {
        arbitrary: fc.record({
          op: fc.constant('reject' as const),
          who: arbWho,
          pick: fc.nat({ max: 7 }),
          by: arbActor,
        }),
        weight: 1,
      },
      {
        arbitrary: fc.record({
          op: fc.constant('verdict' as const),
          who: arbWho,
          verdict: fc.constantFrom('benign', 'malicious') as fc.Arbitrary<'benign' | 'malicious'>,
          by: arbActor,
        }),
        weight: 1,
      },
      {
        arbitrary: fc.record({
          op: fc.constant('propose' as const),
          who: arbWho,
          action: fc.constantFrom(...ACTION_TYPES),
          by: arbActor,
        }),
        weight: 1,
      },
    );
  }
  if (killSwitch) {
    ops.push(
      { arbitrary: fc.constant({ op: 'pause' as const }), weight: 1 },
      { arbitrary: fc.constant({ op: 'resume' as const }), weight: 1 },
    );
  }
  return fc.oneof(...ops);
}

/** Gaps between inputs: bursts, minutes, hours (windows, cool-downs and TTLs get crossed). */
const arbGapSeconds = fc.oneof(
  { arbitrary: fc.constant(0), weight: 2 },
  { arbitrary: fc.integer({ min: 1, max: 120 }), weight: 4 },
  { arbitrary: fc.integer({ min: 120, max: 3600 }), weight: 3 },
  { arbitrary: fc.integer({ min: 3600, max: 6 * 3600 }), weight: 1 },
);

export interface GeneratedWorld {
  identities: IdentityRef[];
  catalogue: CatalogueEntry[];
  inputs: KitInput[];
}

export interface WorldOptions {
  /** Largest identity pool (small, so rules fire). Default 5. */
  maxIdentities?: number;
  /** Longest input sequence. Default 80. */
  maxInputs?: number;
  /** Interleave human commands (approve, reject, verdict, manual proposals). Default true. */
  commands?: boolean;
  /** Interleave pause/resume. Default false. */
  killSwitch?: boolean;
}

/**
 * A generated world: a small identity pool, a catalogue over it (some identities unknown, some
 * entries superseded later in event time), and an input sequence with increasing decision times:
 * detections (kinds, confidences and sources drawn so that rules fire), re-sent duplicates,
 * ticks, and human commands with random actors.
 */
export function arbWorld(opts: WorldOptions = {}): fc.Arbitrary<GeneratedWorld> {
  const maxIdentities = opts.maxIdentities ?? 5;
  return fc
    .record({
      pool: fc.array(fc.tuple(arbIdentity, arbCatalogueSlot), { minLength: 1, maxLength: maxIdentities }),
      steps: fc.array(fc.tuple(arbGapSeconds, arbOp(opts.commands ?? true, opts.killSwitch ?? false)), {
        minLength: 1,
        maxLength: opts.maxInputs ?? 80,
        size: 'large',
      }),
    })
    .map(({ pool, steps }) => buildWorld(pool, steps));
}

type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;
type CatalogueSlot = ValueOf<typeof arbCatalogueSlot>;
type CatalogueFactsValue = ValueOf<typeof arbCatalogueFacts>;

function buildWorld(
  pool: Array<[Omit<IdentityRef, 'id'>, CatalogueSlot]>,
  steps: Array<[number, Op]>,
): GeneratedWorld {
  const identities = pool.map(([base], i) => ({ ...base, id: `u${i}` }) as IdentityRef);
  const catalogue: CatalogueEntry[] = [];
  pool.forEach(([, slot], i) => {
    if (!slot) return;
    const ref = identities[i]!;
    const entry = (facts: CatalogueFactsValue, at?: number): CatalogueEntry => ({
      provider: ref.provider,
      id: ref.id,
      type: ref.type,
      ...(ref.tenant ? { tenant: ref.tenant } : {}),
      consumers: facts.consumers,
      tier: facts.tier,
      tags: facts.tags,
      breakGlass: facts.breakGlass,
      ...(facts.thirdParty ? { thirdParty: facts.thirdParty } : {}),
      secrets: facts.secrets,
      ...(at !== undefined ? { at: iso(at) } : {}),
    });
    catalogue.push(entry(slot.first));
    if (slot.later) catalogue.push(entry(slot.later.facts, T0 + slot.later.afterSeconds * 1000));
  });
  const inputs: KitInput[] = [];
  const sent: NormalizedDetection[] = [];
  let t = T0;
  steps.forEach(([gap, op], i) => {
    t += gap * 1000;
    const at = iso(t);
    const who = (n: number) => identities[n % identities.length]!;
    switch (op.op) {
      case 'detect': {
        const d = detection({
          identity: who(op.who),
          kind: op.kind,
          confidence: op.confidence,
          atMs: t,
          occurredAtMs: t - op.lagSeconds * 1000,
          source: op.source,
          id: `d${i}`,
          severity: SEVERITIES[Math.min(4, Math.floor(op.confidence * 5))]!,
        });
        sent.push(d);
        inputs.push({ type: 'detection', at, detection: d });
        break;
      }
      case 'resend': {
        const d = sent.length > 0 ? sent[op.pick % sent.length] : undefined;
        if (d) inputs.push({ type: 'detection', at, detection: d });
        break;
      }
      case 'approve':
        inputs.push({
          type: 'approve-pick',
          at,
          identity: who(op.who),
          pick: op.pick,
          by: op.by,
          digest: op.digest,
        });
        break;
      case 'reject':
        inputs.push({
          type: 'reject-pick',
          at,
          identity: who(op.who),
          pick: op.pick,
          by: op.by,
          reason: 'not warranted',
        });
        break;
      case 'verdict':
        inputs.push({ type: 'verdict-open', at, identity: who(op.who), verdict: op.verdict, by: op.by });
        break;
      case 'propose':
        inputs.push({
          type: 'propose',
          at,
          identity: who(op.who),
          action: op.action,
          by: op.by,
          reason: 'analyst call',
        });
        break;
      case 'tick':
        inputs.push({ type: 'tick', at, identity: who(op.who) });
        break;
      case 'pause':
      case 'resume':
        inputs.push({ type: op.op, at });
        break;
    }
  });
  return { identities, catalogue, inputs };
}

/** Budgets tight enough to bind within a generated world (limits 0..3, windows of minutes to hours). */
export const arbBudgets = fc.array(
  fc.record({
    action: fc.constantFrom(
      '*' as const,
      'revoke_sessions' as const,
      'revoke_tokens' as const,
      'rotate_credential' as const,
      ...ACTION_TYPES,
    ),
    limit: fc.integer({ min: 0, max: 3 }),
    window: fc.integer({ min: 60, max: 4 * 3600 }),
    scope: fc.constantFrom('global' as const, 'provider' as const, 'tenant' as const),
  }),
  { minLength: 1, maxLength: 4 },
);

/** The default policy with generated (tight) budgets in place of its own. */
export const arbDefaultPolicyWithBudgets: fc.Arbitrary<CompiledPolicy> = arbBudgets.map((budgets) => {
  const base = defaultCompiledPolicy().policy;
  return compile({ ...base, guards: { ...base.guards, budgets } } as PolicyInput);
});

const arbStage = fc.record(
  {
    action: fc.constantFrom(...ACTION_TYPES),
    approval: fc.oneof(
      { arbitrary: fc.constant('auto' as const), weight: 5 },
      {
        arbitrary: fc.constantFrom(
          'analyst' as const,
          'two-person' as const,
          'external' as const,
          'never' as const,
        ),
        weight: 2,
      },
    ),
    after: fc.integer({ min: 60, max: 3 * 3600 }),
    ttl: fc.integer({ min: 300, max: 6 * 3600 }),
  },
  { requiredKeys: ['action', 'approval'] },
);

const arbRule = fc.record(
  {
    kinds: fc.uniqueArray(fc.constantFrom(...RULE_KINDS), { minLength: 1, maxLength: 3 }),
    minConfidence: fc.constantFrom(0, 0.5, 0.7, 0.85, 0.9),
    count: fc.integer({ min: 1, max: 3 }),
    window: fc.integer({ min: 60, max: 4 * 3600 }),
    distinctSources: fc.integer({ min: 1, max: 2 }),
    types: fc.uniqueArray(fc.constantFrom(...IDENTITY_TYPES), { minLength: 1, maxLength: 3 }),
    ladder: fc.array(arbStage, { minLength: 1, maxLength: 3 }),
    fallback: fc.oneof(
      { arbitrary: fc.constant(false), weight: 3 },
      { arbitrary: fc.constant(true), weight: 1 },
    ),
  },
  { requiredKeys: ['kinds', 'minConfidence', 'count', 'window', 'distinctSources', 'ladder', 'fallback'] },
);

/**
 * A random but valid policy: 1..5 rules (several may react to the same kind, some of them fallbacks,
 * ladders that disable at stage one, automatic approvals everywhere), tight budgets, random guards.
 */
export const arbPolicy: fc.Arbitrary<CompiledPolicy> = fc
  .record({
    rules: fc.array(arbRule, { minLength: 1, maxLength: 5 }),
    budgets: arbBudgets,
    breakGlass: fc.constantFrom('analyst' as const, 'two-person' as const, 'never' as const),
    minConsumers: fc.integer({ min: 2, max: 4 }),
    stagedTiers: fc.subarray([...TIERS]),
    validationWindow: fc.integer({ min: 60, max: 3600 }),
    cooldown: fc.integer({ min: 60, max: 7200 }),
    approvalTtl: fc.integer({ min: 300, max: 6 * 3600 }),
    caseFloor: fc.constantFrom(0, 0.3, 0.6),
  })
  .map((p) =>
    compile({
      id: 'generated',
      version: '1',
      defaults: { caseFloor: p.caseFloor, approvalTtl: p.approvalTtl, cooldown: p.cooldown },
      guards: {
        breakGlass: { approval: p.breakGlass },
        shared: { minConsumers: p.minConsumers },
        stagedContainment: { tiers: p.stagedTiers, validationWindow: p.validationWindow },
        budgets: p.budgets,
      },
      rules: p.rules.map((r, i) => ({
        id: `rule-${i}`,
        when: {
          kinds: r.kinds,
          minConfidence: r.minConfidence,
          count: r.count,
          window: r.window,
          distinctSources: r.distinctSources,
        },
        identities: r.types ? { types: r.types } : {},
        ladder: r.ladder,
        fallback: r.fallback,
      })),
    }),
  );

/** Either the default policy, the default policy with tight budgets, or a random policy. */
export const arbAnyPolicy: fc.Arbitrary<CompiledPolicy> = fc.oneof(
  { arbitrary: fc.constant(null).map(() => defaultCompiledPolicy()), weight: 1 },
  { arbitrary: arbDefaultPolicyWithBudgets, weight: 2 },
  { arbitrary: arbPolicy, weight: 3 },
);
