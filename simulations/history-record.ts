import type { CatalogueEntry } from '../schemas/catalogue.ts';
import type { IdentityType, NormalizedDetection } from '../schemas/detection.ts';

/** Approvals and verdicts name identities by provider and id; the rest is optional. */
interface IdentityName {
  provider: string;
  id: string;
  type?: IdentityType;
  tenant?: string;
}

export interface Human {
  id: string;
  role?: string;
}

/**
 * A validated history line, with its merge time `atMs` precomputed and, for lines that name an
 * identity, `ix`: the identity's index in `History.identities` (-1 until a history assigns it).
 * A detection record has the shape of the decider's detection input, so replay passes it as is.
 */
export type HistoryRecord =
  | { type: 'detection'; atMs: number; at: string; detection: NormalizedDetection; ix: number }
  | { type: 'identity'; atMs: number; entry: CatalogueEntry }
  | {
      type: 'approval';
      atMs: number;
      at: string;
      decision: 'approve' | 'reject';
      by: Human;
      actionRef?: string;
      identity?: IdentityName;
      reason?: string;
      ix: number;
    }
  | {
      type: 'verdict';
      atMs: number;
      at: string;
      identity: IdentityName;
      verdict: 'malicious' | 'benign';
      by?: Human;
      ix: number;
    };
