import { Command, Option } from 'commander';
import { TourniquetError } from '../../platform/errors.ts';
import { registerCommands } from './commands.ts';

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
  if (err instanceof TourniquetError) {
    process.stderr.write(`tourniquet: ${err.code}: ${err.message}\n`);
    process.exitCode = process.exitCode && process.exitCode !== 0 ? process.exitCode : 1;
  } else {
    throw err;
  }
}
