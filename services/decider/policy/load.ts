import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { digestOf } from '../../../platform/digest.ts';
import { type FieldIssue, issuesFromZod, TourniquetError } from '../../../platform/errors.ts';
import { Policy } from './schema.ts';

export const DEFAULT_POLICY_PATH = fileURLToPath(new URL('../../../policies/default.yaml', import.meta.url));

export interface LoadedPolicy {
  policy: Policy;
  /** Digest of the validated policy (defaults applied): what PolicyActivated records. */
  digest: string;
  source: string;
}

export class PolicyError extends TourniquetError {
  readonly issues: FieldIssue[];
  constructor(source: string, issues: FieldIssue[]) {
    super(
      'POLICY_INVALID',
      `policy ${source} is invalid:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`,
      {
        status: 400,
        details: { source, issues },
      },
    );
    this.name = 'PolicyError';
    this.issues = issues;
  }
}

/** Parses and validates a policy document (YAML or JSON text); every bad path is reported at once. */
export function parsePolicy(text: string, source = '<inline>'): LoadedPolicy {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new PolicyError(
      source,
      doc.errors.map((e) => ({
        path: `(yaml line ${e.linePos?.[0]?.line ?? '?'})`,
        message: e.message.split('\n')[0]!,
      })),
    );
  }
  const result = Policy.safeParse(doc.toJS());
  if (!result.success) throw new PolicyError(source, issuesFromZod(result.error.issues));
  return { policy: result.data, digest: digestOf(result.data), source };
}

export function loadPolicyFile(path: string): LoadedPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TourniquetError(
      'POLICY_INVALID',
      `cannot read policy file ${path}: ${(err as Error).message}`,
      {
        status: 400,
        cause: err,
      },
    );
  }
  return parsePolicy(text, path);
}

export function loadDefaultPolicy(): LoadedPolicy {
  return loadPolicyFile(DEFAULT_POLICY_PATH);
}
