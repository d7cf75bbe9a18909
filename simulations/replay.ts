import { ApprovalError, NotFoundError, TourniquetError } from '../platform/errors.ts';
import type { ProviderCapabilities, Reversibility } from '../schemas/capabilities.ts';
import type { IdentityRef } from '../schemas/detection.ts';
import type { ActionType, ApprovalMode, NewEvent } from '../schemas/events.ts';
import { CatalogueIndex, entryAt, type Timeline } from '../services/decider/core/catalogue.ts';
import { compilePolicy } from '../services/decider/core/compiled-policy.ts';
import type { DeciderContext } from '../services/decider/core/decide.ts';
import { DedupeTable, NO_REPEATS } from '../services/decider/core/dedupe.ts';
import { initialState } from '../services/decider/core/evolve.ts';
import { DecisionLedger } from '../services/decider/core/ledger.ts';
import { resolveIdentity } from '../services/decider/core/resolve.ts';
import { step } from '../services/decider/core/step.ts';
import type {
  CatalogueView,
  DeciderInput,
  HumanActor,
  IdentityState,
} from '../services/decider/core/types.ts';
import type { Policy } from '../services/decider/policy/schema.ts';
import { TimedHeap } from './heap.ts';
import { type History, type HistoryRecord, mergeOrder } from './history.ts';
import { keyedUniform } from './prng.ts';

/**
 * Virtual-time replay: a history through the very same decide/evolve core, budget ledger and
 * catalogue index the live decider uses, with time taken from the history alone. No store, no
 * provider, no wall clock. Approvals come from recorded human decisions or from an assumption;
 * the executor is simulated (an approved action executes after a fixed latency and is rolled
 * back by a benign verdict).
 */

export interface ReplayPolicy {
  policy: Policy;
  digest: string;
}

/**
 * Where human answers come from:
 * - 'recorded': only the history's approval lines; unanswered actions expire as they would live;
 * - 'assumed': every action needing a human is answered by the assumption, recorded lines ignored;
 * - 'both': recorded lines for identities that have any, the assumption for the others.
 * Default: 'both' when an assumption is given, else 'recorded' when the history has approval
 * lines, else 'assumed'.
 */
type ApprovalSource = 'recorded' | 'assumed' | 'both';

export interface ApprovalAssumption {
  /** Seconds from proposal to the assumed answer (default 900 = 15 minutes). */
  latencySeconds: number;
  /** Share of assumed answers that approve (default 1); each action draws once, keyed by its id. */
  rate: number;
  /** Seed of the keyed draws (default 0). */
  seed: number;
}

export interface ReplayOptions {
  approvals?: ApprovalSource;
  /** The assumption; giving any part of it (here or below) makes the default source 'both'. */
  assumption?: Partial<ApprovalAssumption>;
  /** Shorthand for assumption.latencySeconds. */
  approvalLatencySeconds?: number;
  /** Shorthand for assumption.rate. */
  approvalRate?: number;
  /** Simulated executor latency: an approved action executes this long after its final approval (default 0). */
  executionLatencySeconds?: number;
  /** What the providers would undo (DeciderContext.capabilities): replayed proposals carry it. */
  capabilities?: ProviderCapabilities | undefined;
  /** Every decider event, in decision order (the fidelity test compares them with a live run). */
  onEvent?: (event: NewEvent) => void;
  /** Called every few thousand inputs and at the end. */
  onProgress?: (done: number, total: number) => void;
}

const DEFAULT_ASSUMPTION: ApprovalAssumption = { latencySeconds: 900, rate: 1, seed: 0 };

type SimActionStatus = 'pending' | 'approved' | 'rejected' | 'expired';

/** One action the replayed decider proposed, with what the simulated humans and executor did to it. */
export interface SimAction {
  id: string;
  type: ActionType;
  stage: number;
  identityKey: string;
  identity: { provider: string; id: string };
  caseId: string;
  ruleId: string;
  mode: ApprovalMode;
  status: SimActionStatus;
  /** Who approved: 'policy' for pre-authorised actions, else the human (or assumed) approvers. */
  approvers: string[];
  proposedAtMs: number;
  decidedAtMs: number | null;
  /** When the simulated executor ran it; null when it never ran. */
  executedAtMs: number | null;
  rolledBackAtMs: number | null;
  /** What the acting provider can undo of it, when the replay was given the providers' capabilities. */
  reversibility?: Reversibility;
  /** The approval group a human decides it in (storm, rule or case); null for automatic actions. */
  group: string | null;
  /** The guards that applied to it (e.g. stale, storm_hold, blast_radius_budget). */
  guards: string[];
}

