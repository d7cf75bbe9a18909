/**
 * Dead code as a test, so `npm test` fails on an export, file or dependency nothing uses (knip,
 * configured in knip.json; `npm run lint:unused` runs the same check on its own).
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const KNIP = join(ROOT, 'node_modules/knip/bin/knip.js');

describe('unused code', () => {
  it('knip finds no unused file, export, type or dependency', () => {
    const run = spawnSync(process.execPath, [KNIP, '--no-progress', '--no-config-hints'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    // On failure the report lists each unused item with its file and line.
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  }, 120_000);
});
