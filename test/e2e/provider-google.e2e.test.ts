/**
 * Google Workspace end to end on the embedded stack, the providers file pointing at the checked local
 * Directory API (service-account JWT verified by its token endpoint, the key read from a file): a
 * compromise → revoke_sessions (automatic: signed out, app tokens revoked) → verified → benign verdict →
 * rolled back naming the residue; a second user → disable_account approved by an analyst → suspended,
 * verified → benign verdict → unsuspended.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { IdentityRef } from '../../schemas/detection.ts';
import { GoogleFake } from '../support/vendors/google-fake.ts';
import { policyOf, type SaasStack, startSaasStack } from '../support/vendors/saas-e2e.ts';

describe('Google Workspace provider on the embedded stack', () => {
  let g: GoogleFake;
  let s: SaasStack;

  beforeAll(async () => {
    g = new GoogleFake();
    const url = await g.start();
    const keyFile = join(mkdtempSync(join(tmpdir(), 'tq-google-key-')), 'sa.json');
    writeFileSync(
      keyFile,
      JSON.stringify({ type: 'service_account', client_email: g.clientEmail, private_key: g.privateKeyPem }),
    );
    s = await startSaasStack({
      providers: {
        google: {
          type: 'google',
          clientEmail: g.clientEmail,
          privateKeyFile: keyFile,
          subject: g.subject,
          baseUrl: url,
          tokenUrl: g.tokenUrl,
        },
      },
      policy: policyOf([
        {
          id: 'workspace-compromise',
          kinds: ['known_compromise'],
          types: ['human'],
          ladder: [{ action: 'revoke_sessions', approval: 'auto' }],
        },
        {
          id: 'workspace-abuse',
          kinds: ['credential_abuse'],
          types: ['human'],
          ladder: [{ action: 'disable_account', approval: 'analyst' }],
        },
      ]),
    });
  });
  afterAll(async () => {
    await s?.close();
    await g?.stop();
  });

  test('signed out with app tokens revoked automatically, verified, rolled back naming the residue', async () => {
    const u = g.addUser('alice@acme.example', ['crm.apps.googleusercontent.example']);
    const identity: IdentityRef = { provider: 'google', id: u.email, type: 'human' };
    const proposed = await s.propose({
      id: 'gws-alert-1',
      source: 'chronicle',
      kind: 'known_compromise',
      confidence: 0.96,
      identity,
    });
    expect(proposed.data).toMatchObject({ action: 'revoke_sessions', approval: { mode: 'auto' } });
    await s.verified(proposed, 'signed out and verified');
    expect(u.sessions).toBe(0);
    expect(u.tokens).toEqual([]);

    const { outcome: rolled } = await s.afterBenign(proposed, ['ActionRolledBack'], 'the rollback');
    expect((rolled!.data as { residue: string[] }).residue.join('\n')).toMatch(/authorize them again/);
    const x = await s.explain(proposed.data.actionId);
    expect(x.verification?.holds).toBe(true);
    expect(x.residue.join('\n')).toMatch(/\(1 h\)/);
    g.fake.assertNoDeviations();
  });

  test('suspension approved by an analyst, verified, lifted on a benign verdict', async () => {
    const u = g.addUser('bob@acme.example');
    const identity: IdentityRef = { provider: 'google', id: u.id, type: 'human' };
    const proposed = await s.propose({
      id: 'gws-abuse-1',
      source: 'chronicle',
      kind: 'credential_abuse',
      confidence: 0.9,
      identity,
    });
    expect(proposed.data).toMatchObject({ action: 'disable_account', approval: { mode: 'analyst' } });
    await s.approve(proposed.data.actionId, proposed.data.argsDigest);
    await s.verified(proposed, 'suspended');
    expect(u.suspended).toBe(true);
    await s.verdict(proposed.data.caseId, 'benign');
    await s.actionEvents(proposed.data.actionId, (t) => t.includes('ActionRolledBack'), 'unsuspended');
    expect(u.suspended).toBe(false);
    g.fake.assertNoDeviations();
  });
});