export interface ReplayRun {
  policy: { id: string; version: string; digest: string };
  actions: SimAction[];
  detections: number;
  guardTrips: number;
  /** StormDetected events: rules held for firing on many identities at once. */
  storms: number;
  /** ActionShadowed events: what rules in monitor mode would have proposed. */
  shadowed: number;
  /** Detection identities neither in the catalogue nor an alias of one (decided as they are). */
  unresolvedIdentities: number;
  /** Identity keys the rule fired on within each storm's window when it was raised, by storm id. */
  stormIdentities: Map<string, string[]>;
  /** Identity key → first detection (decision time) of every identity with detections. */
  firstDetectionMs: Map<string, number>;
  /** Identity key → ground truth; malicious wins over benign when an identity has both. */
  truth: Map<string, 'malicious' | 'benign'>;
  /** First and last input time (ms) over timed inputs; the virtual clock stops at the last. */
  startMs: number;
  endMs: number;
  inputs: number;
  /** Detections refused as conflicting duplicates (source + id taken by another identity or content). */
  conflicts: number;
  approvalSource: ApprovalSource;
  /** Recorded approvals that matched no pending action (another policy proposed something else). */
  unmatchedApprovals: number;
  /** Verdicts for identities with no open case (still ground truth for the metrics). */
  verdictsWithoutCase: number;
  assumedAnswers: number;
}

interface Slot {
  key: string;
  /** The identity as actions and reports name it: one object per identity, shared by its actions. */
  name: { provider: string; id: string };
  state: IdentityState;
  firstDetectionMs: number;
  /** The deadline currently queued for this identity (NaN when none). */
  deadlineMs: number;
  /** The identity's catalogue timeline once it has one (see SlotCatalogue). */
  timeline: Timeline | undefined;
  /**
   * The actions proposed for this identity, oldest first: its events name only its own actions, so
   * they are found here (newest first) rather than in a map of every action of the run.
   */
  actions: SimAction[] | undefined;
}

/** One of the identity's actions by id, searched from the newest (the ones events name). */
function actionOf(slot: Slot, actionId: string): SimAction | undefined {
  const list = slot.actions;
  if (!list) return undefined;
  for (let i = list.length - 1; i >= 0; i--) if (list[i]!.id === actionId) return list[i];
  return undefined;
}

/**
 * The catalogue as the replayed decider reads it: the identity being decided is answered from the
 * timeline its slot keeps (found once, then extended in place by later entries) instead of by two
 * lookups in maps of every identity per decision, which miss the CPU caches on a large history.
 * Any other identity, or one not yet catalogued, is looked up in the index as before.
 */
class SlotCatalogue implements CatalogueView {
  current: Slot | undefined;
  private readonly index: CatalogueIndex;
  constructor(index: CatalogueIndex) {
    this.index = index;
  }

  lookup(identity: Pick<IdentityRef, 'provider' | 'id'>, atMs: number) {
    const slot = this.current;
    if (!slot || identity.id !== slot.name.id || identity.provider !== slot.name.provider)
      return this.index.lookup(identity, atMs);
    slot.timeline ??= this.index.timeline(identity);
    return slot.timeline ? entryAt(slot.timeline, atMs) : undefined;
  }
}

interface TickItem {
  atMs: number;
  seq: number;
  slot: Slot;
}

