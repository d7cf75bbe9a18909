import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { identityStream } from '../../schemas/events.ts';
import { type PrincipalName, type TestEnv, testEnv } from '../../test/support/api-env.ts';
import { ALICE, at, CI_BOT, detection, ev } from '../../test/support/projector-kit.ts';
import { Explanation } from '../projector/explain.ts';
import { ActionView, AuditEvent, CaseDetail, IdentityView, page } from '../projector/views.ts';

let env: TestEnv;
beforeEach(async () => {
  env = await testEnv();
});
afterEach(async () => {
  await env.close();
});

interface Call {
  as?: PrincipalName;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
}

async function call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, c: Call = {}) {
  const headers: Record<string, string> = { ...env.headers[c.as ?? 'admin'], ...(c.headers ?? {}) };
  let payload: string | undefined;
  if (c.raw !== undefined) payload = c.raw;
  else if (c.body !== undefined) payload = JSON.stringify(c.body);
  if (payload !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  const res = await env.app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
  let json: unknown;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by assertions and zod, not by types
  return { status: res.statusCode, json: json as Record<string, any>, text: res.body, headers: res.headers };
}

describe('ingest', () => {
  it('answers 202 once recorded in the event store, and dedupes', async () => {
    const erin = { provider: 'okta', id: 'erin', type: 'human' as const };
    const r = await call('POST', '/v1/detections', { as: 'service', body: [detection('d-20', erin)] });
    expect(r.status).toBe(202);
    expect(r.json.receipts.map((x: { status: string }) => x.status)).toEqual(['accepted']);
    const stored = await env.store.readStream(identityStream(erin));
    expect(stored.filter((e) => e.type === 'DetectionReceived').map((e) => e.id)).toEqual([
      r.json.receipts[0].eventId,
    ]);
    const again = await call('POST', '/v1/detections', { as: 'service', body: detection('d-20', erin) });
    expect(again.json).toMatchObject({ accepted: 0, duplicates: 1 });
  });

  it('with ?wait=views answers once the views include the detections: a GET right after sees them', async () => {
    const dave = { provider: 'okta', id: 'dave', type: 'human' as const };
    const batch = [
      detection('d-10', dave),
      detection('d-11', dave, { kind: 'mfa_fatigue', confidence: 0.7 }),
    ];
    const r = await call('POST', '/v1/detections?wait=views', { as: 'service', body: batch });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(r.json.receipts.map((x: { status: string }) => x.status)).toEqual(['accepted', 'accepted']);
    const id = await call('GET', '/v1/identities/okta/dave', { as: 'analyst' });
    expect(id.status).toBe(200);
    expect(id.json.detectionCount).toBe(2);

    const again = await call('POST', '/v1/detections', { as: 'service', body: batch[0] });
    expect(again.json).toMatchObject({ accepted: 0, duplicates: 1 });
  });
});

describe('approvals, rejections, verdicts, proposals', () => {
  it('approve records the authenticated principal, never a body field, and is visible at once', async () => {
    const r = await call('POST', '/v1/actions/act-ci-1-1/approve', {
      as: 'analyst',
      body: { comment: 'checked with owner' },
    });
    expect(r.status).toBe(200);
    expect(ActionView.parse(r.json.action)).toBeTruthy();
    expect(r.json.action).toMatchObject({ status: 'approved', approvers: ['ann'] });
    expect(r.json.events).toEqual([{ id: 'act-ci-1-1-approved-1', type: 'ActionApproved' }]);
    const [e] = await env.store.readAll({ after: (await env.store.headPosition()) - 1 });
    expect(e).toMatchObject({
      type: 'ActionApproved',
      data: { by: { kind: 'human', id: 'ann', role: 'analyst' }, final: true },
    });
    expect((await call('GET', '/v1/actions/act-ci-1-1', { as: 'auditor' })).json.status).toBe('approved');
    const audit = await call('GET', '/v1/audit/events?actor=ann', { as: 'auditor' });
    expect(audit.json.items.map((x: { id: string }) => x.id)).toEqual(['act-ci-1-1-approved-1']);

    const spoof = await call('POST', '/v1/actions/act-ci-1-2/approve', {
      as: 'analyst',
      body: { by: 'mallory', approver: 'x' },
    });
    expect(spoof.status).toBe(400);
    expect(spoof.json.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(['approver', 'by']);
  });

  it('enforces two-person approval with distinct principals', async () => {
    const head = await env.store.headPosition();
    const first = await call('POST', '/v1/actions/act-ci-1-2/approve', { as: 'analyst' });
    expect(first.status).toBe(200);
    expect(first.json.action).toMatchObject({ status: 'proposed', approvers: ['ann'] });
    const again = await call('POST', '/v1/actions/act-ci-1-2/approve', { as: 'analyst' });
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('APPROVAL_INVALID');
    expect(again.json.error.message).toContain('second, distinct approver');
    expect(await env.store.headPosition()).toBe(head + 1);
    const second = await call('POST', '/v1/actions/act-ci-1-2/approve', { as: 'analyst2' });
    expect(second.status).toBe(200);
    expect(second.json.action).toMatchObject({ status: 'approved', approvers: ['ann', 'ben'] });
  });

  it('the decider is the final word: a digest mismatch is 409 and writes nothing', async () => {
    const head = await env.store.headPosition();
    const r = await call('POST', '/v1/actions/act-ci-1-1/approve', {
      as: 'analyst',
      body: { argsDigest: 'sha256:other' },
    });
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ code: 'APPROVAL_INVALID' });
    expect(await env.store.headPosition()).toBe(head);
    const ok = await call('POST', '/v1/actions/act-ci-1-1/approve', {
      as: 'analyst',
      body: { argsDigest: 'sha256:act-ci-1-1' },
    });
    expect(ok.status).toBe(200);
  });

  it('rejects, then refuses to approve what is no longer pending', async () => {
    const r = await call('POST', '/v1/actions/act-ci-1-1/reject', {
      as: 'analyst',
      body: { reason: 'owner confirmed the use' },
    });
    expect(r.status).toBe(200);
    expect(r.json.action).toMatchObject({
      status: 'rejected',
      rejection: { by: { id: 'ann' }, reason: 'owner confirmed the use' },
    });
    const late = await call('POST', '/v1/actions/act-ci-1-1/approve', { as: 'analyst2' });
    expect(late.status).toBe(409);
    expect(late.json.error.message).toContain('rejected');
  });

  it('a benign verdict resolves the case and rejects its pending actions', async () => {
    const r = await call('POST', '/v1/cases/case-ci-1/verdict', {
      as: 'analyst',
      body: { verdict: 'benign' },
    });
    expect(r.status).toBe(200);
    expect(CaseDetail.parse(r.json.case)).toBeTruthy();
    expect(r.json.case).toMatchObject({ status: 'resolved', verdict: 'benign', resolvedBy: { id: 'ann' } });
    expect(r.json.case.actions.map((a: { status: string }) => a.status)).toEqual(['rejected', 'rejected']);
    const again = await call('POST', '/v1/cases/case-ci-1/verdict', {
      as: 'analyst',
      body: { verdict: 'malicious' },
    });
    expect(again.status).toBe(409);
  });

  it('an analyst proposal needs another principal to approve it', async () => {
    const dave = { provider: 'okta', id: 'dave', type: 'human' as const };
    const r = await call('POST', '/v1/actions', {
      as: 'analyst',
      body: { identity: dave, action: 'revoke_tokens', reason: 'phishing report' },
    });
    expect(r.status).toBe(201);
    expect(r.json.action).toMatchObject({
      status: 'proposed',
      ruleId: 'manual',
      proposedBy: 'ann',
      type: 'revoke_tokens',
    });
    const id = r.json.action.id as string;
    const own = await call('POST', `/v1/actions/${id}/approve`, { as: 'analyst' });
    expect(own.status).toBe(409);
    expect(own.json.error.message).toContain('proposed');
    const other = await call('POST', `/v1/actions/${id}/approve`, { as: 'analyst2' });
    expect(other.status).toBe(200);
    const dup = await call('POST', '/v1/actions', {
      as: 'analyst',
      body: { identity: dave, action: 'revoke_tokens', reason: 'again' },
    });
    expect(dup.status).toBe(409);
  });

  it('pause and resume record the admin and show in the automation view', async () => {
    const p = await call('POST', '/v1/automation/pause', {
      as: 'admin',
      body: { reason: 'bad rule rollout' },
    });
    expect(p.status).toBe(200);
    expect(p.json.automation).toMatchObject({
      paused: true,
      by: { id: 'local-admin' },
      reason: 'bad rule rollout',
    });
    expect((await call('GET', '/v1/automation', { as: 'auditor' })).json.paused).toBe(true);
    const r = await call('POST', '/v1/automation/resume', { as: 'admin', body: { reason: 'fixed' } });
    expect(r.json.automation.paused).toBe(false);
  });
});

