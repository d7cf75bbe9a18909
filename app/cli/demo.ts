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
  /** The data directory outlives the run (--data-dir); otherwise the caller removes it. */
  keepData: boolean;
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
    const api = await demoApi(stack);
    say(`Tourniquet demo — embedded stack at ${stack.url}, data in ${opts.dataDir}\n`);
    const run = await playScenario(api, say);
    sayOutcome(run, opts, say);
    const check = selfCheck(run.summary);
    if (opts.json) {
      const json = demoJson(run);
      json.selfCheck = check;
      if (opts.keepData) json.dataDir = opts.dataDir;
      opts.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    }
    if (!(check.automaticContainment && check.analystApproval && check.benignRollback)) {
      process.stderr.write(
        `demo self-check failed: automatic containment ${check.automaticContainment}, analyst approval granted ${check.analystApproval}, benign rollback ${check.benignRollback}\n`,
      );
      return 1;
    }
    return 0;
  } finally {
    await stack.close();
  }
}

/** The demo's two callers of the HTTP API: a SIEM connector (service role) and an analyst. */
interface DemoApi {
  call<T>(method: string, path: string, as: 'service' | 'analyst', body?: unknown): Promise<T>;
  /** The action list once `done` holds of it, or as it is after 15 s. */
  settled(done: (a: ActionView[]) => boolean): Promise<ActionView[]>;
}

async function demoApi(stack: { url: string; auth: Parameters<typeof issueToken>[0] }): Promise<DemoApi> {
  const tokens = {
    service: await issueToken(stack.auth, { sub: 'siem-connector', roles: ['service'] }),
    analyst: await issueToken(stack.auth, { sub: 'dana.analyst', roles: ['analyst'] }),
  };
  const call = async <T>(
    method: string,
    path: string,
    as: 'service' | 'analyst',
    body?: unknown,
  ): Promise<T> => {
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens[as]}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text}`);
    return JSON.parse(text) as T;
  };
  const actions = async () =>
    (await call<{ items: ActionView[] }>('GET', '/v1/actions?limit=1000', 'analyst')).items;
  const settled = async (done: (a: ActionView[]) => boolean) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const list = await actions();
      if (done(list) || Date.now() > deadline) return list;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { call, settled };
}

type IngestAnswer = { accepted: number; duplicates: number; receipts: DemoReceipt[] };
type DemoRun = Parameters<typeof demoJson>[0];

const executing = (a: ActionView[]) => a.every((x) => x.status !== 'approved');

/** Posts the detections, approves Bob's action, clears Carol's case and re-sends an alert. */
async function playScenario(api: DemoApi, say: (line: string) => void): Promise<DemoRun> {
  const { first, later } = demoDetections(new Date());
  const ingest = await api.call<IngestAnswer>('POST', '/v1/detections?wait=views', 'service', first);
  say(`1. A SIEM connector posts ${first.length} detections: ${ingest.accepted} accepted.`);
  let list = await api.settled(executing);

  const pending = list.filter((a) => a.status === 'proposed');
  say('2. The decider applied the policy and its guards:');
  for (const a of list) {
    const guards = a.guards.map((g) => g.guard).join(', ');
    say(
      `   - ${a.identity.id}: ${a.type} (rule ${a.ruleId}) → ${a.approvalMode}${guards ? ` [guards: ${guards}]` : ''} → ${a.status}`,
    );
  }

  const bob = pending.find((a) => a.identity.id === 'bob@acme.example');
  let approval: DemoJson['approval'] = null;
  if (bob) {
    const comment = 'travel not on record';
    await api.call('POST', `/v1/actions/${encodeURIComponent(bob.id)}/approve`, 'analyst', {
      argsDigest: bob.argsDigest,
      comment,
    });
    approval = { actionId: bob.id, by: 'dana.analyst', comment, argsDigest: bob.argsDigest };
    say(
      `3. Analyst dana.analyst approves ${bob.type} for ${bob.identity.id} (bound to digest ${bob.argsDigest.slice(0, 19)}…).`,
    );
  }
  list = await api.settled(executing);

  const carolCase = (
    await api.call<{ items: CaseView[] }>('GET', '/v1/cases?limit=1000', 'analyst')
  ).items.find((c) => c.identity.id === 'carol@acme.example');
  let verdict: DemoJson['verdict'] = null;
  if (carolCase) {
    await api.call('POST', `/v1/cases/${encodeURIComponent(carolCase.id)}/verdict`, 'analyst', {
      verdict: 'benign',
    });
    verdict = { caseId: carolCase.id, verdict: 'benign', by: 'dana.analyst' };
    say(`4. Carol's token alert turns out to be her new laptop: verdict benign on ${carolCase.id}.`);
  }
  const resend = await api.call<IngestAnswer>('POST', '/v1/detections?wait=views', 'service', later);
  say(
    `5. The SIEM re-sends an alert it already sent: ${resend.duplicates} duplicate, ${resend.accepted} new — recorded once.`,
  );
  list = await api.settled(
    (a) =>
      executing(a) &&
      a.filter((x) => x.identity.id === 'carol@acme.example' && x.status === 'executed').length === 0,
  );

  const cases = (await api.call<{ items: CaseView[] }>('GET', '/v1/cases?limit=1000', 'analyst')).items;
  return { first, ingest, resend, cases, summary: list.map(demoAction), approval, verdict };
}

