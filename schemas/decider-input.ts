import type { IdentityRef, NormalizedDetection } from './detection.ts';
import type { ActionType } from './events.ts';

export interface HumanActor {
  id: string;
  role?: string;
}

/**
 * What the decider reacts to. Every input carries its decision time `at` (ISO 8601): the time it
 * reached Tourniquet live, the recorded time in replay. The core never reads a clock.
 */
export type DeciderInput =
  | {
      type: 'detection';
      at: string;
      /** `at` in epoch ms, when the caller already has it (it must equal Date.parse(at)). */
      atMs?: number;
      detection: NormalizedDetection;
    }
  | {
      type: 'approve';
      at: string;
      identity: IdentityRef;
      actionId: string;
      by: HumanActor;
      argsDigest?: string;
      comment?: string;
      /** The approval group the human decided it in, recorded on ActionApproved. */
      groupId?: string;
    }
  | {
      type: 'reject';
      at: string;
      identity: IdentityRef;
      actionId: string;
      by: HumanActor;
      reason: string;
      groupId?: string;
    }
  | {
      type: 'verdict';
      at: string;
      identity: IdentityRef;
      caseId: string;
      verdict: 'benign' | 'malicious';
      by: HumanActor;
      comment?: string;
    }
  | {
      type: 'propose';
      at: string;
      identity: IdentityRef;
      action: ActionType;
      args?: Record<string, unknown>;
      by: HumanActor;
      reason: string;
    }
  | { type: 'tick'; at: string; identity: IdentityRef };