describe('reads', () => {
  it('lists and pages cases and actions, and returns complete views', async () => {
    const p1 = await call('GET', '/v1/cases?limit=2', { as: 'analyst' });
    expect(
      page(CaseDetail.omit({ detections: true, actions: true, timeline: true })).parse(p1.json),
    ).toBeTruthy();
    expect(p1.json.items.map((c: { id: string }) => c.id)).toEqual(['case-carol-1', 'case-ci-1']);
    const p2 = await call('GET', `/v1/cases?limit=2&cursor=${p1.json.nextCursor}`, { as: 'analyst' });
    expect(p2.json).toMatchObject({ items: [{ id: 'case-alice-1' }], nextCursor: null });
    const byIdentity = await call(
      'GET',
      `/v1/cases?identity=${encodeURIComponent('okta:alice@example.com')}&status=resolved`,
      { as: 'analyst' },
    );
    expect(byIdentity.json.items.map((c: { id: string }) => c.id)).toEqual(['case-alice-1']);

    const queue = await call('GET', '/v1/actions?status=proposed&case=case-ci-1', { as: 'analyst' });
    expect(queue.json.items.map((a: { id: string }) => a.id)).toEqual(['act-ci-1-2', 'act-ci-1-1']);
    const verified = await call('GET', '/v1/actions?status=rolled_back&type=revoke_sessions', {
      as: 'analyst',
    });
    expect(verified.json.items.map((a: { id: string }) => a.id)).toEqual(['act-alice-1-1']);

    const c = await call('GET', '/v1/cases/case-alice-1', { as: 'auditor' });
    expect(CaseDetail.parse(c.json)).toBeTruthy();
    const i = await call('GET', '/v1/identities/github/ci-bot', { as: 'auditor' });
    expect(IdentityView.parse(i.json).pendingApprovals).toHaveLength(2);
  });

  it('finds identities whose id needs URL encoding', async () => {
    const arn = { provider: 'aws', id: 'arn:aws:iam::123456789012:user/ops/bob', type: 'human' as const };
    await call('POST', '/v1/detections?wait=views', { as: 'service', body: detection('d-aws', arn) });
    const r = await call('GET', `/v1/identities/aws/${encodeURIComponent(arn.id)}`, { as: 'analyst' });
    expect(r.status).toBe(200);
    expect(r.json.identity.id).toBe(arn.id);
  });
});

