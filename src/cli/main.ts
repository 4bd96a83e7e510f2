#!/usr/bin/env node
/** The sandstack CLI entry point: global options, signal handling, the one error boundary. */
import { Command, CommanderError } from 'commander';
import { ExitCode } from '../errors.js';
import type { GlobalOptions } from './context.js';
import { Output } from './output.js';
import { registerCommands } from './register.js';
import { sandstackVersion, type VersionReport } from '../version.js';

// Only what every invocation needs is imported above (commander, the command table, the output
// renderer): a command's implementation, the Docker client and the core modules are imported when
// that command runs (register.ts), so `--version` and `--help` stay fast.

const program = new Command()
  .name('sandstack')
  .description('Isolated, provable, disposable Docker Compose stacks for every git worktree.')
  .version(sandstackVersion(), '-V, --version', 'print the version (with -v/--verbose also Node, Compose and Docker engine versions; --json as JSON)')
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

registerCommands(program, (load) => async (...args: unknown[]) => {
  // Commander passes the command itself last (after the arguments and options).
  const cmd = args[args.length - 1] as Command;
  const globals = program.opts<GlobalOptions>();
  const out = new Output({ json: Boolean(globals.json), verbose: Boolean(globals.verbose) });
  try {
    const [{ contextFrom }, fn] = await Promise.all([import('./context.js'), load()]);
    const code = await fn(contextFrom(globals, abort.signal, out), out, cmd);
    process.exitCode = typeof code === 'number' ? code : ExitCode.ok;
  } catch (e) {
    process.exitCode = out.error(e);
  }
});

/**
 * `--version` among the global options before the command (commander would print the bare version
 * as soon as it sees the flag, before reading -v or --json): the flags that shape its output.
 */
function versionRequest(args: string[]): { verbose: boolean; json: boolean } | undefined {
  let version = false;
  let verbose = false;
  let json = false;
  let beforeCommand = true;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    if (beforeCommand && ['-i', '--instance', '-c', '--config', '-C', '--cwd'].includes(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-')) {
      beforeCommand = false;
      continue;
    }
    // Combined short flags (-vV); a value-taking one (-ifoo) ends them.
    const flags = /^-[a-zA-Z]{2,}$/.test(a) ? [...a.slice(1).split(/[icC]/)[0]!].map((c) => `-${c}`) : [a];
    for (const f of flags) {
      if (beforeCommand && (f === '--version' || f === '-V')) version = true;
      else if (f === '--verbose' || f === '-v') verbose = true;
      else if (f === '--json') json = true;
    }
  }
  return version ? { verbose, json } : undefined;
}

function versionText(r: VersionReport): string {
  return [
    `sandstack ${r.sandstack}`,
    `node      ${r.node} (${r.platform})`,
    `compose   ${r.compose ? `${r.compose.variant} ${r.compose.version} (${r.compose.command.join(' ')})` : 'not found'}`,
    `engine    ${r.engine ? `${r.engine.version} (API ${r.engine.apiVersion})` : 'not reachable'}`,
    ...r.problems.map((p) => `problem:  ${p}`),
  ].join('\n');
}

const wantVersion = versionRequest(process.argv.slice(2));
if (wantVersion) {
  // Plain --version stays the bare version (as commander prints it); -v adds what sandstack runs on.
  const out = new Output({ json: wantVersion.json, verbose: wantVersion.verbose });
  if (!wantVersion.verbose) {
    out.result({ sandstack: sandstackVersion() }, () => sandstackVersion());
  } else {
    const [{ versionReport }, { createDocker }, { sandstackHome }] = await Promise.all([import('../version.js'), import('../engine/docker.js'), import('../state/paths.js')]);
    const r = await versionReport({ env: process.env, home: sandstackHome(process.env), docker: createDocker(), fresh: true });
    out.result(r, () => versionText(r));
  }
  process.exitCode = ExitCode.ok;
} else {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : ExitCode.badInput;
    } else {
      throw e;
    }
  }
}
