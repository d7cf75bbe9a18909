import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { stringify } from 'yaml';
import { issueToken } from '../../services/api/auth.ts';
import type { ActionView, CaseView } from '../../services/projector/views.ts';
import { startEmbedded } from '../embedded.ts';
import { DEMO_CATALOGUE, demoDetections } from './demo-scenario.ts';

interface DemoAction {
  id: string;
  type: string;
  identity: { provider: string; id: string };
  status: string;
  approval: { mode: string; by: string | null };
  ruleId: string;
  guards: string[];
  residue: string[];
}

/**
 * `tourniquet demo`: the embedded stack in a temporary directory, driven through its own HTTP API
 * exactly as a SIEM connector and an analyst would drive it.
 */
export async function runDemo(opts: {
  json: boolean;
  dataDir: string;
  log: Logger;
  stdout: NodeJS.WritableStream;
}): Promise<number> {
  const cataloguePath = join(opts.dataDir, 'catalogue.yaml');
  writeFileSync(cataloguePath, stringify(DEMO_CATALOGUE));
  const stack = await startEmbedded({
    dataDir: opts.dataDir,
    port: 0,
    cataloguePath,
    tickMs: 1000,
    log: opts.log,
  });
  const say = (line: string) => {
    if (!opts.json) opts.stdout.write(`${line}\n`);
  };
  try {
    const service = await issueToken(stack.auth, { sub: 'siem-connector', roles: ['service'] });
    const analyst = await issueToken(stack.auth, { sub: 'dana.analyst', roles: ['analyst'] });
    const call = async <T>(method: string, path: string, token: string, body?: unknown): Promise<T> => {
      const res = await fetch(`${stack.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
      return JSON.parse(text) as T;
    };
    const actions = async () =>
      (await call<{ items: ActionView[] }>('GET', '/v1/actions?limit=1000', analyst)).items;
    const settled = async (done: (a: ActionView[]) => boolean) => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const list = await actions();
        if (done(list) || Date.now() > deadline) return list;
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const executing = (a: ActionView[]) => a.every((x) => x.status !== 'approved');

    say(`Tourniquet demo — embedded stack at ${stack.url}, data in ${opts.dataDir}\n`);
    const { first, later } = demoDetections(new Date());
    const ingest = await call<{
      accepted: number;
      duplicates: number;
      receipts: Array<{ id: string; source: string; status: string }>;
    }>('POST', '/v1/detections', service, first);
    say(`1. A SIEM connector posts ${first.length} detections: ${ingest.accepted} accepted.`);
    let list = await settled(executing);

    const pending = list.filter((a) => a.status === 'proposed');
    say('2. The decider applied the policy and its guards:');
    for (const a of list) {
      const guards = a.guards.map((g) => g.guard).join(', ');
      say(
        `   - ${a.identity.id}: ${a.type} (rule ${a.ruleId}) → ${a.approvalMode}${guards ? ` [guards: ${guards}]` : ''} → ${a.status}`,
      );
    }

    const bob = pending.find((a) => a.identity.id === 'bob@acme.example');
    if (bob) {
      await call('POST', `/v1/actions/${encodeURIComponent(bob.id)}/approve`, analyst, {
        argsDigest: bob.argsDigest,
        comment: 'travel not on record',
      });
      say(
        `3. Analyst dana.analyst approves ${bob.type} for ${bob.identity.id} (bound to digest ${bob.argsDigest.slice(0, 19)}…).`,
      );
    }
    list = await settled(executing);

    const carolCase = (await call<{ items: CaseView[] }>('GET', '/v1/cases?limit=1000', analyst)).items.find(
      (c) => c.identity.id === 'carol@acme.example',
    );
    if (carolCase) {
      await call('POST', `/v1/cases/${encodeURIComponent(carolCase.id)}/verdict`, analyst, {
        verdict: 'benign',
      });
      say(`4. Carol's token alert turns out to be her new laptop: verdict benign on ${carolCase.id}.`);
    }
    const dup = await call<{ accepted: number; duplicates: number }>(
      'POST',
      '/v1/detections',
      service,
      later,
    );
    say(
      `5. The SIEM re-sends an alert it already sent: ${dup.duplicates} duplicate, ${dup.accepted} new — recorded once.`,
    );
    list = await settled(
      (a) =>
        executing(a) &&
        a.filter((x) => x.identity.id === 'carol@acme.example' && x.status === 'executed').length === 0,
    );

    const cases = (await call<{ items: CaseView[] }>('GET', '/v1/cases?limit=1000', analyst)).items;
    const summary: DemoAction[] = list.map((a) => ({
      id: a.id,
      type: a.type,
      identity: { provider: a.identity.provider, id: a.identity.id },
      status: a.status,
      approval: {
        mode: a.approvalMode,
        by:
          a.approvals.filter((x) => x.final).map((x) => x.approver)[0] ??
          (a.approvals.map((x) => x.approver).join(', ') || null),
      },
      ruleId: a.ruleId,
      guards: a.guards.map((g) => g.guard),
      residue: a.residue,
    }));

    say('\nOutcome:');
    for (const a of summary) {
      say(
        `   ${a.status.padEnd(11)} ${a.type.padEnd(18)} ${`${a.identity.provider}:${a.identity.id}`.padEnd(32)} approval ${a.approval.mode}${a.approval.by ? ` by ${a.approval.by}` : ''}`,
      );
      for (const r of a.residue) say(`               residue: ${r}`);
    }
    say(`\n${cases.length} cases, ${summary.length} actions. Every step is an event: try`);
    say(`  npx tourniquet audit verify --data-dir ${opts.dataDir}`);

    const auto = summary.some(
      (a) => a.approval.mode === 'auto' && (a.status === 'executed' || a.status === 'rolled_back'),
    );
    const analystGranted = summary.some(
      (a) => a.approval.mode === 'analyst' && a.status === 'executed' && a.approval.by,
    );
    const rolledBack = summary.some((a) => a.status === 'rolled_back');
    if (opts.json) {
      opts.stdout.write(
        `${JSON.stringify(
          {
            detections: ingest.receipts.map((r) => ({ id: r.id, source: r.source, status: r.status })),
            cases: cases.map((c) => ({
              id: c.id,
              identity: { provider: c.identity.provider, id: c.identity.id },
              status: c.status,
              verdict: c.verdict,
              actions: c.actionIds,
            })),
            actions: summary,
          },
          null,
          2,
        )}\n`,
      );
    }
    if (!(auto && analystGranted && rolledBack)) {
      process.stderr.write(
        `demo self-check failed: automatic containment ${auto}, analyst approval granted ${analystGranted}, benign rollback ${rolledBack}\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    await stack.close();
  }
}
