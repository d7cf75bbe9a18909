import type { CatalogueEntry } from '../schemas/catalogue.ts';
import { canonicalTimeMs, IDENTITY_TYPES, type IdentityType, plainDetection } from '../schemas/detection.ts';
import type { HistoryRecord } from './history-record.ts';

/**
 * Hand-checked validation of the common, plainly valid history line, line type by line type. The
 * zod schemas in history.ts stay the definition: this answers only when it can vouch for a line
 * (returning exactly the record the schema path builds, which a property test holds it to) and
 * returns undefined for anything else or anything doubtful, which the schema path then decides and
 * explains. Zod's generic walk costs several times JSON.parse per line, and a history has millions.
 */

const TYPE_SET: ReadonlySet<string> = new Set(IDENTITY_TYPES);
const TIERS: ReadonlySet<string> = new Set(['production', 'staging', 'development', 'sandbox']);
const SECRETS: ReadonlySet<string> = new Set(['managed_vault', 'unmanaged', 'none']);

type Obj = Record<string, unknown>;

const isPlainObject = (v: unknown): v is Obj => {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** An optional field: absent, or present and passing `ok` (an explicit undefined is left to zod). */
const optional = (o: Obj, key: string, ok: (v: unknown) => boolean): boolean => {
  const v = o[key];
  return v === undefined ? !(key in o) : ok(v);
};

const isString = (v: unknown): v is string => typeof v === 'string';
const isType = (v: unknown): boolean => typeof v === 'string' && TYPE_SET.has(v);
const isNonEmpty = (v: unknown): boolean => isName(v);

/** `{provider, id, type?, tenant?}` as approvals and verdicts name identities (unknown keys dropped). */
function identityName(
  v: unknown,
): { provider: string; id: string; type?: IdentityType; tenant?: string } | undefined {
  if (!isPlainObject(v) || !isName(v.provider) || !isName(v.id)) return undefined;
  if (!optional(v, 'type', isType) || !optional(v, 'tenant', isNonEmpty)) return undefined;
  const out: { provider: string; id: string; type?: IdentityType; tenant?: string } = {
    provider: v.provider,
    id: v.id,
  };
  if (v.type !== undefined) out.type = v.type as IdentityType;
  if (v.tenant !== undefined) out.tenant = v.tenant as string;
  return out;
}

/** A human as history records them: an id, or `{id, role?}`; as the record keeps them. */
function human(v: unknown): { id: string; role?: string } | undefined {
  if (isName(v)) return { id: v };
  if (!isPlainObject(v) || !isName(v.id) || !optional(v, 'role', isString)) return undefined;
  return v.role ? { id: v.id, role: v.role as string } : { id: v.id };
}

/** Milliseconds of a canonical timestamp (`toISOString()` form), else NaN: other forms go to zod. */
const timeMs = (v: unknown): number => (typeof v === 'string' ? canonicalTimeMs(v) : Number.NaN);

function detection(v: Obj): HistoryRecord | undefined {
  const at = v.at;
  let atMs: number | undefined;
  if (at !== undefined) {
    atMs = timeMs(at);
    if (Number.isNaN(atMs)) return undefined;
  } else if ('at' in v) return undefined;
  const d = plainDetection(v);
  if (!d) return undefined;
  const when = (at as string | undefined) ?? d.occurredAt;
  return { type: 'detection', atMs: atMs ?? canonicalTimeMs(d.occurredAt), at: when, detection: d, ix: -1 };
}

function verdict(v: Obj): HistoryRecord | undefined {
  const atMs = timeMs(v.at);
  if (Number.isNaN(atMs) || (v.verdict !== 'malicious' && v.verdict !== 'benign')) return undefined;
  const identity = identityName(v.identity);
  if (!identity) return undefined;
  let by: { id: string; role?: string } | undefined;
  if (v.by !== undefined) {
    by = human(v.by);
    if (!by) return undefined;
  } else if ('by' in v) return undefined;
  return {
    type: 'verdict',
    atMs,
    at: v.at as string,
    identity,
    verdict: v.verdict,
    ...(by ? { by } : {}),
    ix: -1,
  };
}

function approval(v: Obj): HistoryRecord | undefined {
  const atMs = timeMs(v.at);
  if (Number.isNaN(atMs) || (v.decision !== 'approve' && v.decision !== 'reject')) return undefined;
  const by = human(v.by);
  if (!by || !optional(v, 'actionRef', isNonEmpty) || !optional(v, 'reason', isString)) return undefined;
  let identity: ReturnType<typeof identityName>;
  if (v.identity !== undefined) {
    identity = identityName(v.identity);
    if (!identity) return undefined;
  } else if ('identity' in v) return undefined;
  if (v.actionRef === undefined && identity === undefined) return undefined;
  return {
    type: 'approval',
    atMs,
    at: v.at as string,
    decision: v.decision,
    by,
    ...(v.actionRef ? { actionRef: v.actionRef as string } : {}),
    ...(identity ? { identity } : {}),
    ...(v.reason !== undefined ? { reason: v.reason as string } : {}),
    ix: -1,
  };
}

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
const isStrings = (v: unknown): boolean => Array.isArray(v) && v.every(isString);
const isPair = (v: unknown, a: string, b: string): boolean =>
  isPlainObject(v) && isName(v[a]) && isName(v[b]);
const isAliases = (v: unknown): boolean => Array.isArray(v) && v.every((x) => isPair(x, 'provider', 'id'));

/** A catalogue entry with zod's defaults filled in, keys in the schema's order. */
function catalogueEntry(e: unknown): CatalogueEntry | undefined {
  if (!isPlainObject(e) || !isName(e.provider) || !isName(e.id) || !isType(e.type)) return undefined;
  if (!optional(e, 'tenant', isString) || !optional(e, 'owner', isString)) return undefined;
  if (!optional(e, 'consumers', isCount) || !optional(e, 'tags', isStrings)) return undefined;
  if (!optional(e, 'tier', (t) => typeof t === 'string' && TIERS.has(t))) return undefined;
  if (!optional(e, 'breakGlass', (b) => typeof b === 'boolean')) return undefined;
  if (!optional(e, 'thirdParty', (t) => isPair(t, 'partner', 'grant'))) return undefined;
  if (!optional(e, 'secrets', (s) => typeof s === 'string' && SECRETS.has(s))) return undefined;
  if (!optional(e, 'aliases', isAliases)) return undefined;
  if (!optional(e, 'at', (t) => !Number.isNaN(timeMs(t)))) return undefined;
  const out = { provider: e.provider, id: e.id, type: e.type } as CatalogueEntry;
  if (e.tenant !== undefined) out.tenant = e.tenant as string;
  if (e.owner !== undefined) out.owner = e.owner as string;
  out.consumers = (e.consumers as number | undefined) ?? 1;
  out.tier = (e.tier as CatalogueEntry['tier'] | undefined) ?? 'development';
  out.tags = e.tags === undefined ? [] : [...(e.tags as string[])];
  out.breakGlass = (e.breakGlass as boolean | undefined) ?? false;
  if (e.thirdParty !== undefined) {
    const t = e.thirdParty as { partner: string; grant: string };
    out.thirdParty = { partner: t.partner, grant: t.grant };
  }
  out.secrets = (e.secrets as CatalogueEntry['secrets'] | undefined) ?? 'managed_vault';
  if (e.aliases !== undefined)
    out.aliases = (e.aliases as Array<{ provider: string; id: string }>).map((a) => ({
      provider: a.provider,
      id: a.id,
    }));
  if (e.at !== undefined) out.at = e.at as string;
  return out;
}

function identity(v: Obj): HistoryRecord | undefined {
  if (!optional(v, 'at', (t) => !Number.isNaN(timeMs(t)))) return undefined;
  const entry = catalogueEntry(v.entry);
  if (!entry) return undefined;
  const at = (v.at as string | undefined) ?? entry.at;
  return {
    type: 'identity',
    atMs: at ? canonicalTimeMs(at) : Number.NEGATIVE_INFINITY,
    entry: at ? { ...entry, at } : entry,
  };
}

/**
 * The record for a parsed history line when it is plainly valid, else undefined (the schema path
 * then decides, and names what is wrong).
 */
export function plainHistoryRecord(value: unknown): HistoryRecord | undefined {
  if (!isPlainObject(value)) return undefined;
  switch (value.type) {
    case 'detection':
      return detection(value);
    case 'verdict':
      return verdict(value);
    case 'approval':
      return approval(value);
    case 'identity':
      return identity(value);
    default:
      return undefined;
  }
}
