import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ProviderAction } from '../services/executor/providers/port.ts';
import { SharedDryRunProvider } from './serve.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function capturingLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { log, lines };
}

const action: ProviderAction = {
  actionId: 'act-1',
  action: 'revoke_sessions',
  identity: { provider: 'okta', id: 'alice', type: 'human' },
  args: {},
};

describe('SharedDryRunProvider (executors sharing one simulated provider)', () => {
  it("counts a peer executor's applied action, and reports a peer journal line that is not JSON", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tq-shared-dry-run-'));
    dirs.push(dir);
    const { log, lines } = capturingLog();
    const provider = new SharedDryRunProvider({ dir, executorId: 'b', log });
    appendFileSync(
      join(dir, 'dry-run-a.jsonl'),
      `{"phase":"apply","actionId":"act-0"\n${JSON.stringify({ phase: 'apply', actionId: 'act-1', action: 'revoke_sessions', identity: 'okta:alice', effect: true })}\n`,
    );
    expect(await provider.isApplied(action, {})).toBe(true);
    const result = await provider.apply(action, {});
    expect(result).toMatchObject({ idempotentReplay: true, appliedBy: 'dry-run-a.jsonl' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      journal: 'dry-run-a.jsonl',
      line: '{"phase":"apply","actionId":"act-0"',
      msg: 'dry-run peer journal line is not JSON: skipped',
    });
  });
});
