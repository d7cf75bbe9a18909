/**
 * Properties of the decider core over generated worlds: small identity pools with generated
 * catalogues (break-glass, shared, third-party, tiers, unmanaged secrets, entries that change in
 * event time), detection streams that make rules fire, interleaved human commands, and policies
 * that are either the default, the default with tight budgets, or random.
 *
 * On failure fast-check prints the seed and the shrunk counterexample; re-run one with
 * `fc.assert(..., { seed, path })`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IdentityRef } from '../../../schemas/detection.ts';
import {
  type ActionType,
  type ApprovalMode,
  identityStream,
  type NewEvent,
} from '../../../schemas/events.ts';
import {
  arbAnyPolicy,
  arbDefaultPolicyWithBudgets,
  arbPolicy,
  arbWorld,
  type CoreRunner,
  type EventOf,
  type GeneratedWorld,
  type KitInput,
  runCore,
  runCoreDetailed,
} from '../../../test/support/decider-testkit.ts';
import { budgetKey, type CompiledPolicy } from './compiled-policy.ts';
import { initialState } from './evolve.ts';

/** FC_RUNS=5000 for a deeper search; fast-check prints the seed of any failure. */
const RUNS = { numRuns: Number(process.env.FC_RUNS ?? 300) };
const MODE_RANK: Record<ApprovalMode, number> = {
  auto: 0,
  analyst: 1,
  'two-person': 2,
  external: 3,
  never: 4,
};
const REVOCATIONS: ReadonlySet<ActionType> = new Set([
  'revoke_sessions',
  'revoke_tokens',
  'revoke_oauth_grant',
  'rotate_credential',
  'disable_account',
  'disable_service_account',
]);

function run(
  policy: CompiledPolicy,
  world: GeneratedWorld,
  opts: { paused?: boolean; assertPure?: boolean } = {},
): CoreRunner {
  return runCoreDetailed(world.inputs, { policy, catalogue: world.catalogue, ...opts });
}

const atMs = (e: NewEvent) => Date.parse(e.occurredAt);

/** What the catalogue said about an identity when an event was decided. */
function entryAt(r: CoreRunner, identity: IdentityRef, e: NewEvent) {
  return r.catalogue.lookup(identity, atMs(e));
}

function proposalsById(events: readonly NewEvent[]): Map<string, EventOf<'ActionProposed'>> {
  const m = new Map<string, EventOf<'ActionProposed'>>();
  for (const e of events) if (e.type === 'ActionProposed') m.set(e.data.actionId, e);
  return m;
}

