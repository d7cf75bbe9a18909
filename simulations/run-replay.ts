/** Replay then report: runs the replay (and a baseline, if any) and builds the report from the runs. */
import type { History } from './history.ts';
import { type ReplayOptions, type ReplayPolicy, type ReplayRun, replayHistory } from './replay.ts';
import { buildReport, type ReplayReport, type RunSummary, summarize } from './report.ts';

export interface RunReplayInput extends ReplayOptions {
  history: History;
  policy: ReplayPolicy;
  /** A second policy to compare against: the report gains `diff` (baseline → policy). */
  baseline?: ReplayPolicy;
}

export interface ReplayDetails {
  report: ReplayReport;
  summary: RunSummary;
  run: ReplayRun;
  baseline?: { run: ReplayRun; summary: RunSummary };
}

/** Replays under the policy (and the baseline, if any) and keeps what the HTML report plots. */
export function replayWithDetails(input: RunReplayInput): ReplayDetails {
  const { history, policy, baseline, ...opts } = input;
  const progress = opts.onProgress;
  const runs = baseline ? 2 : 1;
  const run = replayHistory(history, policy, {
    ...opts,
    ...(progress ? { onProgress: (done: number, total: number) => progress(done, total * runs) } : {}),
  });
  const summary = summarize(run);
  if (!baseline) return { report: buildReport(run, undefined, summary), summary, run };
  const { onEvent: _ignored, ...baselineOpts } = opts;
  const baseRun = replayHistory(history, baseline, {
    ...baselineOpts,
    ...(progress ? { onProgress: (done: number, total: number) => progress(total + done, total * 2) } : {}),
  });
  return {
    report: buildReport(run, baseRun, summary),
    summary,
    run,
    baseline: { run: baseRun, summary: summarize(baseRun) },
  };
}

/** Replays a history under a policy: the report of issue 7 (with `diff` when a baseline is given). */
export function runReplay(input: RunReplayInput): ReplayReport {
  return replayWithDetails(input).report;
}
