import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createLogger } from '../../platform/log.ts';
import { runPolicyExplain, runPolicyValidate } from '../../services/decider/policy/cli.ts';
import { registerAuthCommands } from './auth.ts';

type Globals = { logLevel: string };
const collect = (v: string, prev: string[]) => [...prev, v];
const anchorOptions = (o: { anchor?: string[]; anchorStore?: string }) => ({
  anchor: o.anchor ?? [],
  ...(o.anchorStore ? { anchorStore: o.anchorStore } : {}),
});
const globals = (cmd: Command): Globals => cmd.optsWithGlobals() as Globals;

function exit(code: number): void {
  process.exitCode = code;
}

/** Every subcommand, each implemented in the folder of the service it belongs to. */
export function registerCommands(program: Command): void {
  registerAuthCommands(program);
  program
    .command('start')
    .description('run the embedded stack (in-process bus, SQLite store, all four services) until interrupted')
    .option('--data-dir <dir>', 'where the event store and projections live', '.tourniquet')
    .option('--port <port>', 'HTTP port', (v) => Number.parseInt(v, 10), 7420)
    .option('--host <host>', 'HTTP host', '127.0.0.1')
    .option('--policy <file>', 'policy YAML (default: policies/default.yaml)')
    .option('--catalogue <file>', 'identity catalogue YAML/JSON')
    .option(
      '--providers <file>',
      'provider configuration YAML (Keycloak, webhook, dry-run); default: dry-run for all',
    )
    .option('--tick <ms>', 'approval expiry check interval', (v) => Number.parseInt(v, 10), 5000)
    .option(
      '--anchor <witness>',
      'publish the chain head to this witness: file:<path>, http(s)://…, kafka:<topic>',
    )
    .option('--anchor-interval <ms>', 'how often the head is anchored', (v) => Number.parseInt(v, 10))
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
    .description(
      'run one service alone (ingest | decider | executor | projector) against Kafka and an event store',
    )
    .option('--config <file>', 'YAML configuration (environment variables override it; see docs/kafka.md)')
    .action(async (service: string, o) => {
      const { main } = await import('../serve.ts');
      await main([service, ...(o.config ? ['--config', o.config] : [])]);
    });

  const policy = program.command('policy').description('policy as code: validate and explain');
  policy
    .command('validate <file>')
    .description(
      'validate a policy file; exit non-zero naming every bad path (with --providers, also every rule a provider cannot perform or would run irreversibly without irreversible: accept)',
    )
    .option('--providers <file>', 'providers file (YAML) whose capabilities the policy must fit')
    .action(async (file: string, o: { providers?: string }) => {
      let providers: Parameters<typeof runPolicyValidate>[3];
      if (o.providers) {
        const { capabilitiesOf, loadProvidersConfig } = await import('../providers-config.ts');
        try {
          providers = { source: o.providers, capabilities: capabilitiesOf(loadProvidersConfig(o.providers)) };
        } catch (e) {
          process.stderr.write(`${(e as Error).message}\n`);
          exit(1);
          return;
        }
      }
      exit(runPolicyValidate(file, process.stdout, process.stderr, providers));
    });
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

  const io = { stdout: process.stdout, stderr: process.stderr };

  program
    .command('replay')
    .description('replay history through the same decider in virtual time, with no side effects')
    .requiredOption('--history <file>', 'NDJSON history (detection, identity, approval, verdict lines)')
    .requiredOption('--policy <file>', 'the policy to replay')
    .option('--baseline <file>', 'a baseline policy to diff against')
    .option('--out <dir>', 'write report.json and report.html here')
    .option('--json', 'print one JSON document')
    .option('--skip-invalid', 'skip invalid history lines (counted) instead of stopping')
    .option('--approval-latency <duration>', 'assumed human approval latency, e.g. 15m')
    .option('--approval-rate <rate>', 'assumed share of approvals granted, 0..1')
    .option('--execution-latency <duration>', 'simulated provider latency, e.g. 2s')
    .option('--providers <file>', 'providers file: proposals carry what its providers can undo')
    .action(async (o) => {
      const { runReplayCli } = await import('../../simulations/cli.ts');
      const { capabilitiesOf, loadProvidersConfig } = await import('../providers-config.ts');
      const { providers, ...rest } = o as { providers?: string } & Record<string, unknown>;
      let capabilities: ReturnType<typeof capabilitiesOf> | undefined;
      try {
        capabilities = providers ? capabilitiesOf(loadProvidersConfig(providers)) : undefined;
      } catch (e) {
        process.stderr.write(`${(e as Error).message}\n`);
        exit(1);
        return;
      }
      exit(
        await runReplayCli({
          ...(rest as unknown as Parameters<typeof runReplayCli>[0]),
          ...(capabilities ? { capabilities } : {}),
          ...io,
        }),
      );
    });

  program
    .command('tune')
    .description(
      'sweep policy parameters over history on worker threads; Pareto frontier and a recommended policy',
    )
    .requiredOption('--history <file>', 'NDJSON history')
    .requiredOption('--policy <file>', 'the policy to vary')
    .requiredOption('--sweep <spec>', 'PATH=FROM..TO:STEP, repeatable', collect, [])
    .option('--objective <objective>', 'f1 | recall-at-precision:0.99 | cost', 'f1')
    .option('--workers <n>', 'worker threads (0: in-process)')
    .option('--out <dir>', 'write the recommended policy, tune.json and report.html here')
    .option('--json', 'print one JSON document')
    .option('--skip-invalid', 'skip invalid history lines')
    .option('--approval-latency <duration>', 'assumed human approval latency')
    .option('--approval-rate <rate>', 'assumed share of approvals granted')
    .action(async (o) => {
      const { runTuneCli } = await import('../../simulations/cli.ts');
      exit(await runTuneCli({ ...o, ...io }));
    });

  program
    .command('simulate')
    .description('generate a scenario history with ground-truth verdicts')
    .requiredOption(
      '--scenario <name>',
      'token-theft | leaked-ci-secret | credential-stuffing | shared-service-account | oauth-app-abuse | benign-noise | mixed | storm',
    )
    .option('--seed <n>', 'random seed', '1')
    .option('--identities <n>', 'identities', '1000')
    .option('--days <n>', 'days of history', '30')
    .requiredOption('--out <file>', 'NDJSON file to write')
    .option('--start <time>', 'history start (RFC 3339)')
    .option('--noise <n>', 'benign noise detections per identity-day')
    .action(async (o) => {
      const { runSimulateCli } = await import('../../simulations/cli.ts');
      exit(await runSimulateCli({ ...o, ...io }));
    });

  const history = program.command('history').description('history for replay and tuning');
  history
    .command('export')
    .description('write the replay history format (NDJSON) from an event store')
    .option('--data-dir <dir>', 'data directory of the embedded store', '.tourniquet')
    .option('--store <file>', 'path of a SQLite event store file (overrides --data-dir)')
    .requiredOption('--out <file>', 'NDJSON file to write')
    .action(async (o) => {
      const { runHistoryExportCli } = await import('../../simulations/cli.ts');
      exit(
        await runHistoryExportCli({
          ...(o.store ? { storePath: resolve(o.store) } : { dataDir: resolve(o.dataDir) }),
          out: o.out,
          ...io,
        }),
      );
    });

  const audit = program.command('audit').description('audit the immutable event record');
  audit
    .command('verify')
    .description(
      'verify the hash chain over every recorded event; names every altered, missing or reordered event, and with --anchor every truncation or re-chaining',
    )
    .option('--data-dir <dir>', 'data directory of the embedded store', '.tourniquet')
    .option(
      '--anchor <witness>',
      'also check the stream against the heads a witness holds: file:<path>, http(s)://…, kafka:<topic> (repeatable)',
      collect,
      [],
    )
    .option('--anchor-store <id>', "the store's id in the witness (default: tourniquet)")
    .action(async (o) => {
      const { runAuditVerify } = await import('./admin.ts');
      exit(await runAuditVerify(resolve(o.dataDir), process.stdout, anchorOptions(o)));
    });

  const dlq = program.command('dlq').description('the Kafka dead-letter topic');
  dlq
    .command('redrive')
    .description(
      'send dead letters back to the topic they came from (after fixing the cause); prints a JSON report',
    )
    .option('--config <file>', 'serve configuration YAML for brokers and topics (environment overrides it)')
    .option('--topic <topic>', 'the dead-letter topic (default: topics.deadLetters)')
    .option('--reason <code>', 'only letters with this x-dlq-reason (repeatable)', collect, [])
    .option('--source-topic <topic>', 'only letters from this source topic (repeatable)', collect, [])
    .option('--since <time>', 'only letters dead-lettered at or after this ISO 8601 time')
    .option('--dry-run', 'count what would go back, send nothing')
    .action(async (o) => {
      const { runDlqRedrive } = await import('./dlq.ts');
      exit(await runDlqRedrive(o, process.stdout));
    });

  const signals = program.command('signals').description('Shared Signals out: CAEP/RISC SETs to receivers');
  signals
    .command('jwks')
    .description('print the public JWKS that verifies the SETs (to hand to receivers)')
    .option('--key <file>', 'the private JWK the transmitter signs with')
    .option('--providers <file>', 'providers file whose signals.signingKeyFile names the key')
    .option('--data-dir <dir>', 'where a generated key lives (ssf-signing-key.json)', '.tourniquet')
    .action(async (o) => {
      const { runSignalsJwks } = await import('./signals.ts');
      exit(await runSignalsJwks(o, process.stdout));
    });

  signals
    .command('redeliver')
    .description(
      'send again the SETs receivers refused (signals-dead-letters.jsonl), once their side is fixed; exit 2 if any is still not delivered',
    )
    .requiredOption('--providers <file>', 'providers file with the signals block (receivers as they are now)')
    .option('--data-dir <dir>', 'data directory holding signals-dead-letters.jsonl', '.tourniquet')
    .option('--receiver <name>', 'only letters for this receiver (repeatable)', collect, [])
    .option('--file <file>', 'a moved-aside file a stopped run left (…jsonl.redelivering-*)')
    .option('--dry-run', 'count what would be sent, send nothing')
    .action(async (o) => {
      const { runSignalsRedeliver } = await import('./signals.ts');
      exit(await runSignalsRedeliver(o, process.stdout));
    });

  const projections = program.command('projections').description('read models built from the event stream');
  projections
    .command('rebuild')
    .description(
      'verify the hash chain, then drop and rebuild every projection from the event stream (a tampered store is refused unless --force)',
    )
    .option('--data-dir <dir>', 'data directory of the embedded store', '.tourniquet')
    .option('--anchor <witness>', 'also verify against this witness (repeatable)', collect, [])
    .option('--anchor-store <id>', "the store's id in the witness (default: tourniquet)")
    .option('--force', 'rebuild even when the chain does not verify')
    .action(async (o) => {
      const { runProjectionsRebuild } = await import('./admin.ts');
      exit(
        await runProjectionsRebuild(resolve(o.dataDir), process.stdout, {
          ...anchorOptions(o),
          force: Boolean(o.force),
          err: process.stderr,
        }),
      );
    });
}
