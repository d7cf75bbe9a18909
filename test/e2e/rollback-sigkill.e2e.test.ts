/**
 * SIGKILL of an executor in the middle of rollbacks (a benign verdict on cases whose actions were
 * executed), at chosen points of the provider's revert (before it, after it but before
 * ActionRolledBack) and at random delays. After a final clean run every action is rolled back exactly
 * once: one ActionRolledBack per action (none lost, none doubled), and the provider undid each effect
 * once, counted from its own crash-safe journal. Runs without servers (the dry-run provider).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { IdentityRef } from '../../schemas/detection.ts';
import { DryRunProvider } from '../../services/executor/providers/dry-run.ts';
import {
  type ApprovedSpec,
  appendApproved,
  outcomeOf,
  readJournal,
  resolveCase,
  settled,
  waitFor,
} from '../support/executor-fixtures.ts';
import { killProc, startExecutorProc, stopProc } from '../support/executor-procs.ts';

const ACTIONS = 60;
const ROUNDS = 10;

describe('SIGKILL during rollbacks', () => {
  test('every executed action of a benign case is rolled back exactly once across kills', {
    timeout: 240_000,
  }, async () => {
    const seed = Number(process.env.TQ_SEED ?? Math.floor(Math.random() * 100_000));
    let state = seed;
    const random = () => {
      state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
      return state / 2_147_483_648;
    };
    console.log(`[rollback-sigkill] seed ${seed} (TQ_SEED=${seed} repeats the kill points)`);

    const dir = mkdtempSync(join(tmpdir(), 'tq-rollback-kill-'));
    const storePath = join(dir, 'events.db');
    const providers = join(dir, 'providers.json');
    writeFileSync(
      providers,
      JSON.stringify({ providers: { '*': { type: 'dry-run', journal: 'dry-run-calls.jsonl' } } }),
    );
    const journal = join(dir, 'journal.jsonl');
    const exec = (killAt?: string) =>
      startExecutorProc({
        id: 'rollback-executor',
        store: storePath,
        providers,
        journal,
        ...(killAt ? { killAt } : {}),
        env: { TQ_DATA_DIR: dir, TQ_LEASE_MS: '1000' },
      });

    const store = new SqliteEventStore({ path: storePath, pollMs: 20 });
    const specs: ApprovedSpec[] = Array.from({ length: ACTIONS }, (_, i) => {
      const identity: IdentityRef = { provider: 'okta', id: `rb-user-${i}@acme.example`, type: 'human' };
      return {
        identity,
        action: i % 2 === 0 ? 'disable_account' : 'revoke_sessions',
        actionId: `act-rb-${i}`,
        caseId: `case-rb-${i}`,
      };
    });
    try {
      await appendApproved(store, specs);
      // every action executed first, by a clean run
      const first = await exec();
      await waitFor(
        async () =>
          (await Promise.all(specs.map((s) => outcomeOf(store, s.actionId)))).every((o) => settled(o)),
        60_000,
        'every action executed',
      );
      await stopProc(first);

      for (const s of specs) await resolveCase(store, s.identity, s.caseId, 'benign');
      const rolledBack = async () =>
        (await Promise.all(specs.map((s) => outcomeOf(store, s.actionId)))).filter((o) => settled(o, true))
          .length;

      let midRollbackKills = 0;
      for (let round = 0; round < ROUNDS && (await rolledBack()) < ACTIONS; round++) {
        const before = await rolledBack();
        const selfKill = round % 3 !== 2;
        const point = random() < 0.5 ? 'revert-start' : 'revert-end';
        const proc = await exec(selfKill ? `${point}:${1 + Math.floor(random() * 12)}` : undefined);
        if (!selfKill) {
          await new Promise((r) => setTimeout(r, 20 + Math.floor(random() * 300)));
          await killProc(proc);
        }
        const exit = await Promise.race([
          proc.exited,
          new Promise<null>((r) => setTimeout(() => r(null), 30_000)),
        ]);
        if (exit === null) await killProc(proc);
        const after = await rolledBack();
        if (exit?.signal === 'SIGKILL' && after < ACTIONS) midRollbackKills += 1;
        if (process.env.TQ_DEBUG) console.log('round', round, { point, selfKill, before, after, exit });
      }
      // the kills landed in the middle of rollbacks, not only before or after them
      expect(midRollbackKills).toBeGreaterThan(0);

      const last = await exec();
      await waitFor(async () => (await rolledBack()) === ACTIONS, 60_000, 'every rollback');
      await stopProc(last);

      for (const s of specs) {
        const o = await outcomeOf(store, s.actionId);
        expect(o.executed, `${s.actionId} executed once`).toBe(1);
        expect(o.rolledBack, `${s.actionId} rolled back once`).toHaveLength(1);
        expect(o.failed.filter((f) => f.data.phase === 'rollback')).toEqual([]);
      }
      // the provider's own record: each effect applied once and undone once
      const provider = new DryRunProvider({ journalPath: join(dir, 'dry-run-calls.jsonl') });
      const applied = provider.effectsByAction('apply');
      const reverted = provider.effectsByAction('revert');
      for (const s of specs) {
        expect(applied.get(s.actionId), `apply effects of ${s.actionId}`).toBe(1);
        expect(reverted.get(s.actionId), `revert effects of ${s.actionId}`).toBe(1);
      }
      // every action's revert was attempted; a kill between the provider and ActionRolledBack made the
      // next run call it again, which the provider answered as already undone (no second effect)
      const starts = readJournal(journal).filter((l) => l.phase === 'revert-start').length;
      expect(starts).toBeGreaterThanOrEqual(ACTIONS);
    } finally {
      await store.close();
    }
  });
});
