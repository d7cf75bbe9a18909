/** `tourniquet demo --json` as a newcomer runs it: one document that links everything, and no leftovers. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI } from '../../test/support/cli.ts';

const TMP = mkdtempSync(join(tmpdir(), 'tq-demo-test-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

interface DemoJson {
  detections: Array<{ id: string; identity: string; caseId: string | null }>;
  resend: { accepted: number; duplicates: number };
  cases: Array<{
    id: string;
    identity: { provider: string; id: string };
    detections: string[];
    actions: string[];
  }>;
  actions: Array<{ id: string; identity: { provider: string; id: string } }>;
  approval: { actionId: string; by: string; comment: string } | null;
  verdict: { caseId: string; verdict: string } | null;
  selfCheck: Record<string, boolean>;
}

describe('tourniquet demo --json', () => {
  it('carries the approval, the verdict and the re-send, links detections → cases → identities, and removes its directory', () => {
    const run = spawnSync(process.execPath, [CLI, 'demo', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: TMP },
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout) as DemoJson;

    expect(doc.selfCheck).toEqual({
      automaticContainment: true,
      analystApproval: true,
      benignRollback: true,
    });
    expect(doc.approval).toMatchObject({ by: 'dana.analyst', comment: 'travel not on record' });
    expect(doc.actions.map((a) => a.id)).toContain(doc.approval!.actionId);
    expect(doc.verdict?.verdict).toBe('benign');
    expect(doc.resend).toEqual(expect.objectContaining({ duplicates: 1, accepted: 0 }));

    const cases = new Map(doc.cases.map((c) => [c.id, c]));
    expect(cases.has(doc.verdict!.caseId)).toBe(true);
    const linked = doc.detections.filter((d) => d.caseId !== null);
    expect(linked.length).toBeGreaterThan(0);
    for (const d of linked) {
      const c = cases.get(d.caseId!)!;
      expect(c.detections).toContain(d.id);
      expect(`${c.identity.provider}:${c.identity.id}`).toBe(d.identity);
    }

    // Only the loader's own cache may remain: the demo's data directory is gone.
    expect(readdirSync(TMP).filter((n) => n.startsWith('tourniquet-demo-'))).toEqual([]);
  }, 90_000);
});
