/**
 * The identity-provider contract (services/executor/providers/port.ts). Every adapter runs exactly this
 * suite, against a real server (Keycloak, moto) or a local stateful server that checks each request
 * against the vendor's published API description:
 *   - apply is idempotent under the same action id (the provider's state after a second apply equals
 *     the state after the first);
 *   - isApplied is false before apply and true after it, also from a fresh instance that knows nothing
 *     but the captured prior state (crash between apply and recording it);
 *   - verify passes after apply, and fails once the effect is removed behind the provider's back;
 *   - revert restores what the declared capability promises and names its residue, or, for an
 *     irreversible action, refuses with RollbackRefusedError and a reason;
 *   - errors are classified: an unknown identity is permanent, an unreachable server retriable, a 429
 *     retriable with the server's Retry-After;
 *   - the definition declares exactly the actions the provider supports.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ProviderError, RollbackRefusedError } from '../../platform/errors.ts';
import { ACTION_TYPES, type ActionType } from '../../schemas/events.ts';
import type {
  ApplyResult,
  IdentityProvider,
  PriorState,
  ProviderAction,
  ProviderDefinition,
} from '../../services/executor/providers/port.ts';

/** One action the suite drives through capture → apply → verify → revert, on a fresh identity. */
interface ProviderContractCase {
  action: ActionType;
  /** A new action (fresh action id, and a fresh identity or one in its pre-action state). */
  prepare(): Promise<ProviderAction>;
  /**
   * The provider's state as the server reports it, read independently of the adapter (its admin API,
   * the IAM API). Compared after the first and second apply: equal means the second changed nothing.
   */
  observe(a: ProviderAction, prior: PriorState): Promise<unknown>;
  /** Removes the effect behind the provider's back, as another admin would. */
  undo(a: ProviderAction, prior: PriorState, result: ApplyResult): Promise<unknown>;
  /** After a successful revert: asserts (with expect) that what the capability promises is back. */
  restored?(a: ProviderAction, prior: PriorState): Promise<void>;
}

export interface ProviderContractSetup {
  definition: ProviderDefinition;
  provider: IdentityProvider;
  /** A second instance on the same configuration, as after a restart: no in-memory state shared. */
  reopen(): IdentityProvider;
  /** Reversible or partially reversible actions, and every irreversible one the adapter has. */
  cases: ProviderContractCase[];
  /**
   * An action on an identity the provider does not have (capture must fail permanently). Required of
   * every adapter that talks to a server; only a simulation that has every identity leaves it out.
   */
  unknownIdentity?(): ProviderAction;
  /** The same provider pointed at an address nothing listens on (required as above). */
  unreachable?(): IdentityProvider;
  /**
   * Optional: a provider whose server answers the next call with 429 and `Retry-After: <seconds>`,
   * and the seconds it sends.
   */
  rateLimited?(): Promise<{ provider: IdentityProvider; action: ProviderAction; retryAfterSeconds: number }>;
  teardown?(): Promise<void>;
}

