#!/usr/bin/env node
/**
 * The sandstack CLI entry point: signal handling, `--version`, and the command line (program.ts).
 * Only the renderer and the version are imported statically: `--version` answers before commander
 * and the command table are loaded, and a command's implementation, the Docker client and the core
 * modules are imported only when that command runs (register.ts).
 */
import { ExitCode } from '../errors.js';
import { Output } from './output.js';
import { sandstackVersion, versionReport, type VersionReport } from '../version.js';

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
    const [{ createDocker }, { sandstackHome }] = await Promise.all([import('../engine/docker.js'), import('../state/paths.js')]);
    const r = await versionReport({ env: process.env, home: sandstackHome(process.env), docker: createDocker(), fresh: true });
    out.result(r, () => versionText(r));
  }
  process.exitCode = ExitCode.ok;
} else {
  const { runProgram } = await import('./program.js');
  await runProgram(process.argv, abort.signal);
}
