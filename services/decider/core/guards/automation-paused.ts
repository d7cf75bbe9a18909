import { type Guard, requireAnalyst } from './types.ts';

/** The kill switch: while automation is paused nothing is approved automatically. */
export const automationPaused: Guard = {
  name: 'automation_paused',
  apply(plan, { ctx }) {
    if (ctx.paused) requireAnalyst(plan, 'automation_paused', 'automation is paused (kill switch)');
  },
};