describe('explain and audit', () => {
  it('explains a rolled-back action end to end, residue included, from the event stream', async () => {
    const r = await call('GET', '/v1/actions/act-alice-1-1/explain', { as: 'auditor' });
    expect(r.status).toBe(200);
    const x = Explanation.parse(r.json);
    expect(x).toMatchObject({
      status: 'rolled_back',
      verified: true,
      detections: [{ id: 'd-1', kind: 'known_compromise', source: 'splunk' }],
      decision: { ruleId: 'known-compromise', policyId: 'default', policyVersion: '2026.11.1', stage: 1 },
      approval: {
        mode: 'auto',
        approvals: [
          { by: { kind: 'policy', ruleId: 'known-compromise' }, final: true, boundToProposal: true },
        ],
      },
      execution: {
        executed: { provider: 'keycloak', idempotencyKey: 'act-alice-1-1' },
        claims: [{ executor: 'executor-1' }],
      },
      verification: { holds: true },
      case: { resolution: { verdict: 'benign', by: { id: 'bob' } } },
      rollback: {
        plan: { complete: false },
        performed: { complete: false, residue: ['revoked sessions cannot be restored; users sign in again'] },
      },
      residue: ['revoked sessions cannot be restored; users sign in again'],
    });
    expect(x.events.map((e) => e.type)).toEqual([
      'DetectionReceived',
      'CaseOpened',
      'ActionProposed',
      'ActionApproved',
      'ExecutionClaimed',
      'ActionExecuted',
      'ActionVerified',
      'CaseResolved',
      'ActionRolledBack',
    ]);
    expect(x.narrative.at(-1)).toContain('residue (not restorable): revoked sessions cannot be restored');
  });

  it('shows guards and a pending two-person approval in explain', async () => {
    await call('POST', '/v1/actions/act-ci-1-1/approve', { as: 'analyst' });
    const x = Explanation.parse(
      (await call('GET', '/v1/actions/act-ci-1-1/explain', { as: 'analyst' })).json,
    );
    expect(x.guards.applied.map((g) => g.guard)).toEqual(['staged_containment']);
    expect(x.approval.approvals.map((a) => a.approver)).toEqual(['ann']);
    expect(x.execution.executed).toBeNull();
  });

  it('queries audit events with payloads from the store, paged', async () => {
    const q = await call('GET', '/v1/audit/events?case=case-alice-1&limit=4', { as: 'auditor' });
    expect(q.status).toBe(200);
    expect(page(AuditEvent).parse(q.json).items).toHaveLength(4);
    expect(q.json.items[0]).toMatchObject({
      type: 'DetectionReceived',
      missingFromStore: false,
      index: { caseId: 'case-alice-1' },
    });
    const rest = await call(
      'GET',
      `/v1/audit/events?case=case-alice-1&limit=100&cursor=${q.json.nextCursor}`,
      { as: 'auditor' },
    );
    expect(rest.json.items).toHaveLength(5);
    expect(rest.json.nextCursor).toBeNull();
    const byRule = await call(
      'GET',
      '/v1/audit/events?rule=secret-exposed&type=ActionProposed&policyVersion=2026.11.1',
      { as: 'auditor' },
    );
    expect(byRule.json.items.map((e: { id: string }) => e.id)).toEqual([
      'act-ci-1-1-proposed',
      'act-ci-1-2-proposed',
    ]);
    const byTime = await call(
      'GET',
      `/v1/audit/events?from=${at(500)}&to=${at(700)}&actionType=revoke_sessions`,
      { as: 'auditor' },
    );
    expect(byTime.json.items.map((e: { type: string }) => e.type)).toEqual(['ActionRolledBack']);
    // the same bounds swapped: an empty window, not an error (nor the whole stream)
    const inverted = await call('GET', `/v1/audit/events?from=${at(700)}&to=${at(500)}`, { as: 'auditor' });
    expect(inverted.status).toBe(200);
    expect(inverted.json.items).toEqual([]);
    const exported = await call('GET', `/v1/audit/export?from=${at(700)}&to=${at(500)}`, { as: 'auditor' });
    expect(exported.status).toBe(200);
    expect(exported.text.trim()).toBe('');
  });

  it('exports NDJSON and CSV with the same filters', async () => {
    const nd = await call('GET', '/v1/audit/export?identity=okta:alice@example.com', { as: 'auditor' });
    expect(nd.status).toBe(200);
    expect(nd.headers['content-type']).toContain('application/x-ndjson');
    const lines = nd.text
      .trim()
      .split('\n')
      .map((l) => AuditEvent.parse(JSON.parse(l)));
    expect(lines).toHaveLength(9);
    expect(lines.map((l) => l.position)).toEqual([...lines.map((l) => l.position)].sort((a, b) => a - b));

    const csv = await call('GET', '/v1/audit/export?format=csv&action=act-alice-1-1', { as: 'auditor' });
    expect(csv.headers['content-type']).toContain('text/csv');
    const rows = csv.text.trim().split('\r\n');
    expect(rows[0]).toBe(
      'position,id,type,stream,revision,occurredAt,recordedAt,identity,caseId,actionId,actor,ruleId,policyVersion,actionType,causationId,correlationId,missingFromStore,data',
    );
    expect(rows).toHaveLength(7);
    expect(rows.at(-1)).toContain('ActionRolledBack');
    expect(rows.at(-1)).toContain('"{""actionId"":""act-alice-1-1""');
  });

  it("serves a detection's raw record by the digest its event names, re-sent as a duplicate, and refuses it once altered", async () => {
    const erin = { provider: 'okta', id: 'erin', type: 'human' as const };
    const raw = {
      uuid: 'okta-evt-77',
      eventType: 'user.session.start',
      client: { ipAddress: '203.0.113.9' },
    };
    const sent = { ...detection('d-raw-1', erin), raw };
    expect((await call('POST', '/v1/detections', { as: 'service', body: sent })).status).toBe(202);
    // the same detection again (raw re-serialized with other key order) is a duplicate, not a conflict
    const reordered = {
      ...detection('d-raw-1', erin),
      raw: { client: raw.client, eventType: raw.eventType, uuid: raw.uuid },
    };
    expect((await call('POST', '/v1/detections', { as: 'service', body: reordered })).json).toMatchObject({
      duplicates: 1,
    });
    const events = await call('GET', '/v1/audit/events?identity=okta:erin&type=DetectionReceived', {
      as: 'analyst',
    });
    const ref = events.json.items[0].data.rawRecord as { sha256: string; bytes: number };
    expect(events.json.items[0].data.detection.raw).toBeUndefined();
    const got = await call('GET', `/v1/audit/raw-records/${ref.sha256}`, { as: 'analyst' });
    expect(got.status).toBe(200);
    expect(got.json).toEqual({ sha256: ref.sha256, bytes: ref.bytes, record: raw });
    expect((await call('GET', `/v1/audit/raw-records/${'1'.repeat(64)}`, { as: 'analyst' })).status).toBe(
      404,
    );
    expect((await call('GET', '/v1/audit/raw-records/nothex', { as: 'analyst' })).status).toBe(400);
    env.store.database
      .prepare("UPDATE raw_records SET body = replace(body, '203.0.113.9', '198.51.100.1') WHERE sha256 = ?")
      .run(ref.sha256);
    const refused = await call('GET', `/v1/audit/raw-records/${ref.sha256}`, { as: 'analyst' });
    expect(refused.status).toBe(503);
    expect(refused.json.error).toMatchObject({ code: 'CHAIN_BROKEN' });
    const verdict = await call('GET', '/v1/audit/verify', { as: 'auditor' });
    expect(verdict.json.problems).toContainEqual(expect.objectContaining({ problem: 'altered' }));
    // put back, so the verify test below starts from an intact chain
    env.store.database
      .prepare('UPDATE raw_records SET body = ? WHERE sha256 = ?')
      .run(JSON.stringify(raw), ref.sha256);
    expect((await call('GET', '/v1/audit/verify', { as: 'auditor' })).json.ok).toBe(true);
  });

  it('verify reports ok, then the first tampered event', async () => {
    const ok = await call('GET', '/v1/audit/verify', { as: 'auditor' });
    expect(ok.json).toMatchObject({ ok: true, checked: await env.store.headPosition() });
    env.store.database
      .prepare("UPDATE events SET data = replace(data, 'bob', 'mallory') WHERE id = 'case-alice-1-resolved'")
      .run();
    const bad = await call('GET', '/v1/audit/verify', { as: 'auditor' });
    expect(bad.json).toMatchObject({
      ok: false,
      firstBad: { problem: 'altered', id: 'case-alice-1-resolved' },
    });
  });
});

