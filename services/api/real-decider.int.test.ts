import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../platform/eventstore/sqlite.ts';
import type { NormalizedDetection } from '../../schemas/detection.ts';
import type { DeciderGateway, IngestGateway } from '../../schemas/gateways.ts';
import { detection, FakeAutomation } from '../../test/support/projector-kit.ts';
import { DeciderEngine } from '../decider/engine.ts';
import { loadDefaultPolicy } from '../decider/policy/load.ts';
import { Projector } from '../projector/projector.ts';
import { generateAuthConfig, issueToken } from './auth.ts';
import { buildApi } from './server.ts';

/**
 * The API against the real decider engine and the default policy (no fakes between the API and
 * the decider): the approval boundary as a SOC meets it.
 */
describe('API with the real decider', () => {
  let store: SqliteEventStore;
  let projector: Projector;
  let app: Awaited<ReturnType<typeof buildApi>>;
  let analyst: Record<string, string>;
  let service: Record<string, string>;

  beforeEach(async () => {
    store = new SqliteEventStore({ path: ':memory:' });
    const engine = new DeciderEngine({ store, policy: loadDefaultPolicy() });
    await engine.start();
    const decider: DeciderGateway = { submit: (input) => engine.handle(input) };
    const ingest: IngestGateway = {
      async accept(ds: readonly NormalizedDetection[]) {
        const out = [];
        for (const d of ds) {
          const r = await engine.handle({ type: 'detection', at: new Date().toISOString(), detection: d });
          const e = r.events.find((x) => x.type === 'DetectionReceived');
          out.push({
            id: d.id,
            source: d.source,
            status: e ? ('accepted' as const) : ('duplicate' as const),
            ...(e ? { eventId: e.id } : {}),
          });
        }
        return out;
      },
    };
    projector = new Projector({ store, path: ':memory:' });
    await projector.start();
    const auth = generateAuthConfig();
    app = await buildApi({ store, projector, ingest, decider, automation: new FakeAutomation(store), auth });
    analyst = { authorization: `Bearer ${await issueToken(auth, { sub: 'ann', roles: ['analyst'] })}` };
    service = { authorization: `Bearer ${await issueToken(auth, { sub: 'siem', roles: ['service'] })}` };
  });
  afterEach(async () => {
    await app.close();
    await projector.close();
    await store.close();
  });

  it('detection → proposal waiting for an analyst → approved by the principal → benign verdict', async () => {
    const frank = { provider: 'okta', id: 'frank', type: 'human' as const };
    const now = new Date().toISOString();
    const ingest = await app.inject({
      method: 'POST',
      url: '/v1/detections',
      headers: service,
      payload: [detection('d-f1', frank, { kind: 'other', confidence: 0.6, occurredAt: now })],
    });
    expect(ingest.statusCode).toBe(202);
    expect(ingest.json()).toMatchObject({ accepted: 1, duplicates: 0 });
    const dup = await app.inject({
      method: 'POST',
      url: '/v1/detections',
      headers: service,
      payload: detection('d-f1', frank, { kind: 'other', confidence: 0.6, occurredAt: now }),
    });
    expect(dup.json()).toMatchObject({ accepted: 0, duplicates: 1 });

    const queue = (
      await app.inject({
        method: 'GET',
        url: '/v1/actions?status=proposed&identity=okta:frank',
        headers: analyst,
      })
    ).json();
    expect(queue.items).toHaveLength(1);
    const action = queue.items[0];
    expect(action.approvalMode).toBe('analyst');

    const approved = await app.inject({
      method: 'POST',
      url: `/v1/actions/${action.id}/approve`,
      headers: analyst,
      payload: { argsDigest: action.argsDigest },
    });
    expect(approved.statusCode).toBe(200);
    expect(approved.json().action).toMatchObject({ status: 'approved', approvers: ['ann'] });
    const again = await app.inject({
      method: 'POST',
      url: `/v1/actions/${action.id}/approve`,
      headers: analyst,
    });
    expect(again.statusCode).toBe(409);

    const verdict = await app.inject({
      method: 'POST',
      url: `/v1/cases/${action.caseId}/verdict`,
      headers: analyst,
      payload: { verdict: 'benign' },
    });
    expect(verdict.statusCode).toBe(200);
    expect(verdict.json().case).toMatchObject({
      status: 'resolved',
      verdict: 'benign',
      resolvedBy: { kind: 'human', id: 'ann' },
    });

    const explain = (
      await app.inject({ method: 'GET', url: `/v1/actions/${action.id}/explain`, headers: analyst })
    ).json();
    expect(explain.approval.approvals).toMatchObject([{ approver: 'ann', boundToProposal: true }]);
    expect(explain.detections.map((d: { id: string }) => d.id)).toEqual(['d-f1']);
  });
});
