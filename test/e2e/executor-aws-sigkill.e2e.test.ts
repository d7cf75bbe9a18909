/**
 * SIGKILL of an executor process between the AWS call and its record, against moto: each run adds one
 * approved action on a fresh IAM user or role and kills the executor right after the provider's apply
 * returned (before ActionExecuted). A clean restart must find the effect already in place (isApplied),
 * record it as reconciled, and not call apply again; IAM shows the effect once.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type IAMClient,
  ListAccessKeysCommand,
  ListAttachedRolePoliciesCommand,
  ListAttachedUserPoliciesCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { ActionType } from '../../schemas/events.ts';
import { DEFAULT_DENY_ALL } from '../../services/executor/providers/aws.ts';
import {
  type ApprovedSpec,
  appendApproved,
  outcomeOf,
  readJournal,
  waitFor,
} from '../support/executor-fixtures.ts';
import { type ExecutorProc, killProc, startExecutorProc, stopProc } from '../support/executor-procs.ts';
import {
  type AwsFixture,
  createAwsFixture,
  type MotoHandle,
  motoIam,
  motoUnavailableReason,
  startMoto,
  stopMoto,
} from '../support/moto.ts';

const unavailable = motoUnavailableReason();
if (unavailable) console.warn(`[executor-aws-sigkill.e2e] SKIPPED: ${unavailable}`);

describe.skipIf(unavailable !== null)('SIGKILL between the AWS call and its record (moto)', () => {
  let moto: MotoHandle;
  let iam: IAMClient;
  let current: ExecutorProc | undefined;

  beforeAll(async () => {
    moto = await startMoto();
    iam = motoIam(moto.url);
  }, 600_000);
  afterAll(async () => {
    if (current) await killProc(current);
    await stopMoto(moto);
  }, 60_000);

  test('each killed action is reconciled after the restart, applied once', { timeout: 180_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-aws-kill-'));
    const storePath = join(dir, 'events.db');
    const journal = join(dir, 'journal.jsonl');
    const providers = join(dir, 'providers.json');
    writeFileSync(
      providers,
      JSON.stringify({
        providers: {
          aws: {
            type: 'aws',
            endpoint: moto.url,
            accessKeyId: 'AKIAMOTOTESTKEY00000',
            secretAccessKey: 'moto',
          },
        },
        executor: { concurrency: 1 },
      }),
    );
    const store = new SqliteEventStore({ path: storePath, pollMs: 20 });
    const plan: {
      action: ActionType;
      pick: (fx: AwsFixture) => { id: string; type: 'human' | 'api_key' | 'workload' };
    }[] = [
      { action: 'revoke_tokens', pick: (fx) => ({ id: fx.accessKeyId, type: 'api_key' }) },
      { action: 'disable_account', pick: (fx) => ({ id: fx.userArn, type: 'human' }) },
      { action: 'quarantine', pick: (fx) => ({ id: fx.roleArn, type: 'workload' }) },
    ];
    const runs: { spec: ApprovedSpec; fx: AwsFixture }[] = [];
    for (const [i, p] of plan.entries()) {
      const fx = await createAwsFixture(iam);
      const { id, type } = p.pick(fx);
      const spec: ApprovedSpec = {
        identity: { provider: 'aws', id, type },
        caseId: `case-aws-${i}-${fx.userName}`,
        actionId: `act-aws-${i}-${fx.userName}`,
        action: p.action,
      };
      runs.push({ spec, fx });
      await appendApproved(store, [spec]);
      current = await startExecutorProc({
        id: 'exec-aws',
        store: storePath,
        providers,
        journal,
        killAt: 'apply-end:1',
      });
      const { signal } = await current.exited;
      expect(signal, current.output()).toBe('SIGKILL');
      current = undefined;
      expect((await outcomeOf(store, spec.actionId)).executed).toBe(0);
    }

    current = await startExecutorProc({ id: 'exec-aws', store: storePath, providers, journal });
    await waitFor(
      async () => {
        const os = await Promise.all(runs.map((r) => outcomeOf(store, r.spec.actionId)));
        return os.every((o) => o.executed === 1 && o.verified === 1);
      },
      60_000,
      'every action executed and verified',
      100,
    );
    await stopProc(current);
    current = undefined;

    const lines = readJournal(journal);
    for (const { spec, fx } of runs) {
      const o = await outcomeOf(store, spec.actionId);
      expect(o.reconciled, spec.actionId).toBe(1);
      expect(o.failed, spec.actionId).toEqual([]);
      const applies = lines.filter((l) => l.actionId === spec.actionId && l.phase === 'apply-start');
      expect(applies, `${spec.actionId}: apply called once, before the kill`).toHaveLength(1);
      expect(
        lines.some((l) => l.actionId === spec.actionId && l.phase === 'isApplied' && l.applied === true),
        spec.actionId,
      ).toBe(true);
      // IAM itself.
      if (spec.action === 'revoke_tokens') {
        const keys = (await iam.send(new ListAccessKeysCommand({ UserName: fx.userName }))).AccessKeyMetadata;
        expect(keys?.map((k) => k.Status)).toEqual(['Inactive']);
      } else if (spec.action === 'disable_account') {
        const p = (await iam.send(new ListAttachedUserPoliciesCommand({ UserName: fx.userName })))
          .AttachedPolicies;
        expect(p?.map((x) => x.PolicyArn)).toEqual([DEFAULT_DENY_ALL]);
      } else {
        const p = (await iam.send(new ListAttachedRolePoliciesCommand({ RoleName: fx.roleName })))
          .AttachedPolicies;
        expect(p?.map((x) => x.PolicyArn)).toEqual([DEFAULT_DENY_ALL]);
      }
    }
    await store.close();
  });
});
