/**
 * One person across sources, through the product as a SOC runs it: the embedded server started with a
 * catalogue file that names Priya's Entra object id and GitHub login as aliases of her Okta user; an
 * Okta, an Entra ID Protection and a GitHub detection, each naming her by that source's own id, are
 * posted over HTTP. They open one case on her canonical identity, and together complete the count-3
 * `mfa-fatigue` rule, whose first rung is an automatic session revocation. The case API lists all three.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type EmbeddedHttp, embeddedHttp } from '../support/embedded-http.ts';

const CATALOGUE = `identities:
  - provider: okta
    id: priya@acme.example
    type: human
    tenant: acme
    tier: production
    aliases:
      - { provider: entra, id: 6f1c2a9e-0b7d-4c1e-9a55-2d8e1f0c7b31 }
      - { provider: github, id: priya-acme }
`;

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();

const detections = [
  { source: 'okta', identity: { provider: 'okta', id: 'priya@acme.example', type: 'human' } },
  {
    source: 'entra-id-protection',
    identity: { provider: 'entra', id: '6f1c2a9e-0b7d-4c1e-9a55-2d8e1f0c7b31', type: 'human' },
  },
  { source: 'github', identity: { provider: 'github', id: 'priya-acme', type: 'human' } },
].map((x, i) => ({
  id: `alias-ca-${i}`,
  source: x.source,
  kind: 'credential_abuse',
  confidence: 0.7,
  severity: 'high',
  identity: x.identity,
  occurredAt: minutesAgo(15 - i * 5),
}));

let running: EmbeddedHttp | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await running?.close();
  running = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function serverWith(catalogue: string | undefined): Promise<EmbeddedHttp> {
  const dir = mkdtempSync(join(tmpdir(), 'tq-aliases-'));
  dirs.push(dir);
  let cataloguePath: string | undefined;
  if (catalogue !== undefined) {
    cataloguePath = join(dir, 'catalogue.yaml');
    writeFileSync(cataloguePath, catalogue);
  }
  running = await embeddedHttp(cataloguePath ? { cataloguePath } : {});
  return running;
}

describe('one person across sources, over HTTP', () => {
  it('Okta, Entra and GitHub detections of one person open one case and complete the count-3 rule', async () => {
    const api = await serverWith(CATALOGUE);
    for (const d of detections) {
      const r = await api.post('/v1/detections', d);
      expect(r.status, JSON.stringify(r.json)).toBe(202);
    }
    await api.views();

    const cases = await api.get('/v1/cases?limit=100');
    expect(cases.status).toBe(200);
    expect(cases.json.items).toHaveLength(1);
    const [c] = cases.json.items;
    expect(c.identity).toMatchObject({ provider: 'okta', id: 'priya@acme.example' });

    const one = await api.get(`/v1/cases/${encodeURIComponent(c.id)}`);
    expect(one.status).toBe(200);
    const ids = JSON.stringify(one.json);
    for (const d of detections) expect(ids).toContain(d.id);

    const actions = await api.get('/v1/actions?limit=100');
    const mfa = actions.json.items.filter((a: { ruleId: string }) => a.ruleId === 'mfa-fatigue');
    expect(mfa).toHaveLength(1);
    expect(mfa[0]).toMatchObject({
      type: 'revoke_sessions',
      approvalMode: 'auto',
      identity: { provider: 'okta', id: 'priya@acme.example' },
    });
    expect(api.verify().ok).toBe(true);
  });

  it('without the catalogue they are three people and the rule never completes', async () => {
    const api = await serverWith(undefined);
    for (const d of detections) expect((await api.post('/v1/detections', d)).status).toBe(202);
    await api.views();
    expect((await api.get('/v1/cases?limit=100')).json.items).toHaveLength(3);
    const actions = await api.get('/v1/actions?limit=100');
    expect(actions.json.items.filter((a: { ruleId: string }) => a.ruleId === 'mfa-fatigue')).toEqual([]);
  });
});
