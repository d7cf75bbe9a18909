/**
 * The embedded stack acting on one local vendor (GitHub, Okta, Entra ID, Google) through a providers
 * file and a policy file, as `tourniquet start --providers FILE --policy FILE` runs it, plus the few
 * calls an end-to-end case makes: send a detection, wait for an action's outcome, give a verdict,
 * read the explanation.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { type EmbeddedStack, startEmbedded } from '../../../app/embedded.ts';
import type { IdentityRef, NormalizedDetectionInput } from '../../../schemas/detection.ts';
import { actionStream, feedbackStream, identityStream, type RecordedEvent } from '../../../schemas/events.ts';
import { issueToken } from '../../../services/api/auth.ts';
import type { Explanation } from '../../../services/projector/explain.ts';

type Detection = Omit<NormalizedDetectionInput, 'occurredAt' | 'severity'> & {
  severity?: NormalizedDetectionInput['severity'];
};
type Proposal = RecordedEvent<'ActionProposed'>;

type Outcome = 'ActionRolledBack' | 'ActionFailed';

/** An action's events once its outcome is recorded, and that outcome. */
interface ActionOutcome<T extends Outcome> {
  events: RecordedEvent[];
  outcome: RecordedEvent<T>;
}

export interface SaasStack {
  stack: EmbeddedStack;
  detect(d: Detection): Promise<void>;
  /** Sends the detection and waits for the first action proposed for its identity. */
  propose(d: Detection): Promise<Proposal>;
  /** The action's events once its effect is verified (waits). */
  verified(p: Proposal, what: string): Promise<RecordedEvent[]>;
  /**
   * A benign verdict on the proposal's case, then the action's events once one of `until` is
   * recorded (the rollback, or its refusal as ActionFailed).
   */
  afterBenign<T extends Outcome>(p: Proposal, until: T[], what: string): Promise<ActionOutcome<T>>;
  /** The first action proposed for the identity (waits for it). */
  proposal(identity: IdentityRef): Promise<RecordedEvent<'ActionProposed'>>;
  /** Every event of the action's stream once `done` holds for it (waits). */
  actionEvents(actionId: string, done: (types: string[]) => boolean, what: string): Promise<RecordedEvent[]>;
  identityEvents(identity: IdentityRef): Promise<RecordedEvent[]>;
  verdict(caseId: string, verdict: 'benign' | 'malicious'): Promise<void>;
  approve(actionId: string, argsDigest: string): Promise<void>;
  explain(actionId: string): Promise<Explanation>;
  /** The ProviderFeedbackSent recorded for the case's verdict (waits for it). */
  feedback(caseId: string): Promise<RecordedEvent<'ProviderFeedbackSent'>>;
  close(): Promise<void>;
}

/** A policy with one rule per entry: the detection kind and identity types it answers, and its ladder. */
export function policyOf(
  rules: Array<{ id: string; kinds: string[]; types: string[]; ladder: Array<Record<string, unknown>> }>,
): unknown {
  return {
    id: 'saas-e2e',
    version: '1',
    defaults: { caseFloor: 0.3, unknownIdentity: { tier: 'development', consumers: 1 } },
    guards: { stagedContainment: { tiers: ['production'], validationWindow: '30m' } },
    rules: rules.map((r) => ({
      id: r.id,
      when: { kinds: r.kinds, minConfidence: 0.5 },
      identities: { types: r.types },
      ladder: r.ladder,
    })),
  };
}

async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startSaasStack(opts: {
  providers: Record<string, unknown>;
  policy: unknown;
}): Promise<SaasStack> {
  const dir = mkdtempSync(join(tmpdir(), 'tq-saas-e2e-'));
  writeFileSync(join(dir, 'providers.yaml'), stringify({ providers: opts.providers }));
  writeFileSync(join(dir, 'policy.yaml'), stringify(opts.policy));
  const stack = await startEmbedded({
    dataDir: join(dir, 'data'),
    port: 0,
    providersPath: join(dir, 'providers.yaml'),
    policyPath: join(dir, 'policy.yaml'),
    tickMs: 1000,
    durability: 'normal',
    log: pino({ level: 'silent' }),
  });
  const service = await issueToken(stack.auth, { sub: 'siem-connector', roles: ['service'] });
  const api = async (method: string, path: string, body?: unknown, token = stack.adminToken) => {
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  let seq = 0;
  const s: SaasStack = {
    stack,
    async detect(d) {
      await api(
        'POST',
        '/v1/detections',
        { severity: 'critical', occurredAt: new Date(Date.now() - 1000 + seq++).toISOString(), ...d },
        service,
      );
    },
    async propose(d) {
      await s.detect(d);
      return s.proposal(d.identity);
    },
    verified: (p, what) => s.actionEvents(p.data.actionId, (t) => t.includes('ActionVerified'), what),
    async afterBenign<T extends Outcome>(p: Proposal, until: T[], what: string) {
      await s.verdict(p.data.caseId, 'benign');
      const events = await s.actionEvents(p.data.actionId, (t) => until.some((u) => t.includes(u)), what);
      const outcome = events.find((e) => (until as string[]).includes(e.type)) as RecordedEvent<T>;
      return { events, outcome };
    },
    identityEvents: (identity) => stack.store.readStream(identityStream(identity)),
    proposal: (identity) =>
      waitUntil(
        async () =>
          (await s.identityEvents(identity)).find(
            (e): e is RecordedEvent<'ActionProposed'> => e.type === 'ActionProposed',
          ),
        `a proposal for ${identity.id}`,
      ),
    actionEvents: (actionId, done, what) =>
      waitUntil(async () => {
        const events = await stack.store.readStream(actionStream(actionId));
        return done(events.map((e) => e.type)) ? events : undefined;
      }, what),
    async verdict(caseId, verdict) {
      await api('POST', `/v1/cases/${caseId}/verdict`, { verdict, comment: 'e2e' });
    },
    async approve(actionId, argsDigest) {
      await api('POST', `/v1/actions/${actionId}/approve`, { argsDigest, comment: 'e2e' });
    },
    feedback: (caseId) =>
      waitUntil(
        async () =>
          (await stack.store.readStream(feedbackStream(caseId))).find(
            (e): e is RecordedEvent<'ProviderFeedbackSent'> => e.type === 'ProviderFeedbackSent',
          ),
        `the verdict feedback of ${caseId}`,
      ),
    explain: async (actionId) => (await api('GET', `/v1/actions/${actionId}/explain`)) as Explanation,
    async close() {
      await stack.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return s;
}