describe('decider core properties (generated detection streams, catalogues and commands)', () => {
  it('is deterministic: the same inputs, policy and catalogue give the same events, event for event', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const first = runCore(world.inputs, { policy, catalogue: world.catalogue });
        const second = runCore(world.inputs, { policy, catalogue: world.catalogue });
        expect(second).toEqual(first);
      }),
      RUNS,
    );
  });

  it('gives every event a unique id (the store refuses duplicates)', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const ids = run(policy, world).events.map((e) => e.id);
        expect(new Set(ids).size).toBe(ids.length);
      }),
      RUNS,
    );
  });

  it('never acts automatically on a break-glass identity', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const r = run(policy, world);
        for (const e of r.events) {
          if (e.type === 'ActionApproved' && e.data.by.kind === 'policy') {
            expect(entryAt(r, e.data.identity, e)?.breakGlass ?? false, `auto approval ${e.id}`).toBe(false);
          }
          if (e.type === 'ActionProposed' && entryAt(r, e.data.identity, e)?.breakGlass) {
            expect(e.data.approval.mode, e.id).not.toBe('auto');
            expect(MODE_RANK[e.data.approval.mode], e.id).toBeGreaterThanOrEqual(
              MODE_RANK[policy.policy.guards.breakGlass.approval],
            );
          }
        }
      }),
      RUNS,
    );
  });

  describe('blast-radius budgets', () => {
    /** Automatic proposals per budget (index) and key, in decision time. */
    function autoStamps(r: CoreRunner, policy: CompiledPolicy) {
      const budgets = policy.policy.guards.budgets;
      const stamps = new Map<string, number[]>();
      for (const e of r.events) {
        if (e.type !== 'ActionProposed' || e.data.approval.mode !== 'auto') continue;
        const entry = entryAt(r, e.data.identity, e) ?? e.data.identity;
        budgets.forEach((b, i) => {
          if (b.action !== '*' && b.action !== e.data.action) return;
          if (b.rules && !b.rules.includes(e.data.ruleId)) return;
          const k = `${i}|${budgetKey(b, entry, e.data.ruleId)}`;
          const list = stamps.get(k) ?? [];
          list.push(atMs(e));
          stamps.set(k, list);
        });
      }
      return stamps;
    }
    const inWindow = (list: number[], t: number, windowMs: number) =>
      list.filter((s) => s > t - windowMs && s <= t).length;

    it('in no sliding window do automatic actions exceed any budget', () => {
      fc.assert(
        fc.property(
          fc.oneof(arbDefaultPolicyWithBudgets, arbPolicy),
          arbWorld({ maxIdentities: 8, maxInputs: 120 }),
          (policy, world) => {
            const r = run(policy, world);
            const budgets = policy.policy.guards.budgets;
            for (const [k, list] of autoStamps(r, policy)) {
              const b = budgets[Number(k.split('|')[0])]!;
              for (const t of list)
                expect(
                  inWindow(list, t, b.window * 1000),
                  `${k} at ${new Date(t).toISOString()}`,
                ).toBeLessThanOrEqual(b.limit);
            }
          },
        ),
        RUNS,
      );
    });

    it('holds the budget even when decision times interleave out of order across identities (partitions lag differently)', () => {
      fc.assert(
        fc.property(
          fc.oneof(arbDefaultPolicyWithBudgets, arbPolicy),
          arbWorld({ maxIdentities: 8, maxInputs: 120 }),
          fc.array(fc.integer({ min: 0, max: 2 * 3600 }), { minLength: 8, maxLength: 8 }),
          (policy, world, lagSeconds) => {
            // Each identity's inputs stay in order; across identities the decision times interleave.
            const lagged = world.inputs.map((input) => lagInput(input, world, lagSeconds));
            const r = runCoreDetailed(lagged, { policy, catalogue: world.catalogue });
            const budgets = policy.policy.guards.budgets;
            for (const [k, list] of autoStamps(r, policy)) {
              const b = budgets[Number(k.split('|')[0])]!;
              for (const t of list)
                expect(
                  inWindow(list, t, b.window * 1000),
                  `${k} at ${new Date(t).toISOString()}`,
                ).toBeLessThanOrEqual(b.limit);
            }
          },
        ),
        RUNS,
      );
    });

    it('degrades an automatic action only when a budget it counts under is really spent', () => {
      fc.assert(
        fc.property(arbAnyPolicy, arbWorld({ maxIdentities: 8, maxInputs: 120 }), (policy, world) => {
          const r = run(policy, world);
          const stamps = autoStamps(r, policy);
          const budgets = policy.policy.guards.budgets;
          for (const e of r.events) {
            if (e.type !== 'ActionProposed' || !e.data.guards.some((g) => g.guard === 'blast_radius_budget'))
              continue;
            const entry = entryAt(r, e.data.identity, e) ?? e.data.identity;
            const t = atMs(e);
            const spent = budgets.some((b, i) => {
              if (b.action !== '*' && b.action !== e.data.action) return false;
              if (b.rules && !b.rules.includes(e.data.ruleId)) return false;
              const list = stamps.get(`${i}|${budgetKey(b, entry, e.data.ruleId)}`) ?? [];
              return inWindow(list, t, b.window * 1000) >= b.limit;
            });
            expect(spent, `${e.id} degraded by a budget that was not spent`).toBe(true);
          }
        }),
        RUNS,
      );
    });

    it('raises GuardTripped once per exhaustion of a budget key, not once per degraded action', () => {
      fc.assert(
        fc.property(arbAnyPolicy, arbWorld({ maxIdentities: 8, maxInputs: 120 }), (policy, world) => {
          const r = run(policy, world);
          const tripped = new Set<string>();
          for (const e of r.events) {
            if (e.type === 'GuardTripped') {
              expect(tripped.has(e.data.scope), `${e.id}: ${e.data.scope} already tripped`).toBe(false);
              tripped.add(e.data.scope);
            } else if (e.type === 'ActionProposed' && e.data.approval.mode === 'auto') {
              for (const k of e.data.blastRadius.budgetKeys) tripped.delete(k);
            }
          }
        }),
        RUNS,
      );
    });
  });

  it('never duplicates an action for the same evidence: one pending/approved action of a type per case, one DetectionReceived per detection', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const r = run(policy, world);
        const live = new Map<string, { caseId: string; action: ActionType; status: string }>();
        const received = new Set<string>();
        for (const e of r.events) {
          switch (e.type) {
            case 'DetectionReceived': {
              const key = `${e.stream}|${e.data.detection.source}:${e.data.detection.id}`;
              expect(received.has(key), `${key} received twice`).toBe(false);
              received.add(key);
              break;
            }
            case 'ActionProposed': {
              const clash = [...live.values()].find(
                (a) =>
                  a.caseId === e.data.caseId &&
                  a.action === e.data.action &&
                  (a.status === 'pending' || a.status === 'approved'),
              );
              expect(clash, `${e.id} duplicates a ${e.data.action} already ${clash?.status}`).toBeUndefined();
              live.set(e.data.actionId, { caseId: e.data.caseId, action: e.data.action, status: 'pending' });
              break;
            }
            case 'ActionApproved':
              if (e.data.final) live.get(e.data.actionId)!.status = 'approved';
              break;
            case 'ActionRejected':
              live.get(e.data.actionId)!.status = 'rejected';
              break;
            case 'ActionExpired':
              live.get(e.data.actionId)!.status = 'expired';
              break;
            default:
              break;
          }
        }
      }),
      RUNS,
    );
  });

  it('leaves no action pending in a resolved case (every proposal reaches approved, rejected or expired, or stays in an open case)', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const r = run(policy, world);
        const pending = new Map<string, string>(); // actionId -> caseId
        const resolved = new Set<string>();
        for (const e of r.events) {
          if (e.type === 'ActionProposed') pending.set(e.data.actionId, e.data.caseId);
          if (
            (e.type === 'ActionApproved' && e.data.final) ||
            e.type === 'ActionRejected' ||
            e.type === 'ActionExpired'
          ) {
            pending.delete(e.data.actionId);
          }
          if (e.type === 'CaseResolved') resolved.add(e.data.caseId);
        }
        for (const [actionId, caseId] of pending)
          expect(resolved.has(caseId), `${actionId} pending in resolved ${caseId}`).toBe(false);
      }),
      RUNS,
    );
  });

  it('binds every approval to an earlier proposal of the same action with the same digest, while it is pending and unexpired', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const r = run(policy, world);
        const proposed = new Map<string, EventOf<'ActionProposed'>>();
        const decided = new Set<string>();
        for (const e of r.events) {
          if (e.type === 'ActionProposed') proposed.set(e.data.actionId, e);
          if (e.type === 'ActionRejected' || e.type === 'ActionExpired') decided.add(e.data.actionId);
          if (e.type !== 'ActionApproved') continue;
          const p = proposed.get(e.data.actionId);
          expect(p, `${e.id} approves an action never proposed`).toBeDefined();
          expect(e.data.argsDigest).toBe(p!.data.argsDigest);
          expect(e.data.caseId).toBe(p!.data.caseId);
          expect(e.stream).toBe(p!.stream);
          expect(decided.has(e.data.actionId), `${e.id} approves a decided action`).toBe(false);
          expect(atMs(e)).toBeLessThan(Date.parse(p!.data.approval.expiresAt));
          if (e.data.final) decided.add(e.data.actionId);
        }
      }),
      RUNS,
    );
  });

  it('never revokes automatically on a third-party connected identity, and asks the partner instead', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const r = run(policy, world);
        const byId = proposalsById(r.events);
        const coordinated = new Set(
          r.events.filter((e) => e.type === 'CoordinationRequested').map((e) => e.data.actionId),
        );
        for (const e of r.events) {
          if (e.type === 'ActionApproved' && e.data.by.kind === 'policy') {
            const p = byId.get(e.data.actionId)!;
            if (REVOCATIONS.has(p.data.action))
              expect(entryAt(r, e.data.identity, e)?.thirdParty, `auto ${p.data.action}`).toBeUndefined();
          }
          if (
            e.type === 'ActionProposed' &&
            REVOCATIONS.has(e.data.action) &&
            entryAt(r, e.data.identity, e)?.thirdParty
          ) {
            expect(e.data.approval.mode).toBe('external');
            expect(coordinated.has(e.data.actionId), `${e.id} without CoordinationRequested`).toBe(true);
          }
        }
      }),
      RUNS,
    );
  });

  it('approves nothing automatically while automation is paused (kill switch)', () => {
    fc.assert(
      fc.property(
        arbAnyPolicy,
        arbWorld({ killSwitch: true }),
        fc.boolean(),
        (policy, world, startPaused) => {
          const r = run(policy, world, { paused: startPaused });
          r.events.forEach((e, i) => {
            if (e.type === 'ActionApproved' && e.data.by.kind === 'policy')
              expect(r.pausedAt[i], `${e.id} while paused`).toBe(false);
            if (e.type === 'ActionProposed' && r.pausedAt[i]) expect(e.data.approval.mode).not.toBe('auto');
          });
        },
      ),
      RUNS,
    );
  });

  it('makes a two-person action final only with two distinct human approvers, neither of them the proposer', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const r = run(policy, world);
        const byId = proposalsById(r.events);
        const approvers = new Map<string, string[]>();
        for (const e of r.events) {
          if (e.type !== 'ActionApproved') continue;
          const p = byId.get(e.data.actionId)!;
          const proposer = p.data.ruleId === 'manual' ? String(p.data.args.proposedBy) : null;
          if (e.data.by.kind === 'human') {
            expect(e.data.by.id, `${e.id}: the proposer approved`).not.toBe(proposer);
            const list = approvers.get(e.data.actionId) ?? [];
            expect(list, `${e.id}: same approver twice`).not.toContain(e.data.by.id);
            list.push(e.data.by.id);
            approvers.set(e.data.actionId, list);
          }
          if (p.data.approval.mode === 'two-person') {
            expect(e.data.by.kind).toBe('human');
            const list = approvers.get(e.data.actionId)!;
            expect(e.data.final, `${e.id} final after ${list.length} approver(s)`).toBe(list.length >= 2);
          }
        }
      }),
      RUNS,
    );
  });

  it('never mutates the state it decides on (deep clone before, compare after)', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld({ killSwitch: true }), (policy, world) => {
        run(policy, world, { assertPure: true });
      }),
      RUNS,
    );
  });

  it('forgets evidence no rule can count without changing a single decision (window pruning and confidence floors are invisible)', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const pruned = runCore(world.inputs, { policy, catalogue: world.catalogue });
        const unpruned = runCore(world.inputs, {
          policy,
          catalogue: world.catalogue,
          rememberAllEvidence: true,
        });
        expect(pruned).toEqual(unpruned);
      }),
      RUNS,
    );
  });

  it('rebuilds the same identity state from its stream as the live fold kept (replay)', () => {
    fc.assert(
      fc.property(arbAnyPolicy, arbWorld(), (policy, world) => {
        const r = run(policy, world);
        for (const [, live] of r.states) {
          if (!live.identity) continue;
          const stream = identityStream(live.identity);
          const rebuilt = initialState(live.identity);
          for (const e of r.events) if (e.stream === stream) r.fold(rebuilt, e);
          expect(rebuilt).toEqual(live);
        }
      }),
      { numRuns: 200 },
    );
  });
});

/** Shifts an input's decision time back by its identity's lag (kill-switch inputs are not shifted). */
function lagInput(input: KitInput, world: GeneratedWorld, lagSeconds: number[]): KitInput {
  if (input.type === 'pause' || input.type === 'resume') return input;
  const identity = input.type === 'detection' ? input.detection.identity : input.identity;
  const lag = (lagSeconds[world.identities.findIndex((i) => i.id === identity.id)] ?? 0) * 1000;
  const at = new Date(Date.parse(input.at) - lag).toISOString();
  if (input.type === 'detection') {
    const occurredAt = new Date(Date.parse(input.detection.occurredAt) - lag).toISOString();
    return { ...input, at, detection: { ...input.detection, occurredAt } };
  }
  return { ...input, at };
}
