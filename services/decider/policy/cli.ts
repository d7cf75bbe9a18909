import type { ProviderCapabilities } from '../../../schemas/capabilities.ts';
import { checkPolicyCapabilities } from './capabilities-check.ts';
import { explainPolicy } from './explain.ts';
import { loadPolicyFile, PolicyError } from './load.ts';

/**
 * `tourniquet policy validate FILE [--providers FILE]`: 0 when valid; 1 with every bad path listed
 * otherwise. With the providers' capabilities (what each configured provider can do and undo), also 1
 * naming every rule stage a provider cannot perform and every automatic irreversible stage without
 * `irreversible: accept`: refused here, not at execution.
 */
export function runPolicyValidate(
  file: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
  providers?: { source: string; capabilities: ProviderCapabilities },
): number {
  try {
    const { policy, digest } = loadPolicyFile(file);
    if (providers) {
      const findings = checkPolicyCapabilities(policy, providers.capabilities);
      if (findings.length > 0) {
        err.write(`policy ${file} does not fit the providers in ${providers.source}:\n`);
        for (const f of findings) err.write(`  ${f.message}\n`);
        return 1;
      }
    }
    out.write(
      `ok: policy ${policy.id} version ${policy.version}, ${policy.rules.length} rules, digest ${digest}${providers ? `; fits the providers in ${providers.source} (${Object.keys(providers.capabilities).join(', ')})` : ''}\n`,
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
