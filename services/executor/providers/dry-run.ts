import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { identityKey } from '../../../schemas/detection.ts';
import type { ActionType } from '../../../schemas/events.ts';
import { ACTION_TYPES } from '../../../schemas/events.ts';
import type {
  ApplyResult,
  FeedbackCall,
  IdentityProvider,
  PriorState,
  Probe,
  ProviderAction,
  ProviderDefinition,
  RevertResult,
  Verdict,
} from './port.ts';

export interface DryRunCall {
  phase: 'capture' | 'apply' | 'isApplied' | 'verify' | 'revert' | 'feedback';
  actionId: string;
  action: ActionType;
  identity: string;
  /** True when apply or revert changed the simulated state (false: idempotent no-op). */
  effect?: boolean;
}

interface SimState {
  enabled: boolean;
  sessions: number;
  applied: Set<string>;
}

/**
 * Records what it would call instead of calling anything, and keeps a simulated identity state so
 * capture, verify and revert behave like a real provider. With `journalPath` every call is appended
 * (synchronously) to a JSON-lines file, and reloaded on start: effects stay countable across a crash.
 */
export class DryRunProvider implements IdentityProvider {
  readonly name: string;
  readonly calls: DryRunCall[] = [];
  private readonly journalPath: string | undefined;
  private readonly state = new Map<string, SimState>();

