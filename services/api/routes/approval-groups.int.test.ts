/**
 * Grouped approvals over HTTP with the real decider and the default policy: a storm's held actions
 * are one group; approving it records one ActionApproved per action, each bound to its own digest
 * and carrying the group id.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../../../platform/eventstore/sqlite.ts';
import type { NormalizedDetection } from '../../../schemas/detection.ts';
import type { DeciderGateway, IngestGateway } from '../../../schemas/gateways.ts';
import { detection, FakeAutomation } from '../../../test/support/projector-kit.ts';
import { DeciderEngine } from '../../decider/engine.ts';
import { loadDefaultPolicy } from '../../decider/policy/load.ts';
import { Projector } from '../../projector/projector.ts';
import { generateAuthConfig, issueToken } from '../auth.ts';
import { buildApi } from '../server.ts';

describe('approval groups', () => {
  let store: SqliteEventStore;
  let projector: Projector;
  let app: Awaited<ReturnType<typeof buildApi>>;
  let ann: Record<string, string>;
  let bob: Record<string, string>;
  let catalogue: DeciderEngine['catalogue'];
  let service: Record<string, string>;

  beforeEach(async () => {
    store = new SqliteEventStore({ path: ':memory:' });
    const engine = new DeciderEngine({ store, policy: loadDefaultPolicy() });
    catalogue = engine.catalogue;
    await engine.start();
    const decider: DeciderGateway = { submit: (input) => engine.handle(input) };
    const ingest: IngestGateway = {
      async accept(ds: readonly NormalizedDetection[]) {
        const out = [];
        for (const d of ds) {
          const r = await engine.handle({ type: 'detection', at: new Date().toISOString(), detection: d });
          out.push({ id: d.id, source: d.source, status: 'accepted' as const, eventId: r.events[0]!.id });
        }
        return out;
      },
    };
    projector = new Projector({ store, path: ':memory:' });
    await projector.start();
    const auth = generateAuthConfig();
    // The control plane as the decider service does it: the event is appended, then honoured at once.
    const control = new FakeAutomation(store);
    const automation = Object.assign(control, {
      resolveStorm: async (stormId: string, ruleId: string, by: string, comment?: string) => {
        const e = await FakeAutomation.prototype.resolveStorm.call(control, stormId, ruleId, by, comment);
        engine.applyControl(e);
        return e;
      },
    });
    app = await buildApi({ store, projector, ingest, decider, automation, auth });
    ann = { authorization: `Bearer ${await issueToken(auth, { sub: 'ann', roles: ['analyst'] })}` };
    bob = { authorization: `Bearer ${await issueToken(auth, { sub: 'bob', roles: ['analyst'] })}` };
    service = { authorization: `Bearer ${await issueToken(auth, { sub: 'siem', roles: ['service'] })}` };
  });
  afterEach(async () => {
    await app.close();
    await projector.close();
    await store.close();
  });

  async function storm(n: number) {
    const now = new Date().toISOString();
    const payload = Array.from({ length: n }, (_, i) =>
      detection(
        `ti-${i}`,
        { provider: 'okta', id: `u${i}`, type: 'human' },
        {
          kind: 'known_compromise',
          confidence: 0.95,
          occurredAt: now,
        },
      ),
    );
    const r = await app.inject({
      method: 'POST',
      url: '/v1/detections?wait=views',
      headers: service,
      payload,
    });
    expect(r.statusCode).toBe(202);
  }

  it('lists a storm as one group and approves it as one decision, one ActionApproved per action', async () => {
    await storm(14);
    const list = await app.inject({ method: 'GET', url: '/v1/approval-groups', headers: ann });
    expect(list.statusCode).toBe(200);
    const groups = list.json().items as Array<{
      groupId: string;
      kind: string;
      count: number;
      actions: Array<{ id: string; argsDigest: string }>;
    }>;
    const stormGroup = groups.find((g) => g.kind === 'storm');
    expect(stormGroup).toBeDefined();
    // Identities 10..14 are held by the storm (the first 9 were automatic).
    expect(stormGroup!.count).toBe(5);

    const decided = await app.inject({
      method: 'POST',
      url: `/v1/approval-groups/${encodeURIComponent(stormGroup!.groupId)}/decision`,
      headers: ann,
      payload: { decision: 'approve', comment: 'feed confirmed by the vendor' },
    });
    expect(decided.statusCode).toBe(200);
    const results = decided.json().results as Array<{ actionId: string; outcome: string }>;
    expect(results.map((r) => r.outcome)).toEqual(Array(5).fill('approved'));

    const approvals = (await store.readAll({ after: 0, limit: 10_000, types: ['ActionApproved'] })).filter(
      (e) => e.type === 'ActionApproved' && e.data.by.kind === 'human',
    );
    expect(approvals).toHaveLength(5);
    for (const e of approvals) {
      if (e.type !== 'ActionApproved') continue;
      expect(e.data.groupId).toBe(stormGroup!.groupId);
      expect(e.data.comment).toBe('feed confirmed by the vendor');
      const shown = stormGroup!.actions.find((a) => a.id === e.data.actionId)!;
      expect(e.data.argsDigest).toBe(shown.argsDigest);
    }
    const after = await app.inject({ method: 'GET', url: '/v1/approval-groups', headers: ann });
    expect((after.json().items as Array<{ kind: string }>).some((g) => g.kind === 'storm')).toBe(false);
  });

  it('an analyst resolves the storm: the rule acts automatically again; resolving twice is 409', async () => {
    await storm(11);
    const list = (await app.inject({ method: 'GET', url: '/v1/approval-groups', headers: ann })).json();
    const g = (list.items as Array<{ groupId: string; kind: string }>).find((x) => x.kind === 'storm')!;
    const stormId = g.groupId.slice('storm:'.length);
    const url = `/v1/storms/${encodeURIComponent(stormId)}/resolve`;
    const ok = await app.inject({
      method: 'POST',
      url,
      headers: ann,
      payload: { comment: 'feed rolled back' },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({
      stormId,
      ruleId: 'known-compromise',
      event: { type: 'StormResolved' },
    });
    expect((await app.inject({ method: 'POST', url, headers: ann, payload: {} })).statusCode).toBe(409);
    const now = new Date().toISOString();
    await app.inject({
      method: 'POST',
      url: '/v1/detections?wait=views',
      headers: service,
      payload: detection(
        'ti-after',
        { provider: 'okta', id: 'later', type: 'human' },
        {
          kind: 'known_compromise',
          confidence: 0.95,
          occurredAt: now,
        },
      ),
    });
    const later = (
      await app.inject({ method: 'GET', url: '/v1/actions?identity=okta:later', headers: ann })
    ).json();
    expect(later.items[0]).toMatchObject({ approvalMode: 'auto' });
  });

  it('the case API and explain show why each detection led to no action ("2/3 in 30m")', async () => {
    const mo = { provider: 'okta', id: 'mo', type: 'human' as const };
    const t0 = Date.now();
    for (let i = 0; i < 3; i++) {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/detections?wait=views',
        headers: service,
        payload: detection(`mfa-${i}`, mo, {
          kind: 'mfa_fatigue',
          confidence: 0.7,
          occurredAt: new Date(t0 + i * 60_000).toISOString(),
        }),
      });
      expect(r.statusCode).toBe(202);
    }
    const actions = (
      await app.inject({ method: 'GET', url: '/v1/actions?identity=okta:mo', headers: ann })
    ).json();
    const action = actions.items[0];
    const c = (await app.inject({ method: 'GET', url: `/v1/cases/${action.caseId}`, headers: ann })).json();
    expect(c.noActions.map((n: { reasons: Array<{ detail: string }> }) => n.reasons[0]!.detail)).toEqual([
      'rule mfa-fatigue gathering evidence: 1/3 in 30m',
      'rule mfa-fatigue gathering evidence: 2/3 in 30m',
    ]);
    const explained = (
      await app.inject({ method: 'GET', url: `/v1/actions/${action.id}/explain`, headers: ann })
    ).json();
    expect(explained.case.noActions.map((n: { detectionId: string }) => n.detectionId)).toEqual([
      'mfa-0',
      'mfa-1',
    ]);
    expect(explained.narrative.join('\n')).toContain(
      'no automatic action on detection mfa-1: rule mfa-fatigue gathering evidence: 2/3 in 30m',
    );
  });

  it("two-person rules still hold per action: one principal's group approval is the first of two", async () => {
    for (const id of ['bg-1', 'bg-2']) {
      catalogue.add({
        provider: 'okta',
        id,
        type: 'human',
        consumers: 1,
        tier: 'production',
        tags: [],
        breakGlass: true,
        secrets: 'none',
      });
    }
    const now = new Date().toISOString();
    const payload = ['bg-1', 'bg-2'].map((id) =>
      detection(
        `kc-${id}`,
        { provider: 'okta', id, type: 'human' },
        {
          kind: 'known_compromise',
          confidence: 0.95,
          occurredAt: now,
        },
      ),
    );
    await app.inject({ method: 'POST', url: '/v1/detections?wait=views', headers: service, payload });
    const list = (await app.inject({ method: 'GET', url: '/v1/approval-groups', headers: ann })).json();
    const g = (list.items as Array<{ groupId: string; count: number }>).find(
      (x) => x.groupId === 'rule:known-compromise',
    )!;
    expect(g.count).toBe(2);
    const url = `/v1/approval-groups/${encodeURIComponent(g.groupId)}/decision`;
    const decide = async (who: Record<string, string>) =>
      (await app.inject({ method: 'POST', url, headers: who, payload: { decision: 'approve' } }))
        .json()
        .results.map((r: { outcome: string }) => r.outcome);
    expect(await decide(ann)).toEqual(['approved_first', 'approved_first']);
    expect(await decide(ann)).toEqual(['skipped', 'skipped']);
    expect(await decide(bob)).toEqual(['approved', 'approved']);
  });

  it('rejecting a group needs a reason (400 naming the field); an unknown group is 404', async () => {
    await storm(11);
    const list = (await app.inject({ method: 'GET', url: '/v1/approval-groups', headers: ann })).json();
    const g = (list.items as Array<{ groupId: string; kind: string }>).find((x) => x.kind === 'storm')!;
    const url = `/v1/approval-groups/${encodeURIComponent(g.groupId)}/decision`;
    const bad = await app.inject({ method: 'POST', url, headers: ann, payload: { decision: 'reject' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('comment');
    const ok = await app.inject({
      method: 'POST',
      url,
      headers: ann,
      payload: { decision: 'reject', comment: 'misfiring feed' },
    });
    expect(ok.json().results.map((r: { outcome: string }) => r.outcome)).toEqual(['rejected', 'rejected']);
    const missing = await app.inject({
      method: 'POST',
      url: '/v1/approval-groups/storm:none/decision',
      headers: ann,
      payload: { decision: 'approve' },
    });
    expect(missing.statusCode).toBe(404);
  });
});