interface AnswerItem {
  atMs: number;
  seq: number;
  slot: Slot;
  actionId: string;
  approve: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();
const ASSUMED = ['assumed', 'assumed-2'];

/** Replays a history under a policy and returns everything the reports are computed from. */
export function replayHistory(history: History, policy: ReplayPolicy, opts: ReplayOptions = {}): ReplayRun {
  const compiled = compilePolicy(policy.policy, policy.digest);
  const catalogue = new CatalogueIndex();
  const slotCatalogue = new SlotCatalogue(catalogue);
  const ledger = new DecisionLedger();
  const ctx: DeciderContext = {
    ...ledger.context(compiled, slotCatalogue),
    ...(opts.capabilities ? { capabilities: opts.capabilities } : {}),
  };
  const records = history.records;
  const order = mergeOrder(records);
  const total = records.length;
  const execLatencyMs = Math.max(0, (opts.executionLatencySeconds ?? 0) * 1000);
  const assumption: ApprovalAssumption = {
    ...DEFAULT_ASSUMPTION,
    ...opts.assumption,
    ...(opts.approvalLatencySeconds !== undefined ? { latencySeconds: opts.approvalLatencySeconds } : {}),
    ...(opts.approvalRate !== undefined ? { rate: opts.approvalRate } : {}),
  };
  const assumptionGiven =
    opts.assumption !== undefined ||
    opts.approvalLatencySeconds !== undefined ||
    opts.approvalRate !== undefined;
  if (!(assumption.rate >= 0 && assumption.rate <= 1) || !(assumption.latencySeconds >= 0)) {
    throw new TourniquetError(
      'VALIDATION_FAILED',
      'approval rate must be within [0, 1] and latency not negative',
      { status: 400 },
    );
  }
  const onEvent = opts.onEvent;
  const onProgress = opts.onProgress;

  // Which identities have recorded answers (for 'both'), and whether any exist (for the default).
  let hasApprovals = false;
  // Approvals naming an action but no identity find the identity by the action id's tag.
  let approvalsByTag = false;
  const coveredKeys = new Set<string>();
  const coveredTags = new Set<string>();
  let startMs = Number.POSITIVE_INFINITY;
  let endMs = Number.NEGATIVE_INFINITY;
  for (const r of records) {
    if (Number.isFinite(r.atMs)) {
      if (r.atMs < startMs) startMs = r.atMs;
      if (r.atMs > endMs) endMs = r.atMs;
    }
    if (r.type !== 'approval') continue;
    hasApprovals = true;
    if (r.ix >= 0) coveredKeys.add(history.identities[r.ix]!);
    else if (r.actionRef) approvalsByTag = true;
    if (r.actionRef) coveredTags.add(tagOfAction(r.actionRef));
  }
  const source: ApprovalSource =
    opts.approvals ?? (assumptionGiven ? 'both' : hasApprovals ? 'recorded' : 'assumed');
  const useRecorded = source !== 'assumed';
  const horizonMs = endMs;

  const keys = history.identities;
  const slots: Array<Slot | undefined> = new Array(keys.length);
  // Every identity of the run stays in memory: their dedupe sets share one table (faster than one per
  // identity); a history without re-deliveries (withoutRepeatedDetections) needs none.
  const seenTable = history.repeatsRemoved === undefined ? new DedupeTable(history.records.length) : null;
  const slotsByTag = new Map<string, Slot>();
  const actions: SimAction[] = [];
  const truth = new Map<string, 'malicious' | 'benign'>();
  const ticks = new TimedHeap<TickItem>();
  const answers = new TimedHeap<AnswerItem>();
  let seq = 0;
  let detections = 0;
  let guardTrips = 0;
  let storms = 0;
  let shadowed = 0;
  const stormIdentities = new Map<string, string[]>();
  let unmatchedApprovals = 0;
  let verdictsWithoutCase = 0;
  let assumedAnswers = 0;

  const slotFor = (ix: number, identity: IdentityRef): Slot => {
    let slot = slots[ix];
    if (!slot) {
      slot = {
        key: keys[ix]!,
        name: { provider: identity.provider, id: identity.id },
        state: initialState(identity, seenTable ?? NO_REPEATS),
        firstDetectionMs: Number.NaN,
        deadlineMs: Number.NaN,
        timeline: undefined,
        actions: undefined,
      };
      slots[ix] = slot;
      if (approvalsByTag) slotsByTag.set(slot.state.tag, slot);
    }
    return slot;
  };

  // Identities known only as the canonical side of aliases get slots of their own (or share the
  // slot of the same identity when the history also names it directly).
  let ixByKey: Map<string, number> | undefined;
  const aliasSlots = new Map<string, Slot>();
  // Per identity: 0 not yet looked up in the catalogue, 1 catalogued, 2 counted as unresolved.
  // Entries are never withdrawn and replay runs forward in time, so one that was found stays found:
  // the catalogue is asked once per identity, not once per detection.
  const catalogued = new Uint8Array(keys.length);
  let unresolved = 0;
  const canonicalSlot = (identity: IdentityRef): Slot => {
    const key = `${identity.provider}:${identity.id}`;
    ixByKey ??= new Map(keys.map((k, i) => [k, i]));
    const ix = ixByKey.get(key);
    if (ix !== undefined) return slots[ix] ?? slotFor(ix, identity);
    let slot = aliasSlots.get(key);
    if (!slot) {
      const name = { provider: identity.provider, id: identity.id };
      slot = {
        key,
        name,
        state: initialState(identity, seenTable ?? NO_REPEATS),
        firstDetectionMs: Number.NaN,
        deadlineMs: Number.NaN,
        timeline: undefined,
        actions: undefined,
      };
      aliasSlots.set(key, slot);
      if (approvalsByTag) slotsByTag.set(slot.state.tag, slot);
    }
    return slot;
  };

  const needsAssumption = (slot: Slot): boolean =>
    source === 'assumed' ||
    (source === 'both' && !coveredKeys.has(slot.key) && !coveredTags.has(slot.state.tag));

  /** Bookkeeping for one decider event, before it is folded into the state. */
  const observe = (slot: Slot, e: NewEvent, atMs: number): void => {
    switch (e.type) {
      case 'DetectionReceived':
        detections++;
        if (Number.isNaN(slot.firstDetectionMs)) slot.firstDetectionMs = atMs;
        return;
      case 'ActionProposed': {
        const d = e.data;
        const a: SimAction = {
          id: d.actionId,
          type: d.action,
          stage: d.stage,
          identityKey: slot.key,
          identity:
            d.identity.id === slot.name.id && d.identity.provider === slot.name.provider
              ? slot.name
              : { provider: d.identity.provider, id: d.identity.id },
          caseId: d.caseId,
          ruleId: d.ruleId,
          mode: d.approval.mode,
          status: 'pending',
          approvers: [],
          proposedAtMs: atMs,
          decidedAtMs: null,
          executedAtMs: null,
          rolledBackAtMs: null,
          ...(d.reversibility ? { reversibility: d.reversibility.reversibility } : {}),
          group: d.group ?? null,
          guards: d.guards.map((g) => g.guard),
        };
        actions.push(a);
        if (slot.actions) slot.actions.push(a);
        else slot.actions = [a];
        if (a.mode !== 'auto' && a.mode !== 'never' && needsAssumption(slot)) {
          const approve = keyedUniform(a.id, assumption.seed) < assumption.rate;
          answers.push({
            atMs: atMs + assumption.latencySeconds * 1000,
            seq: seq++,
            slot,
            actionId: a.id,
            approve,
          });
        }
        return;
      }
      case 'ActionApproved': {
        const a = actionOf(slot, e.data.actionId);
        if (!a) return;
        const by = e.data.by;
        a.approvers.push(by.kind === 'policy' ? 'policy' : by.id);
        if (e.data.final) {
          a.status = 'approved';
          a.decidedAtMs = atMs;
          a.executedAtMs = atMs + execLatencyMs;
        }
        return;
      }
      case 'ActionRejected':
      case 'ActionExpired': {
        const a = actionOf(slot, e.data.actionId);
        if (a) {
          a.status = e.type === 'ActionRejected' ? 'rejected' : 'expired';
          a.decidedAtMs = atMs;
        }
        return;
      }
      case 'GuardTripped':
        guardTrips++;
        return;
      case 'ActionShadowed':
        shadowed++;
        return;
      case 'StormDetected':
        storms++;
        stormIdentities.set(
          e.data.stormId,
          e.data.identities.map((i) => `${i.provider}:${i.id}`),
        );
        return;
      case 'CaseResolved': {
        if (e.data.verdict !== 'benign') return;
        // The simulated executor rolls back what ran; what was approved but not yet run never runs.
        for (const s of slot.state.openCase?.actions ?? []) {
          const a = actionOf(slot, s.actionId);
          if (!a || a.executedAtMs === null || a.rolledBackAtMs !== null) continue;
          if (a.executedAtMs <= atMs) a.rolledBackAtMs = atMs;
          else a.executedAtMs = null;
        }
        return;
      }
      default:
        return;
    }
  };

  const scheduleDeadline = (slot: Slot, next: number | null): void => {
    if (next === null) {
      slot.deadlineMs = Number.NaN;
    } else if (next !== slot.deadlineMs) {
      slot.deadlineMs = next;
      ticks.push({ atMs: next, seq: seq++, slot });
    }
  };

  /** Decides and folds one input; returns the identity's next deadline. */
  const apply = (slot: Slot, input: DeciderInput, atMs: number): number | null => {
    // As the live engine folds a decision: the ledger sees every event, then the state does.
    // (`observe` reads the state before the fold: a resolved case's actions are still there.)
    slotCatalogue.current = slot;
    const { events, deadline } = step(slot.state, input, ctx, ledger, compiled, (e) => {
      observe(slot, e, atMs);
      if (onEvent) onEvent(e);
    });
    // A lone DetectionReceived cannot move a deadline; anything else may.
    if (events.length > 1 || (events.length === 1 && input.type !== 'detection'))
      scheduleDeadline(slot, deadline);
    return deadline;
  };

  /** Human commands that no longer fit (another policy, another pending action) are counted, not fatal. */
  const applyHuman = (slot: Slot, input: DeciderInput, atMs: number): boolean => {
    try {
      apply(slot, input, atMs);
      return true;
    } catch (err) {
      if (err instanceof ApprovalError || err instanceof NotFoundError) return false;
      throw err;
    }
  };

  const pendingAction = (slot: Slot, actionRef: string | undefined) => {
    const list = slot.state.openCase?.actions;
    if (!list) return undefined;
    if (actionRef) {
      const exact = list.find((a) => a.actionId === actionRef && a.status === 'pending');
      if (exact) return exact;
    }
    return list.find((a) => a.status === 'pending' && a.mode !== 'auto');
  };

  const onApproval = (r: Extract<HistoryRecord, { type: 'approval' }>): void => {
    if (!useRecorded) return;
    const slot = r.ix >= 0 ? slots[r.ix] : r.actionRef ? slotsByTag.get(tagOfAction(r.actionRef)) : undefined;
    const action = slot ? pendingAction(slot, r.actionRef) : undefined;
    if (!slot || !action || !slot.state.identity) {
      unmatchedApprovals++;
      return;
    }
    const by: HumanActor = r.by.role ? { id: r.by.id, role: r.by.role } : { id: r.by.id };
    const input: DeciderInput =
      r.decision === 'approve'
        ? { type: 'approve', at: r.at, identity: slot.state.identity, actionId: action.actionId, by }
        : {
            type: 'reject',
            at: r.at,
            identity: slot.state.identity,
            actionId: action.actionId,
            by,
            reason: r.reason ?? 'rejected',
          };
    if (!applyHuman(slot, input, r.atMs)) unmatchedApprovals++;
  };

  const onVerdict = (r: Extract<HistoryRecord, { type: 'verdict' }>): void => {
    const key = keys[r.ix]!;
    if (truth.get(key) !== 'malicious') truth.set(key, r.verdict);
    const slot = slots[r.ix];
    const open = slot?.state.openCase;
    if (!slot || !open || !slot.state.identity) {
      verdictsWithoutCase++;
      return;
    }
    const by: HumanActor = r.by
      ? r.by.role
        ? { id: r.by.id, role: r.by.role }
        : { id: r.by.id }
      : { id: 'history' };
    apply(
      slot,
      {
        type: 'verdict',
        at: r.at,
        identity: slot.state.identity,
        caseId: open.caseId,
        verdict: r.verdict,
        by,
      },
      r.atMs,
    );
  };

  const onAnswer = (item: AnswerItem): void => {
    const slot = item.slot;
    const identity = slot.state.identity;
    const a = slot.state.openCase?.actions.find((x) => x.actionId === item.actionId);
    if (a?.status !== 'pending' || !identity) return;
    const at = iso(item.atMs);
    assumedAnswers++;
    if (!item.approve) {
      applyHuman(
        slot,
        {
          type: 'reject',
          at,
          identity,
          actionId: a.actionId,
          by: { id: ASSUMED[0]! },
          reason: 'assumed rejection',
        },
        item.atMs,
      );
      return;
    }
    const needed = a.mode === 'two-person' ? 2 - a.approvers.length : 1;
    for (let i = 0; i < needed; i++) {
      const by = ASSUMED.find((id) => !a.approvers.includes(id)) ?? `assumed-${i + 3}`;
      if (
        !applyHuman(slot, { type: 'approve', at, identity, actionId: a.actionId, by: { id: by } }, item.atMs)
      )
        break;
    }
  };

  /** Runs ticks (deadlines first at equal times) and assumed answers due before `untilMs`. */
  const drain = (untilMs: number, inclusiveAnswers: boolean): void => {
    for (;;) {
      const t = ticks.peek();
      const a = answers.peek();
      const tMs = t ? t.atMs : Number.POSITIVE_INFINITY;
      const aMs = a ? a.atMs : Number.POSITIVE_INFINITY;
      if (tMs <= untilMs && tMs <= aMs) {
        ticks.pop();
        const slot = t!.slot;
        if (slot.deadlineMs !== tMs || !slot.state.identity) continue; // superseded
        slot.deadlineMs = Number.NaN;
        scheduleDeadline(
          slot,
          apply(slot, { type: 'tick', at: iso(tMs), identity: slot.state.identity }, tMs),
        );
      } else if (aMs < untilMs || (inclusiveAnswers && aMs <= untilMs)) {
        answers.pop();
        onAnswer(a!);
      } else {
        return;
      }
    }
  };

  const progressEvery = 1 << 16;
  for (let i = 0; i < total; i++) {
    const r = records[order ? order[i]! : i]!;
    if (ticks.size > 0 || answers.size > 0) drain(r.atMs, false);
    switch (r.type) {
      case 'detection': {
        // The record has the shape of the decider's detection input: passed as is, no copy, unless
        // it names an alias, which is decided as its canonical identity.
        const input = resolveIdentity(r, catalogue);
        if (input === r) {
          apply(slots[r.ix] ?? slotFor(r.ix, r.detection.identity), r, r.atMs);
          if (catalogued[r.ix] === 0) {
            if (slotCatalogue.lookup(r.detection.identity, r.atMs)) catalogued[r.ix] = 1;
            else {
              catalogued[r.ix] = 2;
              unresolved++;
            }
          }
        } else if (input.type === 'detection') {
          apply(canonicalSlot(input.detection.identity), input, r.atMs);
        }
        break;
      }
      case 'identity':
        catalogue.add(r.entry);
        break;
      case 'approval':
        onApproval(r);
        break;
      case 'verdict':
        onVerdict(r);
        break;
    }
    if (onProgress && (i + 1) % progressEvery === 0) onProgress(i + 1, total);
  }
  // The virtual clock stops at the last input: what falls due at that very instant still happens.
  if (Number.isFinite(horizonMs)) drain(horizonMs, true);
  onProgress?.(total, total);

  const list = actions;
  for (const a of list) {
    if (a.executedAtMs !== null && a.executedAtMs > horizonMs) a.executedAtMs = null;
  }
  list.sort((x, y) => x.proposedAtMs - y.proposedAtMs || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const firstDetectionMs = new Map<string, number>();
  const noteFirst = (s: Slot | undefined) => {
    if (s && !Number.isNaN(s.firstDetectionMs)) firstDetectionMs.set(s.key, s.firstDetectionMs);
  };
  for (const s of slots) noteFirst(s);
  for (const s of aliasSlots.values()) noteFirst(s);
  return {
    policy: { id: policy.policy.id, version: policy.policy.version, digest: policy.digest },
    actions: list,
    detections,
    guardTrips,
    storms,
    shadowed,
    unresolvedIdentities: unresolved,
    stormIdentities,
    firstDetectionMs,
    truth,
    startMs: Number.isFinite(startMs) ? startMs : 0,
    endMs: Number.isFinite(endMs) ? endMs : 0,
    inputs: total + (history.repeatsRemoved ?? 0) + (history.conflictsRemoved ?? 0),
    conflicts: history.conflictsRemoved ?? 0,
    approvalSource: source,
    unmatchedApprovals,
    verdictsWithoutCase,
    assumedAnswers,
  };
}

/** Action ids are `act-<identity tag>-<case>-<n>`: the tag finds the identity without an index. */
function tagOfAction(actionId: string): string {
  return actionId.startsWith('act-') ? actionId.slice(4, 20) : '';
}