  constructor(opts: { name?: string; journalPath?: string } = {}) {
    this.name = opts.name ?? 'dry-run';
    this.journalPath = opts.journalPath;
    if (this.journalPath && existsSync(this.journalPath)) {
      for (const line of readFileSync(this.journalPath, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        const call = JSON.parse(line) as DryRunCall;
        this.calls.push(call);
        const sim = this.sim(call.identity);
        if (call.phase === 'apply' && call.effect) this.simulateApply(sim, call.action, call.actionId);
        if (call.phase === 'revert') this.simulateRevert(sim, call.actionId);
      }
    }
  }

  supports(action: ActionType): boolean {
    return ACTION_TYPES.includes(action);
  }

  /** Provider calls that changed state, per action id: exactly-once means every count is 1. */
  effectsByAction(phase: 'apply' | 'revert' = 'apply'): Map<string, number> {
    const counts = new Map<string, number>();
    for (const c of this.calls)
      if (c.phase === phase && c.effect) counts.set(c.actionId, (counts.get(c.actionId) ?? 0) + 1);
    return counts;
  }

  /**
   * Changes the simulated identity as an administrator would, outside Tourniquet (re-enabling it,
   * signing in again), so a test can check that verify notices an effect undone behind its back.
   */
  tamper(identity: ProviderAction['identity'], change: { enabled?: boolean; sessions?: number }): void {
    const s = this.sim(identityKey(identity));
    if (change.enabled !== undefined) s.enabled = change.enabled;
    if (change.sessions !== undefined) s.sessions = change.sessions;
  }

  /** The simulated identity as an outside observer sees it. */
  observe(identity: ProviderAction['identity']): { enabled: boolean; sessions: number } {
    const s = this.sim(identityKey(identity));
    return { enabled: s.enabled, sessions: s.sessions };
  }

  private record(call: DryRunCall): void {
    this.calls.push(call);
    if (this.journalPath) appendFileSync(this.journalPath, `${JSON.stringify(call)}\n`);
  }

  private sim(key: string): SimState {
    let s = this.state.get(key);
    if (!s) {
      s = { enabled: true, sessions: 1, applied: new Set() };
      this.state.set(key, s);
    }
    return s;
  }

  private simulateApply(s: SimState, action: ActionType, actionId: string): void {
    s.applied.add(actionId);
    s.sessions = 0;
    if (action === 'disable_account' || action === 'disable_service_account') s.enabled = false;
    if (action === 'jit_reissue') s.enabled = true;
  }

  private simulateRevert(s: SimState, actionId: string): void {
    s.applied.delete(actionId);
    s.enabled = true;
  }

  async capture(a: ProviderAction): Promise<PriorState> {
    const key = identityKey(a.identity);
    const s = this.sim(key);
    this.record({ phase: 'capture', actionId: a.actionId, action: a.action, identity: key });
    return { enabled: s.enabled, sessions: s.sessions };
  }

  async apply(a: ProviderAction, _prior: PriorState): Promise<ApplyResult> {
    const key = identityKey(a.identity);
    const s = this.sim(key);
    const effect = !s.applied.has(a.actionId);
    if (effect) this.simulateApply(s, a.action, a.actionId);
    this.record({ phase: 'apply', actionId: a.actionId, action: a.action, identity: key, effect });
    return { dryRun: true, wouldCall: `${a.action}(${key})`, idempotentReplay: !effect };
  }

  async isApplied(a: ProviderAction): Promise<boolean> {
    const key = identityKey(a.identity);
    this.record({ phase: 'isApplied', actionId: a.actionId, action: a.action, identity: key });
    return this.sim(key).applied.has(a.actionId);
  }

  async verify(a: ProviderAction): Promise<Probe[]> {
    const key = identityKey(a.identity);
    const s = this.sim(key);
    this.record({ phase: 'verify', actionId: a.actionId, action: a.action, identity: key });
    const probes: Probe[] = [
      { probe: 'sessions', ok: s.sessions === 0, detail: `${s.sessions} active sessions (simulated)` },
    ];
    if (a.action === 'disable_account' || a.action === 'disable_service_account') {
      probes.push({ probe: 'disabled', ok: !s.enabled, detail: `enabled=${s.enabled} (simulated)` });
    }
    return probes;
  }

  /** A simulated detector: the verdict is recorded as if a risk API had been told. */
  async feedback(
    identity: ProviderAction['identity'],
    verdict: Verdict,
    ctx: { caseId: string },
  ): Promise<FeedbackCall[]> {
    const key = identityKey(identity);
    this.record({ phase: 'feedback', actionId: ctx.caseId, action: 'revoke_sessions', identity: key });
    const call = verdict === 'malicious' ? 'confirm compromised' : 'dismiss risk';
    return [
      { call: `${call} (simulated)`, ok: true, detail: `${key}: case ${ctx.caseId} resolved ${verdict}` },
    ];
  }

  async revert(a: ProviderAction, prior: PriorState): Promise<RevertResult> {
    const key = identityKey(a.identity);
    const s = this.sim(key);
    // a revert repeated after a crash finds the effect already undone: recorded, but not an effect
    const effect = s.applied.has(a.actionId);
    this.simulateRevert(s, a.actionId);
    this.record({ phase: 'revert', actionId: a.actionId, action: a.action, identity: key, effect });
    return { restored: [`enabled=${String(prior.enabled ?? true)} (simulated)`], residue: [] };
  }
}

// ---------------------------------------------------------------- registry entry

export const DryRunEntry = z
  .object({
    /** Journal of calls (JSON lines), relative to the data dir (default dry-run-calls.jsonl). */
    journal: z.string().min(1).optional(),
  })
  .strict();
export type DryRunEntry = z.infer<typeof DryRunEntry>;

/** Nothing real changes, so a simulated rollback puts everything back. */
export const dryRunProvider: ProviderDefinition<DryRunEntry> = {
  name: 'dry-run',
  configSchema: DryRunEntry,
  actions: Object.fromEntries(ACTION_TYPES.map((a) => [a, { reversibility: 'reversible', residue: [] }])),
  create(c, deps) {
    const journal = c.journal ?? 'dry-run-calls.jsonl';
    return new DryRunProvider({
      ...(deps.name ? { name: deps.name } : {}),
      journalPath: deps.dataDir ? join(deps.dataDir, journal) : resolve(journal),
    });
  },
};
