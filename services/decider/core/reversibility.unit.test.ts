/**
 * Reversibility as data: the decider receives what each configured provider can undo (DeciderContext
 * .capabilities) and (1) records it on every proposal, before approval; (2) never runs an irreversible
 * action automatically unless the stage says `irreversible: accept`; (3) marks the rollback incomplete
 * when the provider can only partially undo the action.
 */
import { describe, expect, it } from 'vitest';
import type { ProviderCapabilities } from '../../../schemas/capabilities.ts';
import { autoApprovals, proposals, Scenario } from '../../../test/support/decider-testkit.ts';

const CAPS: ProviderCapabilities = {
  okta: {
    type: 'aws',
    actions: {
      revoke_sessions: { reversibility: 'irreversible', residue: ['removing the deny revives the sessions'] },
      quarantine: { reversibility: 'reversible', residue: [] },
      disable_account: { reversibility: 'partially', residue: ['a new console password is needed'] },
    },
  },
  '*': { type: 'dry-run', actions: { revoke_sessions: { reversibility: 'reversible', residue: [] } } },
};

const policy = (accept: boolean) => `
id: spec
version: "1"
rules:
  - id: compromise
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    ladder:
      - { action: revoke_sessions, approval: auto${accept ? ', irreversible: accept' : ''} }
`;

describe('reversibility of the acting provider', () => {
  it('an irreversible action without `irreversible: accept` is put to an analyst, with the provider named', () => {
    const s = new Scenario({
      policy: policy(false),
      capabilities: CAPS,
      catalogue: [{ id: 'u1', tier: 'development' }],
    });
    const events = s.detect('u1', 'known_compromise', 0.95);
    const [p] = proposals(events);
    expect(p).toMatchObject({
      action: 'revoke_sessions',
      approval: { mode: 'analyst' },
      reversibility: { provider: 'okta', type: 'aws', reversibility: 'irreversible' },
      rollback: { complete: false },
      blastRadius: { reversible: false },
    });
    expect(p!.guards).toEqual([
      expect.objectContaining({ guard: 'irreversible', effect: 'approval auto -> analyst' }),
    ]);
    expect(p!.approval.reason).toContain('aws cannot undo it');
    expect(autoApprovals(events)).toEqual([]);
  });

  it('with `irreversible: accept` the same stage runs automatically, and the proposal still says what cannot be undone', () => {
    const s = new Scenario({
      policy: policy(true),
      capabilities: CAPS,
      catalogue: [{ id: 'u1', tier: 'development' }],
    });
    const events = s.detect('u1', 'known_compromise', 0.95);
    expect(proposals(events)[0]).toMatchObject({
      approval: { mode: 'auto' },
      reversibility: { reversibility: 'irreversible', residue: ['removing the deny revives the sessions'] },
      guards: [],
    });
    expect(autoApprovals(events)).toHaveLength(1);
  });

  it('an identity of another provider falls to the "*" entry; without capabilities nothing changes', () => {
    const other = new Scenario({
      policy: policy(false),
      capabilities: CAPS,
      catalogue: [{ id: 'u2', provider: 'keycloak', tier: 'development' }],
    });
    expect(proposals(other.detect('u2', 'known_compromise', 0.95))[0]).toMatchObject({
      approval: { mode: 'auto' },
      reversibility: { provider: '*', type: 'dry-run', reversibility: 'reversible' },
      rollback: { complete: false }, // revoked sessions stay revoked: the decider's own inherent residue
    });
    const none = new Scenario({ policy: policy(false), catalogue: [{ id: 'u1', tier: 'development' }] });
    const p = proposals(none.detect('u1', 'known_compromise', 0.95))[0]!;
    expect(p.approval.mode).toBe('auto');
    expect(p.reversibility).toBeUndefined();
  });
});

describe('rules narrowed to identity providers', () => {
  it('a rule with identities.providers acts only on identities of those providers', () => {
    const narrowed = `
id: spec
version: "1"
rules:
  - id: aws-only
    when: { kinds: [known_compromise], minConfidence: 0.9 }
    identities: { providers: [aws] }
    ladder: [{ action: quarantine, approval: auto }]
`;
    const s = new Scenario({
      policy: narrowed,
      catalogue: [
        { id: 'role-1', provider: 'aws', tier: 'development' },
        { id: 'u1', provider: 'okta', tier: 'development' },
      ],
    });
    expect(proposals(s.detect('role-1', 'known_compromise', 0.95))).toMatchObject([{ action: 'quarantine' }]);
    expect(proposals(s.detect('u1', 'known_compromise', 0.95))).toEqual([]);
  });
});
