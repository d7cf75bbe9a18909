/** Loads the vendor fixtures (tests and the property test share them). */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FormatName } from '../../services/ingest/normalizers/index.ts';

export const FIXTURE_DIR = join(
  dirname(fileURLToPath(import.meta.url)),
  '../../services/ingest/normalizers/fixtures',
);

export interface Fixture {
  format: FormatName;
  name: string;
  path: string;
  record: unknown;
}

export function loadFixtures(): Fixture[] {
  const out: Fixture[] = [];
  for (const format of readdirSync(FIXTURE_DIR).sort()) {
    for (const name of readdirSync(join(FIXTURE_DIR, format)).sort()) {
      if (!name.endsWith('.json')) continue;
      const path = join(FIXTURE_DIR, format, name);
      out.push({ format: format as FormatName, name, path, record: JSON.parse(readFileSync(path, 'utf8')) });
    }
  }
  return out;
}

export function fixture(format: FormatName, name: string): unknown {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, format, name), 'utf8'));
}