function sayOutcome(run: DemoRun, opts: { dataDir: string; keepData: boolean }, say: (line: string) => void) {
  say('\nOutcome:');
  for (const a of run.summary) {
    say(
      `   ${a.status.padEnd(11)} ${a.type.padEnd(18)} ${`${a.identity.provider}:${a.identity.id}`.padEnd(32)} approval ${a.approval.mode}${a.approval.by ? ` by ${a.approval.by}` : ''}`,
    );
    for (const r of a.residue) say(`               residue: ${r}`);
  }
  say(`\n${run.cases.length} cases, ${run.summary.length} actions. Every step is an event: try`);
  if (opts.keepData) say(`  npx tourniquet audit verify --data-dir ${opts.dataDir}`);
  else
    say(
      '  npx tourniquet demo --data-dir DIR   (keeps the data), then: npx tourniquet audit verify --data-dir DIR',
    );
}

/** The three things the demo must show: automatic containment, an analyst's approval, a benign rollback. */
function selfCheck(summary: DemoAction[]): NonNullable<DemoJson['selfCheck']> {
  return {
    automaticContainment: summary.some(
      (a) => a.approval.mode === 'auto' && (a.status === 'executed' || a.status === 'rolled_back'),
    ),
    analystApproval: summary.some(
      (a) => a.approval.mode === 'analyst' && a.status === 'executed' && a.approval.by,
    ),
    benignRollback: summary.some((a) => a.status === 'rolled_back'),
  };
}

interface DemoReceipt {
  id: string;
  source: string;
  status: string;
}

/** Everything the human output shows, with detections linked to their cases and cases to identities. */
interface DemoJson {
  detections: Array<DemoReceipt & { identity: string; caseId: string | null }>;
  /** The alert the SIEM sent again: recorded once. */
  resend: { accepted: number; duplicates: number; receipts: DemoReceipt[] };
  cases: Array<{
    id: string;
    identity: { provider: string; id: string };
    status: string;
    verdict: string | null;
    detections: string[];
    actions: string[];
  }>;
  actions: DemoAction[];
  approval: { actionId: string; by: string; comment: string; argsDigest: string } | null;
  verdict: { caseId: string; verdict: 'benign'; by: string } | null;
  selfCheck?: { automaticContainment: boolean; analystApproval: boolean; benignRollback: boolean };
  dataDir?: string;
}

function demoAction(a: ActionView): DemoAction {
  return {
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
  };
}

function demoJson(run: {
  first: ReadonlyArray<{ id: string; source: string; identity: { provider: string; id: string } }>;
  ingest: { receipts: DemoReceipt[] };
  resend: DemoJson['resend'];
  cases: CaseView[];
  summary: DemoAction[];
  approval: DemoJson['approval'];
  verdict: DemoJson['verdict'];
}): DemoJson {
  const caseOf = (identity: string, detectionId: string) =>
    run.cases.find((c) => c.identityKey === identity && c.detectionIds.includes(detectionId))?.id ?? null;
  return {
    detections: run.ingest.receipts.map((r) => {
      const d = run.first.find((x) => x.id === r.id && x.source === r.source);
      const identity = d ? `${d.identity.provider}:${d.identity.id}` : '';
      return { id: r.id, source: r.source, status: r.status, identity, caseId: caseOf(identity, r.id) };
    }),
    resend: run.resend,
    cases: run.cases.map((c) => ({
      id: c.id,
      identity: { provider: c.identity.provider, id: c.identity.id },
      status: c.status,
      verdict: c.verdict,
      detections: c.detectionIds,
      actions: c.actionIds,
    })),
    actions: run.summary,
    approval: run.approval,
    verdict: run.verdict,
  };
}
