import { z } from 'zod';
import { IdentityType, Timestamp } from './detection.ts';

export const TIERS = ['production', 'staging', 'development', 'sandbox'] as const;

/** What the decider knows about an identity besides the detections against it. */
export const CatalogueEntry = z.object({
  provider: z.string().min(1),
  id: z.string().min(1),
  type: IdentityType,
  tenant: z.string().optional(),
  owner: z.string().optional(),
  /** Number of consumers sharing this identity; > 1 means shared. */
  consumers: z.number().int().min(0).default(1),
  tier: z.enum(TIERS).default('development'),
  tags: z.array(z.string()).default([]),
  breakGlass: z.boolean().default(false),
  thirdParty: z.object({ partner: z.string().min(1), grant: z.string().min(1) }).optional(),
  /** Where its secrets live: a managed vault, or not (then rollback cannot be complete). */
  secrets: z.enum(['managed_vault', 'unmanaged', 'none']).default('managed_vault'),
  /**
   * Other names of the same identity in other sources: emails, UPNs, provider user ids, Entra
   * object ids, AWS ARNs and access key ids, GitHub logins, key fingerprints. A detection naming an
   * alias is decided as this (canonical) identity: one case, one rule count, one budget.
   */
  aliases: z.array(z.object({ provider: z.string().min(1), id: z.string().min(1) })).optional(),
  /** Effective from this time (event time); later entries for the same identity supersede. */
  at: Timestamp.optional(),
});
export type CatalogueEntry = z.infer<typeof CatalogueEntry>;
export type CatalogueEntryInput = z.input<typeof CatalogueEntry>;

export const Catalogue = z.array(CatalogueEntry);
