import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../../platform/digest.ts';
import { proposalDigest } from './decide.ts';

describe('proposalDigest', () => {
  it('equals digestOf over the same proposal fields, whatever the args and names', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.record({ provider: fc.string(), id: fc.string() }),
        fc.dictionary(fc.string(), fc.jsonValue()),
        fc.integer({ min: -5, max: 20 }),
        fc.string(),
        fc.string(),
        (actionId, action, identity, args, stage, ruleId, policyVersion) => {
          const expected = digestOf({
            actionId,
            action,
            identity: { provider: identity.provider, id: identity.id },
            args,
            stage,
            ruleId,
            policyVersion,
          });
          expect(proposalDigest(actionId, action, identity, args, stage, ruleId, policyVersion)).toBe(
            expected,
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('orders index-like and nested args keys as digestOf does', () => {
    const fields = {
      actionId: 'act-1',
      action: 'revoke_sessions',
      identity: { provider: 'okta', id: 'alice' },
      args: { scope: ['all'], '1': 'x', b: { z: 1, a: null } },
      stage: 1,
      ruleId: 'r-1',
      policyVersion: '2026.11.1',
    };
    expect(
      proposalDigest(fields.actionId, fields.action, fields.identity, fields.args, 1, 'r-1', '2026.11.1'),
    ).toBe(digestOf(fields));
  });
});
