/**
 * The layering (schemas ← platform ← services ← app, see docs/architecture.md) as a test, so
 * `npm test` fails on an upward import. The rules live in .dependency-cruiser.cjs; `npm run
 * lint:layers` runs the same check on its own.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs');
const LAYERED_FOLDERS = ['schemas', 'platform', 'services', 'app', 'simulations'];

describe('layering', () => {
  it('no production module imports from a layer above it, another service or test code', () => {
    const run = spawnSync(
      process.execPath,
      [DEPCRUISE, '--config', '.dependency-cruiser.cjs', '--output-type', 'err', ...LAYERED_FOLDERS],
      { cwd: ROOT, encoding: 'utf8' },
    );
    // The report names each offending import and the rule it breaks.
    expect(run.stdout + run.stderr).toContain('no dependency violations found');
    expect(run.status).toBe(0);
  }, 60_000);
});
