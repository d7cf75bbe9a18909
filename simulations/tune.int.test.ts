import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDefaultPolicy, loadPolicyFile } from '../services/decider/policy/load.ts';
import { historyFromLines, writeHistoryLines } from './history.ts';
import { renderTuneHtml } from './html.ts';
import type { ReplayDetails } from './run-replay.ts';
import { generateHistory } from './scenarios/index.ts';
import { paretoFrontier, runTune, type TuneResult } from './tune.ts';

const policy = loadDefaultPolicy();
const lines = [...generateHistory({ scenario: 'mixed', seed: 21, identities: 300, days: 10 })];

describe('tune', () => {
  it('sweeps on worker threads, finds a frontier and writes a valid recommended policy', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tq-tune-'));
    const historyPath = join(out, 'history.ndjson');
    await writeHistoryLines(lines, historyPath);
    let details: ReplayDetails | undefined;
    const progress: number[] = [];
    const result = await runTune({
      history: historyPath,
      policy,
      sweeps: ['rules.stolen-token.when.minConfidence=0.8..0.9:0.05', 'rules.stolen-token.when.count=1,2'],
      objective: 'f1',
      workers: 2,
      out,
      onProgress: (done) => progress.push(done),
      onDetails: (d) => {
        details = d;
      },
    });
    expect(result.variants).toHaveLength(6);
    expect(progress).toEqual([1, 2, 3, 4, 5, 6]);
    expect(result.variants.map((v) => v.label)).toEqual([
      'rules.stolen-token.when.minConfidence=0.8 rules.stolen-token.when.count=1',
      'rules.stolen-token.when.minConfidence=0.8 rules.stolen-token.when.count=2',
      'rules.stolen-token.when.minConfidence=0.85 rules.stolen-token.when.count=1',
      'rules.stolen-token.when.minConfidence=0.85 rules.stolen-token.when.count=2',
      'rules.stolen-token.when.minConfidence=0.9 rules.stolen-token.when.count=1',
      'rules.stolen-token.when.minConfidence=0.9 rules.stolen-token.when.count=2',
    ]);
    expect(result.frontier.length).toBeGreaterThan(0);
    // Frontier members are not dominated; every other variant is.
    expect(paretoFrontier(result.variants)).toEqual(result.frontier);
    for (const v of result.variants) expect(v.onFrontier).toBe(result.frontier.includes(v.index));
    const best = Math.max(...result.variants.map((v) => v.metrics.f1));
    expect(result.variants[result.recommended.index]!.metrics.f1).toBe(best);

    // The recommended policy re-validates, under its own version, with the swept values in place.
    const file = result.recommended.file!;
    expect(file).toBe(join(out, 'recommended-policy.yaml'));
    const loaded = loadPolicyFile(file);
    expect(loaded.digest).toBe(result.recommended.policy.digest);
    expect(loaded.policy.version).toBe(`${policy.policy.version}-tuned.${result.recommended.index}`);
    const rule = loaded.policy.rules.find((r) => r.id === 'stolen-token')!;
    const assigned = result.variants[result.recommended.index]!.assignments;
    expect(rule.when.minConfidence).toBe(assigned[0]!.value);
    expect(rule.when.count).toBe(assigned[1]!.value);
    expect(readFileSync(file, 'utf8')).toMatch(/^# Recommended by `tourniquet tune`/);
    expect(JSON.parse(readFileSync(join(out, 'tune.json'), 'utf8')).frontier).toEqual(result.frontier);

    // The recommended policy replayed against the input policy, for the report.
    expect(details!.report.policy.digest).toBe(result.recommended.policy.digest);
    expect(details!.report.diff).toBeDefined();
    const html = renderTuneHtml(result, details!);
    expect(html).toContain('<svg');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  }, 120_000);

  it('gives the same answer in-process and on workers, from a parsed history', async () => {
    const history = historyFromLines(lines);
    const sweeps = ['rules.0.when.minConfidence=0.85..0.95:0.05', 'guards.budgets.0.limit=10,50'];
    const strip = (r: TuneResult) =>
      JSON.stringify({ ...r, recommended: { ...r.recommended, file: undefined } });
    const inline = await runTune({
      history,
      policy,
      sweeps,
      objective: 'recall-at-precision:0.5',
      workers: 0,
    });
    const threaded = await runTune({
      history,
      policy,
      sweeps,
      objective: 'recall-at-precision:0.5',
      workers: 2,
    });
    expect(strip(threaded)).toBe(strip(inline));
    expect(inline.objective).toBe('recall-at-precision:0.5');
    const cost = await runTune({ history, policy, sweeps, objective: 'cost:100,10,1', workers: 0 });
    const minCost = Math.min(...cost.variants.map((v) => v.cost));
    expect(cost.variants[cost.recommended.index]!.cost).toBe(minCost);
    expect(existsSync(join(tmpdir(), 'recommended-policy.yaml'))).toBe(false);
  }, 120_000);

  it('rejects a variant the policy schema refuses, naming it', async () => {
    await expect(
      runTune({
        history: historyFromLines(lines),
        policy,
        sweeps: ['rules.0.when.minConfidence=0.9..1.1:0.1'],
        workers: 0,
      }),
    ).rejects.toThrow(
      /variant rules\.0\.when\.minConfidence=1\.1 is not a valid policy: rules\.0\.when\.minConfidence/,
    );
    await expect(
      runTune({
        history: historyFromLines(lines),
        policy,
        sweeps: ['rules.nope.when.count=1..2'],
        workers: 0,
      }),
    ).rejects.toThrow(/no item with id "nope"/);
  });
});
