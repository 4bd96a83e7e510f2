/**
 * Every command's name, arguments, options and help text, registered statically and cheaply; each
 * action's implementation (src/cli/commands/<group>.ts, with the core modules it uses) is imported
 * only when that command runs, so `--help`, `--version` and `ls` load nothing they do not use.
 */
import type { Command } from 'commander';
import type { Context } from '../lifecycle/context.js';
import { RULES } from '../policy/rules.js';
import type { Output } from './output.js';

/** A command's implementation: parses its options, calls one core function, renders the result. */
export type Action = (ctx: Context, out: Output, cmd: Command) => Promise<number | void>;

/**
 * Wraps an action for commander: `load` imports the command's module when the command runs; the
 * runner builds the context and output, runs it, and turns the result or error into an exit code.
 */
export type Runner = (load: () => Promise<Action>) => (...args: unknown[]) => Promise<void>;

export function registerCommands(program: Command, run: Runner): void {
  program
    .command('init')
    .description('write a starting sandstack.yaml for the Compose project in this folder')
    .option('-f, --file <file>', 'a compose file of the project (repeat for several, merged in order); recorded as compose.files', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--force', 'overwrite an existing sandstack.yaml (its compose.files and profiles are kept)')
    .addHelpText(
      'after',
      '\nThe compose files are, in order: -f, compose.files of the sandstack.yaml being replaced (--force),\n' +
        "COMPOSE_FILE (environment or the project's .env, separated by : or COMPOSE_PATH_SEPARATOR),\n" +
        "Compose's default discovery (compose.yaml, docker-compose.yml, ... plus its .override file).\n" +
        "compose.files is written unless the files are the default discovery. Relative paths inside the\n" +
        "files resolve from the first file's folder, as with `docker compose -f`.\n" +
        '\nExamples:\n  cd my-compose-project && sandstack init\n  sandstack init -f docker-compose.sandbox.yml\n  sandstack init -f deploy/environments/dev/docker-compose.dev.yml',
    )
    .action(run(async () => (await import('./commands/workspace.js')).init));

  program
    .command('lint [files...]')
    .description('check compose files against the guardrails, as written (file:line:column) and as merged by Compose')
    .option('--fix', 'rewrite the files in place: remove container_name, bind fixed host ports to 127.0.0.1 with a variable (comments and formatting kept)')
    .option('--format <format>', 'text, json or sarif (SARIF 2.1.0, for code scanning)', 'text')
    .addHelpText(
      'after',
      `\nFiles given are linted as given, together (Compose's project directory is the first file's folder);\nwithout files, the project's: compose.files, COMPOSE_FILE, or Compose's default discovery.\nText and JSON paths are relative to the current directory; SARIF URIs are relative to the repository\nroot (%SRCROOT%). Exits 1 when error-level findings remain.\n\nRules:\n${RULES.map((r) => `  ${r.id} ${r.name.padEnd(22)} ${r.severity.padEnd(7)} ${r.description}`).join('\n')}\n\nExamples:\n  sandstack lint\n  sandstack lint docker-compose.sandbox.yml\n  sandstack lint --fix\n  sandstack lint --format sarif > sandstack.sarif`,
    )
    .action(run(async () => (await import('./commands/workspace.js')).lint));

  program
    .command('new <branch>')
    .description('create a git worktree <repo>--<branch-slug> beside the repository on a new branch, registered as an instance')
    .option('--base <ref>', 'start the branch from this ref', 'HEAD')
    .addHelpText('after', '\nExample:\n  sandstack new feat/operation-metrics && cd ../myrepo--feat-operation-metrics && sandstack up')
    .action(run(async () => (await import('./commands/workspace.js')).newInstance));

  program
    .command('up')
    .description('render the isolated model, build, start, wait until every service is healthy, then run the gate (probes, isolation)')
    .option('--no-build', 'do not build images first')
    .option('--no-gate', 'skip the gate checks after health (probes, isolation)')
    .option('--ttl <duration>', 'remove the instance after this long without use (e.g. 2h; overrides instance.ttl)')
    .option('--from <snapshot>', "seed the new instance's volumes (and data root) from a snapshot before anything starts (see `sandstack snapshot`)")
    .addHelpText('after', '\nExamples:\n  sandstack up --json | jq .services\n  sandstack up --from with-prices')
    .action(run(async () => (await import('./commands/instance.js')).up));

  program
    .command('gate')
    .description('the Startability Gate: check the running instance, or with --fresh build, start, probe and tear down a throwaway one')
    .option('--fresh', 'run every stage on a brand-new throwaway instance and tear it down, whatever the outcome')
    .option('--no-build', 'with --fresh: do not build images first')
    .option('--from <snapshot>', "with --fresh: seed the throwaway instance's volumes from a snapshot")
    .addHelpText(
      'after',
      '\nStages: config, build, start, healthy, probes, isolation, observability, teardown (--fresh).\n' +
        'Docker events are watched from start to the verdict: a container that exits (0 too, if it must stay up),\n' +
        'is OOM-killed, restarts or turns unhealthy fails the stage running at that moment (failure.detectedAfterMs).\n' +
        'healthy: healthchecks pass and every long-running service ran gate.stableSeconds (default 3) without a restart;\n' +
        'one-shot jobs exit 0. probes: every published port answers on 127.0.0.1 (HTTP for http/https), gate.probes pass.\n' +
        'The report is saved under <state home>/reports/<instance>/.\n\nExamples:\n  sandstack gate\n  sandstack gate --fresh --json > gate-report.json')
    .action(run(async () => (await import('./commands/gate.js')).gate));

  program
    .command('test')
    .description('run the unit test commands and the E2E services declared in sandstack.yaml, inside the running instance')
    .addHelpText('after', '\nResults go to <evidence root>/<instance>/<run-id>/ (tests.json, logs, JUnit XML).\n\nExample:\n  sandstack test --json | jq .totals')
    .action(run(async () => (await import('./commands/tests.js')).test));

  program
    .command('evidence')
    .description('write the evidence bundle of the latest run: manifest, gate report, tests, logs, services, rendered model, images, ports, summary.md, report.html')
    .option('--run <dir>', 'the run directory to complete (default: the latest run of this instance)')
    .addHelpText('after', '\nNo secret value is written: values of secret-like variables are replaced by [REDACTED:<NAME>].\n\nExample:\n  sandstack test && sandstack evidence && cat "$(sandstack evidence --json | jq -r .summary)"')
    .action(run(async () => (await import('./commands/tests.js')).evidence));

  program
    .command('verify')
    .description('the whole pre-PR loop on a fresh throwaway instance: gate, tests, evidence, teardown; prints the path of summary.md last')
    .option('--no-build', 'do not build images first')
    .addHelpText('after', '\nExit code 0 only if the gate and every test passed and teardown left nothing.\n\nExample:\n  sandstack verify && gh pr create --body-file "$(sandstack verify --json | jq -r .evidence.summary)"')
    .action(run(async () => (await import('./commands/tests.js')).verify));

  program
    .command('escalate')
    .description('write an escalation packet (Markdown and JSON) with the latest evidence attached')
    .option('--title <text>', 'a short title')
    .option('--blocked <text>', 'what is unclear or blocked')
    .option('--why <text>', 'why it matters')
    .option('--option <text>', 'an option considered (repeat for each)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--recommend <text>', 'the recommended path')
    .option('--need <text>', 'the decision or input needed')
    .option('--evidence <text>', 'evidence gathered so far (repeat for each)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--file <path>', 'read the fields from a YAML or JSON file (blocked, whyItMatters, options, recommended, decisionNeeded, evidence, title); flags override it')
    .addHelpText('after', '\nExample:\n  sandstack escalate --blocked "Startability Gate fails: db needs a host dataset" --why "E2E cannot run" \\\n    --option "mount /mnt/data read-only" --option "generate a small fixture" --recommend "fixture" --need "approve dropping the mount"')
    .action(run(async () => (await import('./commands/tests.js')).escalate));

  const snapshotCmd = program
    .command('snapshot')
    .description("capture an instance's volumes (and data root) and seed new instances from them (`up --from`)")
    .addHelpText('after', '\nExamples:\n  sandstack snapshot save with-prices\n  sandstack snapshot ls --json\n  sandstack up --from with-prices\n  sandstack snapshot rm with-prices');
  snapshotCmd
    .command('save <name>')
    .description('capture the named volumes and the data root of this instance: runs snapshot.before first, stops the services writing to them for the copy and starts them again')
    .option('--force', 'replace a snapshot of that name')
    .addHelpText('after', '\nExample:\n  sandstack snapshot save with-prices --json')
    .action(run(async () => (await import('./commands/snapshot.js')).save));
  snapshotCmd
    .command('ls', { isDefault: true })
    .description('list the snapshots of this state home')
    .addHelpText('after', '\nExample:\n  sandstack snapshot ls --json')
    .action(run(async () => (await import('./commands/snapshot.js')).list));
  snapshotCmd
    .command('rm <name>')
    .description('remove a snapshot (its archives, manifest and stored secrets)')
    .addHelpText('after', '\nExample:\n  sandstack snapshot rm with-prices')
    .action(run(async () => (await import('./commands/snapshot.js')).remove));

  const secretsCmd = program.command('secrets').description("list the instance's generated secrets (names and files, never values), or rotate them");
  secretsCmd
    .command('ls', { isDefault: true })
    .description('list the declared secrets and where their 0600 files are')
    .action(run(async () => (await import('./commands/workspace.js')).secretsList));
  secretsCmd
    .command('rotate [names...]')
    .description('replace the values of the named secrets (default: all); takes effect on the next up')
    .addHelpText('after', '\nExample:\n  sandstack secrets rotate DB_PASSWORD && sandstack down && sandstack up')
    .action(run(async () => (await import('./commands/workspace.js')).secretsRotate));

  program
    .command('status')
    .description("show the instance's services, health and URLs")
    .addHelpText('after', '\nExample:\n  sandstack status --json')
    .action(run(async () => (await import('./commands/instance.js')).status));

  program
    .command('ls')
    .description('list every instance on this machine')
    .addHelpText('after', '\nExample:\n  sandstack ls --json')
    .action(run(async () => (await import('./commands/ls.js')).ls));

  program
    .command('engines')
    .description('list the Docker engines this state home may use: reachable or not, versions, instances, capacity, free memory, pool')
    .addHelpText(
      'after',
      '\nEngines come from the user config (engines:, pool:) and from the registry (engines instances run on).\n' +
        'A remote engine is reached over SSH with the system ssh (your ~/.ssh/config, keys and agent apply);\n' +
        'an unreachable engine is listed with the reason, and the command still exits 0.\n' +
        '\nExamples:\n  sandstack engines\n  sandstack engines --json | jq \'.engines[] | select(.reachable) | .name\'\n  sandstack --engine build-1 up',
    )
    .action(run(async () => (await import('./commands/engines.js')).engines));

  program
    .command('df')
    .description("disk used by this state home's instances: containers, volumes, images, state folders; the engine's build cache; the disk budget")
    .addHelpText(
      'after',
      '\nOnly resources carrying sandstack\'s labels for this state home are counted. IMAGES is the disk the images\n' +
        'hold: their unique sizes plus the layers they share (such as the base image) once; --json also gives the\n' +
        'sizes `docker image ls` shows. The build cache is the whole engine\'s: BuildKit records carry no labels,\n' +
        'so it is shown apart and not in the total.\n' +
        'With budget.disk in the user config (~/.config/sandstack/config.yaml), the budget line compares the total\n' +
        'with it, and `up` warns when it is exceeded. -i/--instance shows one instance (the total stays home-wide).\n\n' +
        'Examples:\n  sandstack df\n  sandstack df --json | jq \'.instances[] | {id, total}\'',
    )
    .action(run(async () => (await import('./commands/df.js')).df));

  program
    .command('ports')
    .description("show the instance's leased host ports")
    .addHelpText('after', '\nExample:\n  sandstack ports --json')
    .action(run(async () => (await import('./commands/workspace.js')).ports));

  program
    .command('render')
    .description('print the isolated Compose model sandstack runs for this instance')
    .addHelpText('after', '\nExample:\n  sandstack render > /tmp/isolated.yaml')
    .action(run(async () => (await import('./commands/instance.js')).render));

  program
    .command('logs [service]')
    .description("show the logs of the instance's services (or one service)")
    .option('-f, --follow', 'keep streaming new lines')
    .option('--tail <n>', 'only the last n lines of each service', (v) => Number.parseInt(v, 10))
    .addHelpText('after', '\nExample:\n  sandstack logs backend --tail 50')
    .action(run(async () => (await import('./commands/workspace.js')).logs));

  program
    .command('shell [service] [command...]')
    .description('open bash (or sh) in a running service container, or run a command given after --')
    .addHelpText('after', '\nExamples:\n  sandstack shell backend\n  sandstack shell db -- psql -U ktrdr -c "select 1"')
    .action(run(async () => (await import('./commands/workspace.js')).shell));

  program
    .command('mcp')
    .description("run sandstack's MCP server over stdio for a coding agent, bound to this worktree's instance")
    .option('--all-instances', 'accept any instance id (a supervising agent); adds the ls tool')
    .option('--allow-new', 'offer the new tool (a sibling worktree for a sub-task)')
    .option('--print-config <client>', 'print the snippet that registers this server with an MCP client (generic, claude, cursor, vscode) and exit')
    .addHelpText(
      'after',
      '\nTools (each calls the core function of the CLI command of the same name; results carry structuredContent\n' +
        'in the --json shape): status, up, down, destroy, gate, test, verify, evidence, logs, exec, ports, lint,\n' +
        'escalate, and new (--allow-new) or ls (--all-instances). Every tool acts on the bound instance only;\n' +
        'destroy of a local instance needs confirm: true. Long tools send progress notifications and honour\n' +
        'cancellation (a cancelled gate with fresh: true or verify tears its throwaway instance down).\n\n' +
        'Examples:\n  sandstack mcp --print-config generic   # an mcpServers entry (e.g. for .cursor/mcp.json)\n  sandstack mcp --print-config claude    # the `claude mcp add` command to run in the worktree',
    )
    .action(run(async () => (await import('./commands/mcp.js')).mcp));

  program
    .command('agent-guide')
    .description('print a short Markdown working agreement for coding agents (for AGENTS.md)')
    .addHelpText('after', '\nExample:\n  sandstack agent-guide >> AGENTS.md')
    .action(run(async () => (await import('./commands/mcp.js')).agentGuide));

  const obs = program
    .command('obs')
    .description('the shared observability stack (Prometheus, Grafana, Jaeger) every instance with observability.enabled reports to')
    .addHelpText(
      'after',
      '\nEach engine has its own stack: instances on a remote engine report to the stack on that engine\n' +
        '(`--engine <name>`); its URLs are local ports forwarded to the engine, and images the engine lacks\n' +
        "are copied from this machine's engine.\n" +
        '\nExamples:\n  sandstack obs up\n  sandstack obs status --show-password\n  sandstack obs down --volumes\n  sandstack --engine build-1 obs up',
    );
  obs
    .command('up')
    .description('build, pull and start the shared stack (what is available), then join every instance telemetry network')
    .option('--build', 'rebuild the Prometheus image')
    .option('--no-pull', 'do not try to pull missing Grafana/Jaeger images')
    .addHelpText('after', '\nExample:\n  sandstack obs up --json')
    .action(run(async () => (await import('./commands/obs.js')).up));
  obs
    .command('status', { isDefault: true })
    .description('show the shared stack: components, URLs, Grafana login, instances it serves')
    .option('--show-password', "print Grafana's admin password")
    .addHelpText('after', '\nExample:\n  sandstack obs status --json')
    .action(run(async () => (await import('./commands/obs.js')).status));
  obs
    .command('down')
    .description('stop and remove the shared stack; its volumes (metrics, Grafana) are kept unless --volumes')
    .option('--volumes', 'also remove its volumes and the Grafana admin password')
    .addHelpText('after', '\nExample:\n  sandstack obs down')
    .action(run(async () => (await import('./commands/obs.js')).down));

  program
    .command('down')
    .description('stop and remove the containers gracefully; keep volumes, data and ports')
    .addHelpText('after', '\nExample:\n  sandstack down && sandstack up   # same data, same ports')
    .action(run(async () => (await import('./commands/instance.js')).down));

  program
    .command('sync')
    .description("bring a running instance's files on its remote engine up to date (worktree, new data-root files, secrets, data.shared) and reopen its port forwards")
    .addHelpText(
      'after',
      '\nOn a remote engine, up syncs the worktree once; after editing files that the stack bind-mounts,\n' +
        'sync copies the changes (incrementally, .gitignore respected, .git left out). It also reopens the\n' +
        'port forwards, e.g. after the SSH connection dropped. On the local engine there is nothing to do.\n' +
        '\nExample:\n  sandstack sync && sandstack logs backend --tail 20',
    )
    .action(run(async () => (await import('./commands/sync.js')).sync));

  program
    .command('gc')
    .description('remove what sandstack left behind in this state home: orphaned throwaway instances, stale records and leases, targets, images of gone instances')
    .option('--dry-run', 'list what would be removed and why; remove nothing')
    .option('--worktree-gone', 'also remove instances whose worktree folder no longer exists (sandbox ones; a local one only when named with --instance)')
    .option('--evidence-older-than <duration>', 'remove evidence folders of instances that no longer exist when older than this (e.g. 7d, 12h)')
    .option('--images', 'also remove untagged images of this state home that no container uses (left by rebuilds; layers of the classic builder)')
    .addHelpText(
      'after',
      '\nOnly resources carrying sandstack\'s labels for this state home are looked at. An orphan is a throwaway\n' +
        'instance (gate --fresh, verify, or one created with --ttl whose start never finished) whose owner process\n' +
        'is gone (pid, start time and boot id no longer match).\n' +
        'Interactive (local) instances are never removed unless named with --instance.\n\nExamples:\n  sandstack gc --dry-run\n  sandstack gc --worktree-gone --evidence-older-than 14d --images --json',
    )
    .action(run(async () => (await import('./commands/gc.js')).gc));

  program
    .command('destroy')
    .description('remove containers, volumes, networks, data and state; release ports; verify nothing labelled remains')
    .option('--keep-worktree', 'keep the git worktree created by `sandstack new`')
    .option('--keep-images', 'keep the images built for this instance (removed by default; build cache layers are always kept)')
    .addHelpText('after', '\nExample:\n  sandstack destroy --keep-worktree --json')
    .action(run(async () => (await import('./commands/instance.js')).destroy));
}

