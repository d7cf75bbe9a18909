import type { Guard } from './types.ts';

/** Secrets outside a managed vault: a rotation cannot be distributed or undone, so tokens are revoked instead. */
export const unmanagedSecrets: Guard = {
  name: 'unmanaged_secrets',
  apply(plan, { entry }) {
    if (entry.secrets !== 'unmanaged') return;
    if (plan.action === 'rotate_credential') {
      plan.action = 'revoke_tokens';
      plan.guards.push({
        guard: 'unmanaged_secrets',
        effect: 'rotate_credential replaced by revoke_tokens',
        reason: 'its secrets live outside a managed vault: a rotation cannot be distributed or undone safely',
      });
    }
    plan.rollbackNotes.push(
      'secrets kept outside a managed vault: copies may persist and cannot be recalled',
    );
  },
};
