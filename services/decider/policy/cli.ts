import { explainPolicy } from './explain.ts';
import { loadPolicyFile, PolicyError } from './load.ts';

/** `tourniquet policy validate FILE`: 0 when valid; 1 with every bad path listed otherwise. */
export function runPolicyValidate(
  file: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): number {
  try {
    const { policy, digest } = loadPolicyFile(file);
    out.write(
      `ok: policy ${policy.id} version ${policy.version}, ${policy.rules.length} rules, digest ${digest}\n`,
    );
    return 0;
  } catch (e) {
    if (e instanceof PolicyError) {
      err.write(`invalid policy ${file}:\n`);
      for (const i of e.issues) err.write(`  ${i.path}: ${i.message}\n`);
      return 1;
    }
    if (e instanceof Error) {
      err.write(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

export function runPolicyExplain(file: string, out: NodeJS.WritableStream): number {
  const { policy, digest } = loadPolicyFile(file);
  out.write(`${explainPolicy(policy)}\n\ndigest ${digest}\n`);
  return 0;
}
