import { appendFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../platform/eventstore/sqlite.ts';
import { DeciderEngine } from '../services/decider/engine.ts';
import { DEFAULT_POLICY_PATH, loadDefaultPolicy, loadPolicyFile } from '../services/decider/policy/load.ts';
import { runHistoryExportCli, runReplayCli, runSimulateCli, runTuneCli } from './cli.ts';
import { readHistory } from './history.ts';

function capture() {
  let text = '';
  return {
    write(chunk: string) {
      text += chunk;
      return true;
    },
    get text() {
      return text;
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'tq-cli-'));
const historyPath = join(dir, 'month.ndjson');

describe('CLI entry points', () => {
  it('simulate writes a scenario file and says what is in it', async () => {
    const stdout = capture();
    const stderr = capture();
    const code = await runSimulateCli({
      scenario: 'mixed',
      seed: 5,
      identities: 200,
      days: 14,
      out: historyPath,
      stdout,
      stderr,
    });
    expect(code).toBe(0);
    expect(stderr.text).toMatch(
      /^simulated mixed \(seed 5, 200 identities, 14 days\): \d+ lines to .*month\.ndjson: \d+ catalogue entries, \d+ detections/,
    );
    const h = await readHistory(historyPath);
    expect(h.records.length).toBeGreaterThan(1000);

    const bad = capture();
    expect(
      await runSimulateCli({
        scenario: 'nope',
        seed: 1,
        identities: 1,
        days: 1,
        out: join(dir, 'x'),
        stdout,
        stderr: bad,
      }),
    ).toBe(1);
    expect(bad.text).toMatch(/unknown scenario "nope" \(one of token-theft, leaked-ci-secret/);
    expect(
      await runSimulateCli({
        scenario: 'mixed',
        seed: 'x',
        identities: 1,
        days: 1,
        out: join(dir, 'x'),
        stdout,
        stderr: bad,
      }),
    ).toBe(1);
    expect(bad.text).toMatch(/--seed must be a number/);
  });

  it('replay --json is byte-identical across runs and matches the report written with --out', async () => {
    const runs: string[] = [];
    for (let i = 0; i < 2; i++) {
      const stdout = capture();
      const stderr = capture();
      const out = join(dir, `report-${i}`);
      const code = await runReplayCli({
        history: historyPath,
        policy: DEFAULT_POLICY_PATH,
        baseline: DEFAULT_POLICY_PATH,
        json: true,
        out,
        stdout,
        stderr,
      });
      expect(code, stderr.text).toBe(0);
      runs.push(stdout.text);
      expect(readFileSync(join(out, 'report.json'), 'utf8')).toBe(stdout.text);
      const html = readFileSync(join(out, 'report.html'), 'utf8');
      expect(html).toMatch(/^<!doctype html>/);
      expect(html).toContain('<svg');
      expect(html).toContain('Per-rule breakdown');
      expect(html).toContain('Diff against the baseline');
      expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!www\.w3\.org)/);
    }
    expect(runs[1]).toBe(runs[0]);
    expect(readFileSync(join(dir, 'report-1', 'report.html'), 'utf8')).toBe(
      readFileSync(join(dir, 'report-0', 'report.html'), 'utf8'),
    );
    const report = JSON.parse(runs[0]!);
    expect(report.policy.digest).toBe(loadDefaultPolicy().digest);
    expect(report.diff).toEqual({ added: [], removed: [], changed: [] });
  });

  it('replay prints a readable summary, and takes the approval assumption', async () => {
    const stdout = capture();
    const code = await runReplayCli({
      history: historyPath,
      policy: DEFAULT_POLICY_PATH,
      approvalLatency: '10m',
      approvalRate: '0.5',
      stdout,
      stderr: capture(),
    });
    expect(code).toBe(0);
    expect(stdout.text).toMatch(/^policy {4}default /m);
    expect(stdout.text).toMatch(/^approvals both, .*assumed answers/m);
    expect(stdout.text).toMatch(/^truth {5}\d+ malicious identities/m);
    const stderr = capture();
    expect(
      await runReplayCli({
        history: historyPath,
        policy: DEFAULT_POLICY_PATH,
        approvalRate: 2,
        stdout,
        stderr,
      }),
    ).toBe(1);
    expect(stderr.text).toMatch(/--approval-rate must be between 0 and 1/);
    const bad = capture();
    expect(
      await runReplayCli({
        history: historyPath,
        policy: DEFAULT_POLICY_PATH,
        approvalLatency: 'soon',
        stdout,
        stderr: bad,
      }),
    ).toBe(1);
    expect(bad.text).toMatch(/--approval-latency: invalid duration "soon"/);
  });

  it('replay fails with the line number of a bad history, or skips and counts with --skip-invalid', async () => {
    const broken = join(dir, 'broken.ndjson');
    writeFileSync(broken, readFileSync(historyPath, 'utf8').split('\n').slice(0, 300).join('\n'));
    appendFileSync(broken, '\n{"type":"rumour","id":"x"}\n{"type":"detection"\n');
    const stderr = capture();
    expect(
      await runReplayCli({
        history: broken,
        policy: DEFAULT_POLICY_PATH,
        json: true,
        stdout: capture(),
        stderr,
      }),
    ).toBe(1);
    expect(stderr.text).toBe(
      'tourniquet: HISTORY_INVALID: line 301: unknown type "rumour" (expected one of detection, identity, approval, verdict)\n',
    );

    const skipped = capture();
    const stdout = capture();
    expect(
      await runReplayCli({
        history: broken,
        policy: DEFAULT_POLICY_PATH,
        json: true,
        skipInvalid: true,
        stdout,
        stderr: skipped,
      }),
    ).toBe(0);
    expect(skipped.text).toContain('tourniquet: skipped line 301: unknown type "rumour"');
    expect(skipped.text).toContain('tourniquet: skipped line 302: not valid JSON');
    expect(skipped.text).toContain('tourniquet: skipped 2 invalid line(s) of 302');
    expect(JSON.parse(stdout.text).totals.detections).toBeGreaterThan(0);

    const missing = capture();
    expect(
      await runReplayCli({
        history: join(dir, 'none.ndjson'),
        policy: DEFAULT_POLICY_PATH,
        stdout,
        stderr: missing,
      }),
    ).toBe(1);
    expect(missing.text).toMatch(/history file not found/);
    const badPolicy = capture();
    expect(
      await runReplayCli({ history: historyPath, policy: join(dir, 'none.yaml'), stdout, stderr: badPolicy }),
    ).toBe(1);
    expect(badPolicy.text).toMatch(/POLICY_INVALID: cannot read policy file/);
  });

  it('tune --json reports a frontier and writes the recommended policy with --out', async () => {
    const stdout = capture();
    const stderr = capture();
    const out = join(dir, 'tune');
    const code = await runTuneCli({
      history: historyPath,
      policy: DEFAULT_POLICY_PATH,
      sweep: ['rules.stolen-token.when.minConfidence=0.8..0.9:0.1'],
      objective: 'f1',
      workers: 2,
      out,
      json: true,
      stdout,
      stderr,
    });
    expect(code, stderr.text).toBe(0);
    const result = JSON.parse(stdout.text);
    expect(result.variants).toHaveLength(2);
    expect(result.frontier.length).toBeGreaterThan(0);
    expect(loadPolicyFile(join(out, 'recommended-policy.yaml')).digest).toBe(
      result.recommended.policy.digest,
    );
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).toContain('Pareto frontier');
    expect(existsSync(join(out, 'report.json'))).toBe(true);

    const bad = capture();
    expect(
      await runTuneCli({
        history: historyPath,
        policy: DEFAULT_POLICY_PATH,
        sweep: ['rules.0.when.minConfidence'],
        stdout,
        stderr: bad,
      }),
    ).toBe(1);
    expect(bad.text).toMatch(/expected PATH=FROM\.\.TO:STEP/);
  });

  it('history export writes what the store holds, and replay reads it back', async () => {
    const dataDir = join(dir, 'data');
    const store = new SqliteEventStore({ path: join(dataDir, 'events.db') });
    const engine = new DeciderEngine({ store, policy: loadDefaultPolicy() });
    await engine.start();
    const history = await readHistory(historyPath);
    let n = 0;
    for (const r of history.records) {
      if (r.type !== 'detection') continue;
      await engine.handle({ type: 'detection', at: r.at, detection: r.detection });
      if (++n === 200) break;
    }
    await store.close();

    const out = join(dir, 'exported.ndjson');
    const stderr = capture();
    expect(await runHistoryExportCli({ dataDir, out, stdout: capture(), stderr })).toBe(0);
    expect(stderr.text).toMatch(/^exported 200 history lines from .*events\.db/);
    const exported = await readHistory(out);
    expect(exported.records.filter((r) => r.type === 'detection')).toHaveLength(200);

    const stdout = capture();
    expect(
      await runHistoryExportCli({
        storePath: join(dataDir, 'events.db'),
        out: '-',
        stdout,
        stderr: capture(),
      }),
    ).toBe(0);
    expect(stdout.text).toBe(readFileSync(out, 'utf8'));

    const missing = capture();
    expect(
      await runHistoryExportCli({ dataDir: join(dir, 'nothing-here'), out, stdout, stderr: missing }),
    ).toBe(1);
    expect(missing.text).toMatch(/NOT_FOUND: no event store at/);
  });
});
