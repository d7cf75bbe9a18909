import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { runPolicyExplain, runPolicyValidate } from '../../services/decider/policy/cli.ts';
import { createLogger } from '../log.ts';

type Globals = { logLevel: string };
const globals = (cmd: Command): Globals => cmd.optsWithGlobals() as Globals;

function exit(code: number): void {
  process.exitCode = code;
}

/** Every subcommand, each implemented in the folder of the service it belongs to. */
export function registerCommands(program: Command): void {
  program
    .command('start')
    .description('run the embedded stack (in-process bus, SQLite store, all four services) until interrupted')
    .option('--data-dir <dir>', 'where the event store and projections live', '.tourniquet')
    .option('--port <port>', 'HTTP port', (v) => Number.parseInt(v, 10), 7420)
    .option('--host <host>', 'HTTP host', '127.0.0.1')
    .option('--policy <file>', 'policy YAML (default: policies/default.yaml)')
    .option('--catalogue <file>', 'identity catalogue YAML/JSON')
    .option('--providers <file>', 'provider configuration YAML (Keycloak, webhook, dry-run); default: dry-run for all')
    .option('--tick <ms>', 'approval expiry check interval', (v) => Number.parseInt(v, 10), 5000)
    .action(async (o, cmd: Command) => {
      const { runStart } = await import('./start.ts');
      exit(await runStart({ ...o, dataDir: resolve(o.dataDir), log: createLogger(globals(cmd).logLevel) }));
    });

  program
    .command('demo')
    .description('start the embedded stack in a temporary directory and play a built-in scenario')
    .option('--json', 'print one JSON document {detections, cases, actions}')
    .option('--data-dir <dir>', 'keep the demo data here instead of a temporary directory')
    .action(async (o, cmd: Command) => {
      const { runDemo } = await import('./demo.ts');
      const dataDir = o.dataDir ? resolve(o.dataDir) : mkdtempSync(join(tmpdir(), 'tourniquet-demo-'));
      exit(
        await runDemo({
          json: Boolean(o.json),
          dataDir,
          log: createLogger(globals(cmd).logLevel),
          stdout: process.stdout,
        }),
      );
    });

  program
    .command('serve <service>')
    .description('run one service alone (ingest | decider | executor | projector) against Kafka and an event store')
    .option('--config <file>', 'YAML configuration (environment variables override it; see docs/kafka.md)')
    .action(async (service: string, o) => {
      const { main } = await import('../serve.ts');
      await main([service, ...(o.config ? ['--config', o.config] : [])]);
    });

  const policy = program.command('policy').description('policy as code: validate and explain');
  policy
    .command('validate <file>')
    .description('validate a policy file; exit non-zero naming every bad path')
    .action((file: string) => exit(runPolicyValidate(file, process.stdout, process.stderr)));
  policy
    .command('explain <file>')
    .description('print a readable table: rule → evidence needed → action ladder → approval')
    .action((file: string) => exit(runPolicyExplain(file, process.stdout)));

  program
    .command('normalize [file]')
    .description(
      'normalize SIEM/IdP records (JSON, JSON array or NDJSON) to NDJSON detections; rejects on stderr',
    )
    .option('--format <format>', 'auto or a format name', 'auto')
    .option('--set-keys <file>', 'JWKS file for verifying Shared Signals SETs')
    .action(async (file: string | undefined, o) => {
      const { runNormalize } = await import('../../services/ingest/normalizers/cli.ts');
      exit(
        await runNormalize({
          format: o.format,
          ...(file ? { file } : {}),
          ...(o.setKeys ? { setKeysFile: o.setKeys } : {}),
          stdin: process.stdin,
          stdout: process.stdout,
          stderr: process.stderr,
        }),
      );
    });

  const audit = program.command('audit').description('audit the immutable event record');
  audit
    .command('verify')
    .description(
      'verify the hash chain over every recorded event; names the first altered, missing or reordered event',
    )
    .option('--data-dir <dir>', 'data directory of the embedded store', '.tourniquet')
    .action(async (o) => {
      const { runAuditVerify } = await import('./admin.ts');
      exit(await runAuditVerify(resolve(o.dataDir), process.stdout));
    });

  const projections = program.command('projections').description('read models built from the event stream');
  projections
    .command('rebuild')
    .description('drop and rebuild every projection from the event stream')
    .option('--data-dir <dir>', 'data directory of the embedded store', '.tourniquet')
    .action(async (o) => {
      const { runProjectionsRebuild } = await import('./admin.ts');
      exit(await runProjectionsRebuild(resolve(o.dataDir), process.stdout));
    });
}