export function describeProviderContract(
  label: string,
  setup: () => Promise<ProviderContractSetup>,
  opts: { skip?: string | null; timeoutMs?: number } = {},
): void {
  const skip = opts.skip ?? null;
  if (skip) console.warn(`[provider contract: ${label}] SKIPPED: ${skip}`);
  describe.skipIf(skip !== null)(`provider contract: ${label}`, { timeout: opts.timeoutMs ?? 60_000 }, () => {
    let s: ProviderContractSetup;
    beforeAll(async () => {
      s = await setup();
    }, 240_000);
    afterAll(async () => {
      await s?.teardown?.();
    }, 120_000);

    test('the definition declares exactly the actions the provider supports, each with its residue', () => {
      for (const action of ACTION_TYPES) {
        const cap = s.definition.actions[action];
        expect(s.provider.supports(action), `${action}: supports() vs declared`).toBe(cap !== undefined);
        if (cap && cap.reversibility !== 'reversible') expect(cap.residue.length, action).toBeGreaterThan(0);
      }
      expect(s.cases.length).toBeGreaterThan(0);
      for (const c of s.cases) expect(s.definition.actions[c.action], c.action).toBeDefined();
    });

    test('capture → apply → apply again (same action id): the second apply changes nothing', async () => {
      for (const c of s.cases) {
        const a = await c.prepare();
        const prior = await s.provider.capture(a);
        await s.provider.apply(a, prior);
        const once = await c.observe(a, prior);
        await s.provider.apply(a, prior);
        expect(await c.observe(a, prior), `${c.action}: state after the second apply`).toEqual(once);
        // A restarted executor applies again with the prior state it recorded: still one effect.
        await s.reopen().apply(a, prior);
        expect(await c.observe(a, prior), `${c.action}: state after an apply by a fresh instance`).toEqual(
          once,
        );
      }
    });

    test('isApplied: false before apply, true after it, also from a fresh instance (crash reconciliation)', async () => {
      for (const c of s.cases) {
        const a = await c.prepare();
        const prior = await s.provider.capture(a);
        expect(await s.provider.isApplied(a, prior), `${c.action} before apply`).toBe(false);
        await s.provider.apply(a, prior);
        const fresh = s.reopen();
        expect(await fresh.isApplied(a, prior), `${c.action} after apply, fresh instance`).toBe(true);
      }
    });

    test('verify passes after apply and fails once the effect is removed behind its back', async () => {
      for (const c of s.cases) {
        const a = await c.prepare();
        const prior = await s.provider.capture(a);
        const result = await s.provider.apply(a, prior);
        const probes = await s.provider.verify(a, prior, result);
        expect(probes.length, `${c.action}: probes`).toBeGreaterThan(0);
        for (const p of probes) expect(p, `${c.action}: ${p.probe}: ${p.detail}`).toMatchObject({ ok: true });
        await c.undo(a, prior, result);
        const after = await s.provider.verify(a, prior, result);
        expect(
          after.some((p) => !p.ok),
          `${c.action}: some probe must fail: ${JSON.stringify(after)}`,
        ).toBe(true);
      }
    });

    test('revert restores and names its residue, or refuses an irreversible action with the reason', async () => {
      for (const c of s.cases) {
        const cap = s.definition.actions[c.action]!;
        const a = await c.prepare();
        const prior = await s.provider.capture(a);
        const result = await s.provider.apply(a, prior);
        if (cap.reversibility === 'irreversible') {
          const err = await s.provider.revert(a, prior, result).then(
            () => null,
            (e: unknown) => e,
          );
          expect(err, `${c.action}: revert of an irreversible action must refuse`).toBeInstanceOf(
            RollbackRefusedError,
          );
          expect((err as RollbackRefusedError).retriable).toBe(false);
          expect((err as RollbackRefusedError).reason.length).toBeGreaterThan(10);
          continue;
        }
        const rb = await s.provider.revert(a, prior, result);
        if (cap.reversibility === 'reversible') expect(rb.residue, c.action).toEqual([]);
        else expect(rb.residue.length, `${c.action}: partially reversible names residue`).toBeGreaterThan(0);
        expect(rb.restored.length, `${c.action}: says what it restored`).toBeGreaterThan(0);
        await c.restored?.(a, prior);
        // A repeated revert (crash before ActionRolledBack was recorded) is harmless.
        const rb2 = await s.reopen().revert(a, prior, result);
        expect(rb2.residue.length > 0).toBe(rb.residue.length > 0);
        await c.restored?.(a, prior);
      }
    });

    test('an unknown identity is a permanent error', async (ctx) => {
      if (!s.unknownIdentity) return ctx.skip();
      const err = await s.provider.capture(s.unknownIdentity()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).retriable).toBe(false);
    });

    test('an unreachable server is a retriable error', async (ctx) => {
      if (!s.unreachable) return ctx.skip();
      const a = await s.cases[0]!.prepare();
      const err = await s
        .unreachable()
        .capture(a)
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).retriable).toBe(true);
    });

    test('429 is retriable and carries the Retry-After the server sent', async (ctx) => {
      if (!s.rateLimited) return ctx.skip();
      const { provider, action, retryAfterSeconds } = await s.rateLimited();
      const err = await provider.capture(action).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).retriable).toBe(true);
      expect((err as ProviderError).retryAfterMs).toBe(retryAfterSeconds * 1000);
    });
  });
}
