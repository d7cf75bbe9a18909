/**
 * The scale-out deployment shared by test/e2e/scale-out.e2e.test.ts and bench/scale-out.bench.ts:
 * generated OCSF records, the policy and the serve configuration of a run, and event counts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import { ocsfRecord, ROOT } from './kafka.ts';

export const IDENTITIES = 300;
export const PARTITIONS = 6;

/** Detection n: identity u-(n mod 300); 2 in 5 a known compromise (0.95), else impossible travel (0.82), mixed per identity. */
export function rawRecord(
  run: string,
  n: number,
  baseMs: number,
  identities = IDENTITIES,
): Record<string, unknown> {
  const user = `u-${n % identities}-${run}`;
  const r = ocsfRecord(run, n, user, baseMs + Math.floor(n / identities) * 1000 + (n % identities));
  if ((n + Math.floor(n / identities)) % 5 < 2) {
    const fi = r.finding_info as Record<string, unknown>;
    fi.types = ['Known Compromise'];
    fi.title = 'Account credentials confirmed compromised (threat intel)';
    (fi.analytic as Record<string, unknown>).name = 'Threat intel match';
    r.confidence_score = 95;
  }
  return r;
}

/** The default policy with the blast-radius budget raised and the storm guard off: 300 identities at once is the load here, not a bad rule. */
export function writePolicy(dir: string): string {
  const text = readFileSync(join(ROOT, 'policies/default.yaml'), 'utf8');
  const raised = text.replace(/- action: "\*"\n(\s+)limit: 50\n/, '- action: "*"\n$1limit: 100000\n');
  if (raised === text) throw new Error('policies/default.yaml changed: the "*" budget of 50 was not found');
  // Nor is it a storm: the storm guard would hold the rule's automatic actions from the 10th identity on.
  const calm = raised.replace(/\n {2}storm:\n/, '\n  storm:\n    enabled: false\n');
  if (calm === raised) throw new Error('policies/default.yaml changed: the storm guard block was not found');
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, calm);
  return path;
}

export function writeConfig(
  dir: string,
  o: {
    bootstrap: string;
    registryUrl: string;
    run: string;
    raw?: string;
    storePath: string;
    policy: string;
    journals: string;
  },
): string {
  const file = join(dir, 'tourniquet.yaml');
  writeFileSync(
    file,
    [
      'kafka:',
      `  brokers: [${o.bootstrap}]`,
      `  partitions: ${PARTITIONS}`,
      '  sessionTimeoutMs: 6000',
      '  heartbeatIntervalMs: 1000',
      '  maxBatch: 200',
      'schemaRegistry:',
      `  url: ${o.registryUrl}`,
      'topics:',
      `  detections: ${o.run}.detections`,
      `  deadLetters: ${o.run}.dlq`,
      'groups:',
      `  ingest: ${o.run}.ingest`,
      `  decider: ${o.run}.decider`,
      ...(o.raw
        ? ['ingest:', '  rawTopics:', `    - { topic: ${o.raw}, format: ocsf, encoding: json }`]
        : []),
      'store:',
      '  kind: sqlite',
      `  path: ${o.storePath}`,
      'decider:',
      `  policy: ${o.policy}`,
      '  tickMs: 1000',
      'executor:',
      '  leaseMs: 5000',
      `  dryRunJournalDir: ${o.journals}`,
      'api:',
      '  port: 0',
      '',
    ].join('\n'),
  );
  return file;
}

export function countByType(store: SqliteEventStore): Record<string, number> {
  const rows = store.database.prepare('SELECT type, COUNT(*) AS n FROM events GROUP BY type').all() as Array<{
    type: string;
    n: number;
  }>;
  return Object.fromEntries(rows.map((r) => [r.type, r.n]));
}