describe('bad input on every endpoint: a clear 4xx naming the field, nothing written', () => {
  interface BadCase {
    name: string;
    method: 'GET' | 'POST' | 'PUT' | 'DELETE';
    url: string;
    as?: PrincipalName;
    body?: unknown;
    raw?: string;
    headers?: Record<string, string>;
    status: number;
    code: string;
    paths?: string[];
  }
  const valid = detection('d-ok', { provider: 'okta', id: 'erin', type: 'human' });
  const { identity: _omit, ...noIdentity } = valid;
  const cases: BadCase[] = [
    {
      name: 'detections: malformed JSON',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      raw: '{"id": "x",',
      status: 400,
      code: 'MALFORMED_JSON',
    },
    {
      name: 'detections: wrong types',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      body: { ...valid, confidence: 'high', severity: 7 },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['confidence', 'severity'],
    },
    {
      name: 'detections: missing identity',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      body: noIdentity,
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['identity'],
    },
    {
      name: 'detections: bad nested field',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      body: { ...valid, identity: { ...valid.identity, type: 'robot' } },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['identity.type'],
    },
    {
      name: 'detections: one bad item rejects the whole array',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      body: [valid, { ...valid, id: 'd-2', occurredAt: 'yesterday' }],
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['1.occurredAt'],
    },
    {
      name: 'detections: empty array',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      body: [],
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['(root)'],
    },
    {
      name: 'detections: not an object',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      body: 'alert!',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['(root)'],
    },
    {
      name: 'detections: no body',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['(root)'],
    },
    {
      name: 'detections: wrong media type',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      raw: 'id=1',
      headers: { 'content-type': 'text/plain' },
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'detections: prototype pollution',
      method: 'POST',
      url: '/v1/detections',
      as: 'service',
      raw: `{"__proto__": {"admin": true}}`,
      status: 400,
      code: 'MALFORMED_JSON',
    },
    {
      name: 'cases: bad status',
      method: 'GET',
      url: '/v1/cases?status=closed',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['status'],
    },
    {
      name: 'cases: bad limit',
      method: 'GET',
      url: '/v1/cases?limit=0',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['limit'],
    },
    {
      name: 'cases: bad cursor',
      method: 'GET',
      url: '/v1/cases?cursor=abc',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['cursor'],
    },
    {
      name: 'cases: unknown parameter',
      method: 'GET',
      url: '/v1/cases?sort=asc',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['sort'],
    },
    { name: 'case: unknown id', method: 'GET', url: '/v1/cases/case-nope', status: 404, code: 'NOT_FOUND' },
    {
      name: 'identity: unknown',
      method: 'GET',
      url: '/v1/identities/okta/nobody',
      status: 404,
      code: 'NOT_FOUND',
    },
    {
      name: 'actions: bad status',
      method: 'GET',
      url: '/v1/actions?status=done',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['status'],
    },
    {
      name: 'actions: bad type',
      method: 'GET',
      url: '/v1/actions?type=nuke',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['type'],
    },
    {
      name: 'action: unknown id',
      method: 'GET',
      url: '/v1/actions/act-nope',
      status: 404,
      code: 'NOT_FOUND',
    },
    {
      name: 'approve: unknown action id',
      method: 'POST',
      url: '/v1/actions/act-nope/approve',
      as: 'analyst',
      body: {},
      status: 404,
      code: 'NOT_FOUND',
    },
    {
      name: 'approve: wrong type',
      method: 'POST',
      url: '/v1/actions/act-ci-1-1/approve',
      as: 'analyst',
      body: { argsDigest: 5 },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['argsDigest'],
    },
    {
      name: 'approve: body is not an object',
      method: 'POST',
      url: '/v1/actions/act-ci-1-1/approve',
      as: 'analyst',
      body: ['yes'],
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['(root)'],
    },
    {
      name: 'approve: malformed JSON',
      method: 'POST',
      url: '/v1/actions/act-ci-1-1/approve',
      as: 'analyst',
      raw: '{',
      status: 400,
      code: 'MALFORMED_JSON',
    },
    {
      name: 'approve: already executed',
      method: 'POST',
      url: '/v1/actions/act-alice-1-1/approve',
      as: 'analyst',
      status: 409,
      code: 'APPROVAL_INVALID',
    },
    {
      name: 'reject: missing reason',
      method: 'POST',
      url: '/v1/actions/act-ci-1-1/reject',
      as: 'analyst',
      body: {},
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['reason'],
    },
    {
      name: 'reject: blank reason',
      method: 'POST',
      url: '/v1/actions/act-ci-1-1/reject',
      as: 'analyst',
      body: { reason: '   ' },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['reason'],
    },
    {
      name: 'reject: unknown action id',
      method: 'POST',
      url: '/v1/actions/act-nope/reject',
      as: 'analyst',
      body: { reason: 'x' },
      status: 404,
      code: 'NOT_FOUND',
    },
    {
      name: 'verdict: bad value',
      method: 'POST',
      url: '/v1/cases/case-ci-1/verdict',
      as: 'analyst',
      body: { verdict: 'maybe' },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['verdict'],
    },
    {
      name: 'verdict: missing',
      method: 'POST',
      url: '/v1/cases/case-ci-1/verdict',
      as: 'analyst',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['verdict'],
    },
    {
      name: 'verdict: unknown case',
      method: 'POST',
      url: '/v1/cases/case-nope/verdict',
      as: 'analyst',
      body: { verdict: 'benign' },
      status: 404,
      code: 'NOT_FOUND',
    },
    {
      name: 'verdict: already resolved',
      method: 'POST',
      url: '/v1/cases/case-alice-1/verdict',
      as: 'analyst',
      body: { verdict: 'malicious' },
      status: 409,
      code: 'CONFLICT',
    },
    {
      name: 'propose: missing fields',
      method: 'POST',
      url: '/v1/actions',
      as: 'analyst',
      body: { action: 'revoke_sessions' },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['identity', 'reason'],
    },
    {
      name: 'propose: unknown action type',
      method: 'POST',
      url: '/v1/actions',
      as: 'analyst',
      body: { identity: ALICE, action: 'nuke', reason: 'x' },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['action'],
    },
    {
      name: 'propose: bad identity type',
      method: 'POST',
      url: '/v1/actions',
      as: 'analyst',
      body: { identity: { ...ALICE, type: 'robot' }, action: 'revoke_sessions', reason: 'x' },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['identity.type'],
    },
    {
      name: 'pause: missing reason',
      method: 'POST',
      url: '/v1/automation/pause',
      body: {},
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['reason'],
    },
    {
      name: 'resume: wrong type',
      method: 'POST',
      url: '/v1/automation/resume',
      body: { reason: 42 },
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['reason'],
    },
    {
      name: 'explain: unknown action',
      method: 'GET',
      url: '/v1/actions/act-nope/explain',
      status: 404,
      code: 'NOT_FOUND',
    },
    {
      name: 'audit: bad time',
      method: 'GET',
      url: '/v1/audit/events?from=last-week',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['from'],
    },
    {
      name: 'audit: bad type',
      method: 'GET',
      url: '/v1/audit/events?type=Nope',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['type'],
    },
    {
      name: 'audit: limit too high',
      method: 'GET',
      url: '/v1/audit/events?limit=5000',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['limit'],
    },
    {
      name: 'export: bad format',
      method: 'GET',
      url: '/v1/audit/export?format=xml',
      as: 'auditor',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['format'],
    },
    {
      name: 'verify: unknown parameter',
      method: 'GET',
      url: '/v1/audit/verify?fix=true',
      as: 'auditor',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['fix'],
    },
    {
      name: 'stream: bad types',
      method: 'GET',
      url: '/v1/stream?types=Bogus',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['types'],
    },
    {
      name: 'stream: bad after',
      method: 'GET',
      url: '/v1/stream?after=-1',
      status: 400,
      code: 'VALIDATION_FAILED',
      paths: ['after'],
    },
    { name: 'unknown route', method: 'GET', url: '/v1/nope', status: 404, code: 'NOT_FOUND' },
    {
      name: 'method a path lacks',
      method: 'DELETE',
      url: '/v1/cases',
      status: 405,
      code: 'METHOD_NOT_ALLOWED',
    },
    {
      name: 'method a parameterized path lacks',
      method: 'PUT',
      url: '/v1/actions/act-x/approve?x=1',
      status: 405,
      code: 'METHOD_NOT_ALLOWED',
    },
  ];

  it.each(cases)('$name → $status $code', async (c) => {
    const head = await env.store.headPosition();
    const r = await call(c.method, c.url, {
      ...(c.as ? { as: c.as } : {}),
      ...(c.body !== undefined ? { body: c.body } : {}),
      ...(c.raw !== undefined ? { raw: c.raw } : {}),
      ...(c.headers ? { headers: c.headers } : {}),
    });
    expect(r.status).toBe(c.status);
    expect(r.json.error.code).toBe(c.code);
    expect(typeof r.json.error.message).toBe('string');
    if (c.paths) {
      const paths = (r.json.error.issues as Array<{ path: string }>).map((i) => i.path);
      for (const p of c.paths) expect(paths).toContain(p);
      for (const p of c.paths) expect(r.json.error.message).toContain(p);
    }
    expect(await env.store.headPosition()).toBe(head);
  });

  it('405 names the methods the path has in Allow', async () => {
    const r = await env.app.inject({ method: 'DELETE', url: '/v1/cases/case-1', headers: env.headers.admin });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('GET, HEAD');
    // QUERY is a body method: fastify checks its content type before it finds no route
    const query = await env.app.inject({ method: 'QUERY' as 'GET', url: '/healthz' });
    expect(query.statusCode).toBe(405);
    expect(query.json().error.code).toBe('METHOD_NOT_ALLOWED');
    const post = await env.app.inject({ method: 'PATCH', url: '/v1/actions', headers: env.headers.admin });
    expect(String(post.headers.allow).split(', ').sort()).toEqual(['GET', 'HEAD', 'POST']);
  });

  it('413 over the body limit, on ingest and on commands, with nothing written', async () => {
    const small = await testEnv({ bodyLimitBytes: 2048 });
    try {
      const head = await small.store.headPosition();
      const big = Array.from({ length: 20 }, (_, i) => detection(`d-big-${i}`, ALICE));
      const r = await small.app.inject({
        method: 'POST',
        url: '/v1/detections',
        headers: { ...small.headers.service, 'content-type': 'application/json' },
        payload: JSON.stringify(big),
      });
      expect(r.statusCode).toBe(413);
      expect(r.json().error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', limit: 2048 });
      const a = await small.app.inject({
        method: 'POST',
        url: '/v1/actions/act-ci-1-1/reject',
        headers: { ...small.headers.analyst, 'content-type': 'application/json' },
        payload: JSON.stringify({ reason: 'x'.repeat(5000) }),
      });
      expect(a.statusCode).toBe(413);
      expect(await small.store.headPosition()).toBe(head);
    } finally {
      await small.close();
    }
  });
});

describe('ops: live feed, metrics, health, readiness, OpenAPI', () => {
  it('streams new events over SSE, resumable by position', async () => {
    const base = await env.app.listen({ port: 0, host: '127.0.0.1' });
    const ctrl = new AbortController();
    const res = await fetch(`${base}/v1/stream?types=DetectionReceived`, {
      headers: env.headers.analyst,
      signal: ctrl.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value);
    const A = identityStream(ALICE);
    const r = await env.store.append(
      A,
      [ev('det-live', 'DetectionReceived', A, at(1000), { detection: detection('d-live', ALICE) })],
      'any',
    );
    while (!text.includes('det-live')) text += decoder.decode((await reader.read()).value);
    expect(text).toContain(`id: ${r.position}\nevent: DetectionReceived\ndata: {`);
    // a client that reconnects with Last-Event-ID gets what it missed
    const resumed = await fetch(`${base}/v1/stream`, {
      headers: { ...env.headers.auditor, 'last-event-id': String(r.position - 1) },
      signal: ctrl.signal,
    });
    const r2 = resumed.body!.getReader();
    let text2 = '';
    while (!text2.includes('det-live')) text2 += decoder.decode((await r2.read()).value);
    expect(text2).toContain(`id: ${r.position}\n`);
    // closing the server ends open feeds instead of waiting for the clients
    const closed = Date.now();
    await env.app.close();
    expect(Date.now() - closed).toBeLessThan(2000);
    expect((await reader.read()).done).toBe(true);
    ctrl.abort();
  });

  it('serves Prometheus metrics, health and readiness', async () => {
    await call('POST', '/v1/detections?wait=views', { as: 'service', body: detection('d-m', CI_BOT) });
    const m = await call('GET', '/metrics', { as: 'auditor' });
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toContain('text/plain');
    expect(m.text).toContain('tourniquet_actions{status="rolled_back"} 1');
    expect(m.text).toContain('tourniquet_actions{status="proposed"} 2');
    expect(m.text).toMatch(/tourniquet_detections_received_total\{outcome="accepted",via="http"\} \d+/);
    expect(m.text).toContain('tourniquet_projection_lag_events 0');
    expect(m.text).toContain('tourniquet_decision_latency_seconds');
    expect(m.text).toContain('tourniquet_executor_errors_total');

    expect((await call('GET', '/healthz', { as: 'none' })).json).toEqual({ status: 'ok' });
    const ready = await call('GET', '/readyz', { as: 'none' });
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ ready: true, live: true, lag: 0 });
  });

  it('readyz is 503 while the projector is behind or stopped', async () => {
    const strict = await testEnv({ readyLagEvents: 0 });
    try {
      await strict.projector.stop();
      const A = identityStream(ALICE);
      await strict.store.append(
        A,
        [ev('det-lag', 'DetectionReceived', A, at(1000), { detection: detection('d-lag', ALICE) })],
        'any',
      );
      const r = await strict.app.inject({ method: 'GET', url: '/readyz' });
      expect(r.statusCode).toBe(503);
      expect(r.json()).toMatchObject({ ready: false, live: false, lag: 1 });
    } finally {
      await strict.close();
    }
  });

  it('Shared Signals: SSF configuration, the public JWKS and where each receiver stands; 404 without a transmitter', async () => {
    const conf = await env.app.inject({ method: 'GET', url: '/.well-known/ssf-configuration' });
    expect(conf.statusCode).toBe(200);
    expect(conf.json()).toEqual({
      spec_version: '1_0',
      issuer: 'https://tourniquet.test',
      jwks_uri: 'http://localhost:80/v1/signals/jwks',
      delivery_methods_supported: ['urn:ietf:rfc:8935'],
    });
    const jwks = (await env.app.inject({ method: 'GET', url: '/v1/signals/jwks' })).json();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0].kid).toEqual(expect.any(String));
    expect(jwks.keys[0]).not.toHaveProperty('d');
    const status = await env.app.inject({ method: 'GET', url: '/v1/signals', headers: env.headers.auditor });
    expect(status.json()).toEqual({
      configured: true,
      issuer: 'https://tourniquet.test',
      head: await env.store.headPosition(),
      receivers: [
        {
          name: 'siem',
          url: 'http://127.0.0.1:9/push',
          audience: 'https://siem.test',
          events: null,
          running: false,
          position: 0,
          delivered: 0,
          deadLettered: 0,
          retries: 0,
        },
      ],
    });
    const bare = await testEnv({ signals: undefined });
    try {
      for (const url of ['/.well-known/ssf-configuration', '/v1/signals/jwks']) {
        const r = await bare.app.inject({ method: 'GET', url });
        expect(r.statusCode).toBe(404);
        expect(r.json().error.code).toBe('NOT_FOUND');
      }
      const r = await bare.app.inject({ method: 'GET', url: '/v1/signals', headers: bare.headers.admin });
      expect(r.json()).toMatchObject({ configured: false, issuer: null, receivers: [] });
    } finally {
      await bare.close();
    }
  });

  it('publishes a complete OpenAPI document at /docs/json and Swagger UI at /docs', async () => {
    const doc = (await call('GET', '/docs/json', { as: 'none' })).json as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            responses: Record<string, unknown>;
            security?: unknown[];
            requestBody?: unknown;
            parameters?: Array<{ name: string; in: string }>;
          }
        >
      >;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['apiKeyHeader', 'bearerAuth']);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        if (method === 'post') expect(op.requestBody, `${method} ${path}`).toBeDefined();
        const open = [
          '/healthz',
          '/readyz',
          '/v1/signals/jwks',
          '/.well-known/ssf-configuration',
          '/v1/chat/slack/interactions',
        ];
        expect(op.security, `${method} ${path}`).toEqual(
          open.includes(path) ? [] : [{ bearerAuth: [] }, { apiKeyHeader: [] }],
        );
      }
    }
    expect(doc.paths['/v1/actions']!.get!.parameters!.map((p) => p.name).sort()).toEqual([
      'case',
      'cursor',
      'identity',
      'limit',
      'status',
      'type',
    ]);
    expect(doc.paths['/v1/actions/{id}/approve']!.post!.parameters).toEqual([
      expect.objectContaining({ name: 'id', in: 'path' }),
    ]);
    expect(doc.paths['/v1/actions/{id}/approve']!.post!.requestBody).toMatchObject({ required: false });
    expect(doc.paths['/v1/actions/{id}/reject']!.post!.requestBody).toMatchObject({ required: true });
    // Swagger UI over that document, with "Try it out" on
    const html = await call('GET', '/docs', { as: 'none' });
    expect(html.headers['content-type']).toContain('text/html');
    expect(html.text).toContain('<div id="swagger-ui"></div>');
    const init = await call('GET', '/docs/static/swagger-initializer.js', { as: 'none' });
    expect(init.status).toBe(200);
    expect(init.text).toContain('"tryItOutEnabled":true');
  });
});
