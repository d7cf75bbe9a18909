import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runPolicyExplain, runPolicyValidate } from './cli.ts';
import { DEFAULT_POLICY_PATH, loadDefaultPolicy } from './load.ts';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.text += chunk.toString();
    done();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'tq-policy-'));
let n = 0;
function policyFile(text: string): string {
  n += 1;
  const path = join(dir, `policy-${n}.yaml`);
  writeFileSync(path, text);
  return path;
}

function validate(file: string) {
  const out = new Capture();
  const err = new Capture();
  const code = runPolicyValidate(file, out, err);
  return { code, out: out.text, err: err.text };
}

const VALID_RULE = `
  - id: compromise
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder:
      - { action: revoke_sessions, approval: auto }
`;

describe('tourniquet policy validate', () => {
  it('accepts policies/default.yaml: exit 0 and a one-line summary', () => {
    const r = validate(DEFAULT_POLICY_PATH);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^ok: policy default version 2026\.11\.1, 7 rules, digest sha256:[0-9a-f]{64}\n$/);
  });

  const broken: Array<{ name: string; yaml: string; paths: string[]; message?: RegExp }> = [
    {
      name: 'YAML that does not parse',
      yaml: 'id: p\nversion: "1"\nrules:\n  - id: a\n    when: { kinds: [known_compromise]\n',
      paths: ['(yaml line'],
    },
    {
      name: 'an action the decider cannot take',
      yaml: `id: p\nversion: "1"\nrules:\n  - id: a\n    when: { kinds: [known_compromise] }\n    ladder: [{ action: nuke_account, approval: auto }]\n`,
      paths: ['rules.0.ladder.0.action'],
    },
    {
      name: 'a confidence of 1.5',
      yaml: `id: p\nversion: "1"\nrules:\n  - id: a\n    when: { kinds: [known_compromise], minConfidence: 1.5 }\n    ladder: [{ action: revoke_sessions, approval: auto }]\n`,
      paths: ['rules.0.when.minConfidence'],
    },
    {
      name: 'two rules with the same id',
      yaml: `id: p\nversion: "1"\nrules:${VALID_RULE}${VALID_RULE}`,
      paths: ['rules.1.id'],
      message: /duplicate rule id "compromise"/,
    },
    {
      name: 'a duration written "5 minutes"',
      yaml: `id: p\nversion: "1"\nrules:\n  - id: a\n    when: { kinds: [known_compromise], count: 2, window: 5 minutes }\n    ladder: [{ action: revoke_sessions, approval: auto }]\n`,
      paths: ['rules.0.when.window'],
      message: /invalid duration "5 minutes"/,
    },
    {
      name: 'a rule without a ladder',
      yaml: `id: p\nversion: "1"\nrules:\n  - id: a\n    when: { kinds: [known_compromise] }\n`,
      paths: ['rules.0.ladder'],
    },
    {
      name: 'an unknown approval mode and an unknown field in a stage',
      yaml: `id: p\nversion: "1"\nrules:\n  - id: a\n    when: { kinds: [known_compromise] }\n    ladder: [{ action: revoke_sessions, approval: yolo, delay: 5m }]\n`,
      paths: ['rules.0.ladder.0.approval', 'rules.0.ladder.0'],
    },
    {
      name: 'no rules at all, and no version',
      yaml: 'id: p\nrules: []\n',
      paths: ['version', 'rules'],
    },
  ];

  for (const b of broken) {
    it(`rejects ${b.name}: exit 1, naming ${b.paths.join(' and ')}`, () => {
      const r = validate(policyFile(b.yaml));
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toMatch(/^invalid policy .*policy-\d+\.yaml:\n/);
      for (const p of b.paths) expect(r.err).toContain(`  ${p}`);
      if (b.message) expect(r.err).toMatch(b.message);
    });
  }

  it('reports every bad path of a policy at once, one per line', () => {
    const r = validate(
      policyFile(`id: p
version: "1"
defaults: { caseFloor: 2 }
guards:
  budgets: [{ action: everything, limit: -1, window: soon }]
rules:
  - id: Bad Id
    when: { kinds: [telepathy], minConfidence: 1.5, window: 5 minutes }
    ladder: [{ action: nuke_account, approval: auto }]
`),
    );
    expect(r.code).toBe(1);
    const lines = r.err.trim().split('\n').slice(1);
    const paths = lines.map((l) => l.trim().split(':')[0]);
    expect(paths).toEqual(
      expect.arrayContaining([
        'defaults.caseFloor',
        'guards.budgets.0.action',
        'guards.budgets.0.limit',
        'guards.budgets.0.window',
        'rules.0.id',
        'rules.0.when.kinds.0',
        'rules.0.when.minConfidence',
        'rules.0.when.window',
        'rules.0.ladder.0.action',
      ]),
    );
  });

  it('says so when the file cannot be read: exit 1', () => {
    const r = validate(join(dir, 'missing.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/cannot read policy file .*missing\.yaml/);
  });
});

describe('tourniquet policy explain', () => {
  it('prints every rule id of the default policy, with its evidence, ladder and approvals, and the guards', () => {
    const out = new Capture();
    expect(runPolicyExplain(DEFAULT_POLICY_PATH, out)).toBe(0);
    const { policy, digest } = loadDefaultPolicy();
    for (const r of policy.rules) expect(out.text).toMatch(new RegExp(`^${r.id}\\s+\\|`, 'm'));
    expect(out.text).toContain('2× within 1h');
    expect(out.text).toContain(
      '1: revoke_tokens → auto; 2: force_step_up → auto; 3: disable_account → analyst (after 30m)',
    );
    expect(out.text).toContain('break-glass identities: at least two-person, never automatic');
    expect(out.text).toContain('budget: at most 5 automatic disable_account per 1h (tenant)');
    expect(out.text).toContain(`digest ${digest}`);
  });
});
