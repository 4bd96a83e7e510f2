/**
 * The command line: global options, the root help, every command (register.ts) and the runner that
 * imports a command's implementation when it runs, builds its context and picks the exit code.
 */
import { Command, CommanderError } from 'commander';
import { ExitCode } from '../errors.js';
import type { GlobalOptions } from './context.js';
import { Output } from './output.js';
import { registerCommands } from './register.js';
import { sandstackVersion } from '../version.js';

/** Parses `argv` and runs the command it names; sets process.exitCode. */
export async function runProgram(argv: string[], signal: AbortSignal): Promise<void> {
  const program = new Command()
    .name('sandstack')
    .description('Isolated, provable, disposable Docker Compose stacks for every git worktree.')
    .version(sandstackVersion(), '-V, --version', 'print the version (with -v/--verbose also Node, Compose and Docker engine versions; --json as JSON)')
    .option('--json', 'print one JSON document on stdout (progress stays on stderr)')
    .option('-v, --verbose', 'show Compose output while it runs')
    .option('-i, --instance <id>', 'instance id (default: from the worktree folder; env SANDSTACK_INSTANCE)')
    .option('-c, --config <file>', 'path of sandstack.yaml (default: found from the current folder upwards)')
    .option('-C, --cwd <dir>', 'run as if started in <dir>')
    .option('-e, --engine <engine>', 'Docker engine a new instance runs on: local, a name from the user config, ssh://[user@]host[:port] or a Docker context (env SANDSTACK_ENGINE; default: engine: in sandstack.yaml, else the pool, else local)')
    .showHelpAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      `
Exit codes:
  0    success
  1    the operation failed (a service crashed or never became healthy, teardown incomplete, port busy)
  2    bad input (invalid sandstack.yaml or compose file, unknown instance, id clash, already running)
  3    environment problem (Docker engine or Compose missing or not answering, remote engine unreachable)
  130  interrupted (Ctrl-C); what the command had started was rolled back`,
    );

  registerCommands(program, (load) => async (...args: unknown[]) => {
    // Commander passes the command itself last (after the arguments and options).
    const cmd = args[args.length - 1] as Command;
    const globals = program.opts<GlobalOptions>();
    const out = new Output({ json: Boolean(globals.json), verbose: Boolean(globals.verbose) });
    try {
      const [{ contextFrom }, fn] = await Promise.all([import('./context.js'), load()]);
      const code = await fn(contextFrom(globals, signal, out), out, cmd);
      process.exitCode = typeof code === 'number' ? code : ExitCode.ok;
    } catch (e) {
      process.exitCode = out.error(e);
    }
  });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : ExitCode.badInput;
    } else {
      throw e;
    }
  }
}
