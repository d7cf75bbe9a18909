import { Command, Option } from 'commander';
import { registerCommands } from './commands.ts';
import { fatalLine } from './fatal.ts';

const program = new Command()
  .name('tourniquet')
  .description('Automated identity response for SOCs: bounded, idempotent, reversible containment.')
  .version('0.1.0')
  .showHelpAfterError()
  .addOption(
    new Option('--log-level <level>', 'log level')
      .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('warn'),
  );

registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  const line = fatalLine(err);
  if (line === undefined) throw err;
  process.stderr.write(`${line}\n`);
  process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
}
