import { digestOf } from '../platform/digest.ts';
import { issuesFromZod, TourniquetError } from '../platform/errors.ts';
import { Policy } from '../services/decider/policy/schema.ts';

/**
 * Threshold sweeps: `PATH=FROM..TO:STEP` (numbers) or `PATH=a,b,c` (any values) over paths into the
 * validated policy object, e.g. `rules.0.when.minConfidence=0.5..0.95:0.05`. A path segment that
 * is not a number selects an array element by its `id` (`rules.stolen-token.when.count=1..3:1`).
 */

export interface Sweep {
  spec: string;
  path: string[];
  values: unknown[];
}

export interface Variant {
  index: number;
  /** PATH → value for this grid point, in sweep order. */
  assignments: Array<{ path: string; value: unknown }>;
  policy: Policy;
  digest: string;
}

const MAX_VARIANTS = 10_000;

function bad(message: string): TourniquetError {
  return new TourniquetError('VALIDATION_FAILED', message, { status: 400 });
}

function parseScalar(text: string): unknown {
  const t = text.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (t !== '' && Number.isFinite(Number(t))) return Number(t);
  return t;
}

/** Parses one `--sweep` argument. */
export function parseSweep(spec: string): Sweep {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw bad(`sweep "${spec}": expected PATH=FROM..TO:STEP or PATH=a,b,c`);
  const path = spec
    .slice(0, eq)
    .trim()
    .split('.')
    .filter((s) => s.length > 0);
  const body = spec.slice(eq + 1).trim();
  if (path.length === 0) throw bad(`sweep "${spec}": empty path`);
  const range = /^(-?[\d.]+)\.\.(-?[\d.]+)(?::([\d.]+))?$/.exec(body);
  if (range) {
    const from = Number(range[1]);
    const to = Number(range[2]);
    const step = range[3] === undefined ? 1 : Number(range[3]);
    if (![from, to, step].every(Number.isFinite) || step <= 0)
      throw bad(`sweep "${spec}": FROM, TO and STEP must be numbers, STEP > 0`);
    if (to < from) throw bad(`sweep "${spec}": TO must not be below FROM`);
    const values: number[] = [];
    // Integer multiples of the step, rounded, so 0.5..0.95:0.05 ends at 0.95 exactly.
    for (let i = 0; ; i++) {
      const v = Number((from + i * step).toFixed(10));
      if (v > to + step * 1e-9) break;
      values.push(v);
      if (values.length > MAX_VARIANTS) throw bad(`sweep "${spec}": more than ${MAX_VARIANTS} values`);
    }
    return { spec, path, values };
  }
  const values = body.split(',').map(parseScalar);
  if (values.length === 0 || values.some((v) => v === '')) throw bad(`sweep "${spec}": empty value list`);
  return { spec, path, values };
}

/** Resolves a path into a container: numeric segments index arrays, others pick `id` in arrays. */
function step(
  node: unknown,
  seg: string,
  spec: string,
): { container: Record<string, unknown> | unknown[]; key: string | number } {
  if (Array.isArray(node)) {
    if (/^\d+$/.test(seg)) {
      const i = Number(seg);
      if (i >= node.length)
        throw bad(`sweep path ${spec}: index ${i} is out of range (${node.length} items)`);
      return { container: node, key: i };
    }
    const i = node.findIndex((x) => x && typeof x === 'object' && (x as { id?: unknown }).id === seg);
    if (i < 0) throw bad(`sweep path ${spec}: no item with id "${seg}"`);
    return { container: node, key: i };
  }
  if (node && typeof node === 'object') return { container: node as Record<string, unknown>, key: seg };
  throw bad(`sweep path ${spec}: "${seg}" is below a value, not an object`);
}

/** A copy of `policy` with `value` at `path` (the leaf may be new; everything above it must exist). */
export function setPath<T>(policy: T, path: readonly string[], value: unknown, spec = path.join('.')): T {
  const copy = structuredClone(policy) as unknown;
  let node: unknown = copy;
  for (let i = 0; i < path.length - 1; i++) {
    const { container, key } = step(node, path[i]!, spec);
    const next = (container as Record<string | number, unknown>)[key];
    if (next === undefined || next === null)
      throw bad(`sweep path ${spec}: "${path.slice(0, i + 1).join('.')}" does not exist in the policy`);
    node = next;
  }
  const { container, key } = step(node, path[path.length - 1]!, spec);
  (container as Record<string | number, unknown>)[key] = value;
  return copy as T;
}

/** Checks every path resolves on the base policy before any replay runs. */
function checkPath(policy: Policy, sweep: Sweep): void {
  setPath(policy, sweep.path, sweep.values[0], sweep.spec);
}

/**
 * Every grid point as a validated policy. A variant the Policy schema rejects (e.g. a confidence
 * above 1) fails the whole sweep with the offending assignment named: a sweep is a typo away from
 * silently testing nothing.
 */
export function expandGrid(base: Policy, sweeps: readonly Sweep[]): Variant[] {
  if (sweeps.length === 0) throw bad('at least one --sweep is needed');
  for (const s of sweeps) checkPath(base, s);
  const total = sweeps.reduce((n, s) => n * s.values.length, 1);
  if (total > MAX_VARIANTS) throw bad(`the sweep grid has ${total} variants; at most ${MAX_VARIANTS}`);
  const variants: Variant[] = [];
  const idx = new Array<number>(sweeps.length).fill(0);
  for (let n = 0; n < total; n++) {
    let policy: Policy = base;
    const assignments: Variant['assignments'] = [];
    sweeps.forEach((s, i) => {
      const value = s.values[idx[i]!];
      policy = setPath(policy, s.path, value, s.spec);
      assignments.push({ path: s.path.join('.'), value });
    });
    const parsed = Policy.safeParse(policy);
    if (!parsed.success) {
      const issues = issuesFromZod(parsed.error.issues);
      throw bad(
        `variant ${assignments.map((a) => `${a.path}=${String(a.value)}`).join(', ')} is not a valid policy: ${issues
          .map((i) => `${i.path}: ${i.message}`)
          .join('; ')}`,
      );
    }
    variants.push({ index: n, assignments, policy: parsed.data, digest: digestOf(parsed.data) });
    // odometer: the last sweep varies fastest
    for (let i = sweeps.length - 1; i >= 0; i--) {
      idx[i] = idx[i]! + 1;
      if (idx[i]! < sweeps[i]!.values.length) break;
      idx[i] = 0;
    }
  }
  return variants;
}

export function variantLabel(v: Pick<Variant, 'assignments'>): string {
  return v.assignments.map((a) => `${a.path}=${String(a.value)}`).join(' ');
}
