#!/usr/bin/env node
/** The sandstack CLI entry point: global options, signal handling, the one error boundary. */
import { Command, CommanderError } from 'commander';
import { ExitCode } from '../errors.js';
import { contextFrom, registerCommands, type GlobalOptions } from './commands.js';
import { Output } from './output.js';
import { sandstackVersion } from '../version.js';


const program = new Command()
  .name('sandstack')
  .description('Isolated, provable, disposable Docker Compose stacks for every git worktree.')
  .version(sandstackVersion())
  .option('--json', 'print one JSON document on stdout (progress stays on stderr)')
  .option('-v, --verbose', 'show Compose output while it runs')
  .option('-i, --instance <id>', 'instance id (default: from the worktree folder; env SANDSTACK_INSTANCE)')
  .option('-c, --config <file>', 'path of sandstack.yaml (default: found from the current folder upwards)')
  .option('-C, --cwd <dir>', 'run as if started in <dir>')
  .showHelpAfterError()
  .exitOverride()
  .addHelpText(
    'after',
    `
Exit codes:
  0    success
  1    the operation failed (a service crashed or never became healthy, teardown incomplete, port busy)
  2    bad input (invalid sandstack.yaml or compose file, unknown instance, id clash, already running)
  3    environment problem (Docker engine or Compose missing or not answering)
  130  interrupted (Ctrl-C); what the command had started was rolled back`,
  );

const abort = new AbortController();
let interrupts = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    interrupts++;
    if (interrupts === 1) {
      process.stderr.write(`\nsandstack: ${sig} received, stopping and rolling back (press Ctrl-C again to quit at once)\n`);
      abort.abort();
    } else {
      process.exit(ExitCode.interrupted);
    }
  });
}

registerCommands(program, (fn) => async (...args: unknown[]) => {
  // Commander passes the command itself last (after the arguments and options).
  const cmd = args[args.length - 1] as Command;
  const globals = program.opts<GlobalOptions>();
  const out = new Output({ json: Boolean(globals.json), verbose: Boolean(globals.verbose) });
  try {
    const code = await fn(contextFrom(globals, abort.signal, out), out, cmd);
    process.exitCode = typeof code === 'number' ? code : ExitCode.ok;
  } catch (e) {
    process.exitCode = out.error(e);
  }
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : ExitCode.badInput;
  } else {
    throw e;
  }
}
