/**
 * Command definitions: each parses its options, calls one core function and renders the result.
 * Kept together because each is a few lines of wiring; the logic lives in src/lifecycle/.
 */
import type { Command } from 'commander';
import { ExitCode } from '../errors.js';
import { createContext, type Context } from '../lifecycle/context.js';
import { destroy, down, renderInstance, status, up, type DestroyResult, type StatusData, type StatusResult, type UpResult } from '../lifecycle/operations.js';
import { listInstances, runtimeVersions, type RuntimeVersions } from '../lifecycle/status.js';
import type { ServiceStatus } from '../lifecycle/status.js';
import { init, lint, logs, newWorktree, ports, secrets, shell } from '../lifecycle/workspace.js';
import { RULES } from '../policy/rules.js';
import { toSarif } from '../policy/sarif.js';
import { lintTextLines } from '../policy/check.js';
import { SandstackError } from '../errors.js';
import { sandstackVersion } from '../version.js';
import { gateCheck, gateFresh } from '../gate/run.js';
import { gc, type GcResult } from '../lifecycle/gc.js';
import { listSnapshots, removeSnapshot, saveSnapshot } from '../data/snapshot.js';
import { assertDockerAvailable } from '../engine/docker.js';
import { budgetStatus, diskUsage, type BudgetCheck, type DfResult } from '../lifecycle/df.js';
import { formatSize, loadUserConfig } from '../config/user.js';
import ms from 'ms';
import { runTests } from '../testing/runner.js';
import { writeEvidence } from '../evidence/bundle.js';
import { escalate, readEscalationFile } from '../evidence/escalate.js';
import { verify } from '../verify/verify.js';
import { resolveInstance } from '../lifecycle/instance.js';
import path from 'node:path';
import type { TestRunResult } from '../testing/model.js';
import { gateText, Output, table } from './output.js';
import { obsDown, obsStatus, obsUp, type ObsStatus } from '../observability/stack.js';
import type { InstanceObservability } from '../observability/wiring.js';

export interface GlobalOptions {
  json?: boolean;
  verbose?: boolean;
  instance?: string;
  config?: string;
  cwd?: string;
}

/** Wraps an action: builds the context and output, runs it, turns the result or error into an exit code. */
export type Runner = (fn: (ctx: Context, out: Output, cmd: Command) => Promise<number | void>) => (...args: unknown[]) => Promise<void>;

function serviceTable(services: ServiceStatus[]): string {
  return table(
    ['SERVICE', 'STATE', 'HEALTH', 'PORTS'],
    services.map((s) => [
      s.name,
      s.state + (s.exitCode !== null && s.state !== 'not created' ? ` (${s.exitCode})` : ''),
      s.health ?? '-',
      s.ports.map((p) => `${p.url ?? `${p.hostIp}:${p.host}`} -> ${p.container}/${p.protocol}`).join(', ') || '-',
    ]),
  );
}

function testsText(r: TestRunResult): string {
  const rows = r.suites.map((s) => [s.kind, s.name, s.where, s.passed ? 'passed' : 'FAILED', s.junit ? `${s.junit.passed}/${s.junit.tests}` : `exit ${s.exitCode}`, `${(s.durationMs / 1000).toFixed(1)}s`]);
  const failures = r.suites.flatMap((s) => (s.junit?.failures ?? []).map((f) => `  ${s.name} › ${f.suite} › ${f.name}: ${f.message.split('\n')[0]}`));
  const t = r.totals;
  return [
    `tests ${r.passed ? 'PASSED' : 'FAILED'}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped in ${t.suites} suite(s)`,
    table(['KIND', 'SUITE', 'WHERE', 'RESULT', 'TESTS', 'TIME'], rows),
    ...(failures.length ? ['failures:', ...failures] : []),
    `artifacts: ${r.dir}`,
  ].join('\n');
}

function observabilityText(o: InstanceObservability): string[] {
  if (!o.enabled) return [];
  const lines = ['', `observability: shared stack ${o.sharedStack} ${o.stack}; ${o.targets.length} scrape target(s)`];
  if (o.links) lines.push(`  dashboard ${o.links.dashboard}`, `  traces    ${o.links.traces}`, `  metrics   ${o.links.metrics}`);
  else lines.push('  no links yet: start the shared stack with `sandstack obs up`');
  if (o.notRunning.length) lines.push(`  not running: ${o.notRunning.join('; ')}`);
  return lines;
}

/** A duration the user typed (`2h`, `30m`, `7d`), as ms; a usage error otherwise. */
function parseDuration(option: string, value: string): number {
  const n = ms(value as ms.StringValue) as number | undefined;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
    throw new SandstackError('SANDSTACK_USAGE', `${option} "${value}" is not a duration.`, { hint: 'Give a duration such as 2h, 30m or 7d.' });
  }
  return n;
}

/** `1h 59m left`, or `expired`, for an instance with a ttl. */
function expiryText(i: { expiresInMs?: number }): string {
  if (i.expiresInMs === undefined) return '-';
  return i.expiresInMs <= 0 ? 'expired' : `${ms(i.expiresInMs, { long: false })} left`;
}

function statusText(r: StatusResult | UpResult): string {
  const i = r.instance;
  const allowances = 'policy' in r ? r.policy.allowances : [];
  return [
    `instance ${i.id} (${i.kind}) ${i.state}${i.expiresInMs !== undefined ? `, expires: ${expiryText(i)} (${i.expiresAt})` : ''}`,
    `worktree ${i.worktree}${i.branch ? ` [${i.branch}]` : ''}`,
    '',
    serviceTable(r.services),
    ...(allowances.length ? ['', 'allowed guardrail exceptions:', ...allowances.map((a) => `  ${a.ruleId} ${a.rule} on ${a.service}: ${a.reason}`)] : []),
    ...('observability' in r ? observabilityText(r.observability) : []),
    ...('data' in r ? dataText(r.data) : []),
  ].join('\n');
}

/** The data section of `status`: the data root and each shared dataset, with where Docker shows it mounted. */
function dataText(d: StatusData): string[] {
  if (d.shared.length === 0 && d.root.template === null) return [];
  const lines = ['', 'data:', `  root ${d.root.path}${d.root.template ? ` (seeded from ${d.root.template})` : ''}${d.root.exists ? '' : ' (not created yet)'}`];
  for (const x of d.shared) {
    const unmounted = x.services.filter((s) => !x.mountedIn.includes(s));
    lines.push(`  shared ${x.name}: ${x.host} -> ${x.target} (${x.mode}) for ${x.services.join(', ')}${x.mountedIn.length ? `; mounted in ${x.mountedIn.join(', ')}` : ''}${x.mountedIn.length && unmounted.length ? `; not in ${unmounted.join(', ')}` : ''}`);
  }
  return lines;
}

function versionsLine(v: RuntimeVersions): string {
  const compose = v.compose ? `Compose ${v.compose.variant} ${v.compose.version}` : 'Compose not found';
  const engine = v.engine ? `engine ${v.engine.version} (API ${v.engine.apiVersion})` : 'engine not reachable';
  return `versions: sandstack ${v.sandstack}, ${compose}, ${engine}`;
}

function dfText(r: DfResult, budget: BudgetCheck): string {
  const n = (count: number, size: number) => (count === 0 ? '-' : `${formatSize(size)} (${count})`);
  const rows = r.instances.map((i) => [
    i.id + (i.registered ? '' : ' (unregistered)'),
    n(i.containers.count, i.containers.size),
    i.volumes.count === 0 ? '-' : `${formatSize(i.volumes.size)}${i.volumes.unknown.length ? '+?' : ''} (${i.volumes.count})`,
    n(i.images.count, i.images.disk),
    i.stateDir.exists ? formatSize(i.stateDir.size) : '-',
    formatSize(i.total),
  ]);
  const u = r.unattributed;
  if (u.images.count > 0) rows.push([`(unattributed${u.instances.length ? `: ${u.instances.join(', ')}` : ''})`, '-', '-', n(u.images.count, u.images.disk), '-', formatSize(u.total)]);
  const t = r.total;
  const bc = r.buildCache;
  const lines = [
    rows.length ? table(['INSTANCE', 'CONTAINERS', 'VOLUMES', 'IMAGES', 'STATE DIR', 'TOTAL'], rows) : 'no instances in this state home',
    `total: ${formatSize(t.size)} (containers ${formatSize(t.containers.size)}, volumes ${formatSize(t.volumes.size)}, images ${formatSize(t.images.disk)} (${formatSize(t.images.size)} as docker image ls lists them; shared layers counted once), state dirs ${formatSize(t.stateDirs)}, snapshots ${formatSize(t.snapshots.size)} (${t.snapshots.count}))`,
    `build cache (engine-wide, every build on this engine, not only sandstack's; not in the total): ${formatSize(bc.size)}, ${formatSize(bc.reclaimable)} reclaimable, ${bc.records} records`,
  ];
  if (bc.untaggedImages.count > 0) lines.push(`untagged images of this state home (build layers, superseded builds; counted under IMAGES): ${formatSize(bc.untaggedImages.size)} (${bc.untaggedImages.count})`);
  if (budget.budgetBytes !== undefined && budget.usedBytes !== undefined) {
    lines.push(
      budget.exceeded
        ? `budget ${formatSize(budget.budgetBytes)}: over budget by ${formatSize(budget.usedBytes - budget.budgetBytes)} (${formatSize(budget.usedBytes)} used, ${budget.percent}%)`
        : `budget ${formatSize(budget.budgetBytes)}: ${formatSize(budget.usedBytes)} used (${budget.percent}%)`,
    );
  }
  return lines.join('\n');
}

function obsText(r: ObsStatus): string {
  const rows = r.components.map((c) => [c.name, c.image, c.state + (c.health ? ` (${c.health})` : ''), c.state === 'running' ? (c.url ?? '-') : (c.reason ?? '-')]);
  return [
    `shared observability stack ${r.project}: ${r.state}${r.components.some((c) => c.state === 'missing') ? ` (missing: ${r.components.filter((c) => c.state === 'missing').map((c) => c.name).join(', ')})` : ''}`,
    table(['COMPONENT', 'IMAGE', 'STATE', 'URL / REASON'], rows),
    r.ports ? `OTLP/HTTP for host processes: http://127.0.0.1:${r.ports.otlp} (containers of instances: http://sandstack-otlp:4318)` : '',
    `grafana login: ${r.grafana.user} / ${r.grafana.password ?? (r.grafana.passwordFile ? `(stored in ${r.grafana.passwordFile}; --show-password prints it)` : '(generated by `sandstack obs up`)')}`,
    `instances with scrape targets: ${r.targets.join(', ') || 'none'}`,
    `instances joined: ${r.attached.join(', ') || 'none'}`,
  ]
    .filter(Boolean)
    .join('\n');
}

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
    .action(
      run(async (ctx, out, cmd) => {
        const opts = cmd.opts<{ force?: boolean; file: string[] }>();
        const r = await init(ctx, { force: opts.force, files: opts.file });
        out.result(r, () =>
          [
            `wrote ${r.file}`,
            ...(r.composeFiles ? [`compose files: ${r.composeFiles.join(', ')}${r.composeFilesFrom === 'COMPOSE_FILE' ? ' (from COMPOSE_FILE)' : ''}`] : []),
            `published ports: ${r.publish.map((p) => `${p.service}:${p.port} (${p.protocol})`).join(', ') || 'none'}`,
            ...(r.secrets.length ? [`generated secrets: ${r.secrets.join(', ')}`] : []),
            ...(r.required.length ? [`required variables: ${r.required.join(', ')} (set them, they are passed to Compose)`] : []),
            ...r.composeFindings.containerNames.map((f) => `note: ${f} (sandstack removes it when it runs the stack)`),
            ...r.composeFindings.fixedPorts.map((f) => `note: fixed host port ${f} (sandstack replaces it with a leased 127.0.0.1 port)`),
          ].join('\n'),
        );
      }),
    );

  program
    .command('lint [files...]')
    .description('check compose files against the guardrails, as written (file:line:column) and as merged by Compose')
    .option('--fix', 'rewrite the files in place: remove container_name, bind fixed host ports to 127.0.0.1 with a variable (comments and formatting kept)')
    .option('--format <format>', 'text, json or sarif (SARIF 2.1.0, for code scanning)', 'text')
    .addHelpText(
      'after',
      `\nFiles given are linted as given, together (Compose's project directory is the first file's folder);\nwithout files, the project's: compose.files, COMPOSE_FILE, or Compose's default discovery.\nText and JSON paths are relative to the current directory; SARIF URIs are relative to the repository\nroot (%SRCROOT%). Exits 1 when error-level findings remain.\n\nRules:\n${RULES.map((r) => `  ${r.id} ${r.name.padEnd(22)} ${r.severity.padEnd(7)} ${r.description}`).join('\n')}\n\nExamples:\n  sandstack lint\n  sandstack lint docker-compose.sandbox.yml\n  sandstack lint --fix\n  sandstack lint --format sarif > sandstack.sarif`,
    )
    .action(
      run(async (ctx, out, cmd) => {
        const o = cmd.opts<{ fix?: boolean; format: string }>();
        if (!['text', 'json', 'sarif'].includes(o.format)) throw new SandstackError('SANDSTACK_USAGE', `Unknown --format ${o.format}.`, { hint: 'Use text, json or sarif.' });
        const r = await lint(ctx, { files: cmd.args, fix: o.fix });
        if (o.format === 'sarif') {
          const sarif = toSarif(r.findings, sandstackVersion(), { baseDir: r.root, cwd: ctx.cwd, ...(r.files[0] !== undefined ? { mergedModelFile: r.files[0] } : {}) });
          process.stdout.write(`${JSON.stringify(sarif, null, 2)}\n`);
        } else {
          const asJson = o.format === 'json' || out.opts.json;
          const data = { summary: r.summary, findings: r.findings, fixes: r.fixes, allowances: r.allowances, mergedError: r.mergedError, files: r.files };
          if (asJson) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
          else process.stdout.write(`${lintTextLines(r).join('\n')}\n`);
        }
        return r.summary.errors > 0 ? 1 : 0;
      }),
    );

  program
    .command('new <branch>')
    .description('create a git worktree <repo>--<branch-slug> beside the repository on a new branch, registered as an instance')
    .option('--base <ref>', 'start the branch from this ref', 'HEAD')
    .addHelpText('after', '\nExample:\n  sandstack new feat/operation-metrics && cd ../myrepo--feat-operation-metrics && sandstack up')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await newWorktree(ctx, cmd.args[0]!, { base: cmd.opts<{ base: string }>().base });
        out.notices(r.notices);
        out.result(r, () =>
          [`created instance ${r.instance.id}`, `worktree ${r.instance.worktree} [${r.instance.branch}]`, ...r.ports.map((p) => `port ${p.service}:${p.container} -> ${p.url ?? p.host}`), '', `next: cd ${r.instance.projectDir} && sandstack up`].join('\n'),
        );
      }),
    );

  program
    .command('up')
    .description('render the isolated model, build, start, wait until every service is healthy, then run the gate (probes, isolation)')
    .option('--no-build', 'do not build images first')
    .option('--no-gate', 'skip the gate checks after health (probes, isolation)')
    .option('--ttl <duration>', 'remove the instance after this long without use (e.g. 2h; overrides instance.ttl)')
    .option('--from <snapshot>', "seed the new instance's volumes (and data root) from a snapshot before anything starts (see `sandstack snapshot`)")
    .addHelpText('after', '\nExamples:\n  sandstack up --json | jq .services\n  sandstack up --from with-prices')
    .action(
      run(async (ctx, out, cmd) => {
        const opts = cmd.opts<{ build: boolean; gate: boolean; ttl?: string; from?: string }>();
        if (opts.ttl !== undefined) ctx.ttlMs = parseDuration('--ttl', opts.ttl);
        const r = await up(ctx, { build: opts.build, gate: opts.gate, from: opts.from });
        out.notices(r.notices);
        out.result(r, () => `${statusText(r)}\n\n${gateText(r.gate)}\nready in ${(r.timings.totalMs / 1000).toFixed(1)} s`);
      }),
    );

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
    .action(
      run(async (ctx, out, cmd) => {
        const opts = cmd.opts<{ fresh?: boolean; build: boolean; from?: string }>();
        const { report, error } = opts.fresh ? await gateFresh(ctx, { build: opts.build, from: opts.from }) : await gateCheck(ctx);
        if (error !== undefined) {
          const code = out.error(error, { printJson: false });
          out.result(report, () => gateText(report));
          return report.passed ? 0 : code;
        }
        out.result(report, () => gateText(report));
        return report.passed ? 0 : 1;
      }),
    );

  program
    .command('test')
    .description('run the unit test commands and the E2E services declared in sandstack.yaml, inside the running instance')
    .addHelpText('after', '\nResults go to <evidence root>/<instance>/<run-id>/ (tests.json, logs, JUnit XML).\n\nExample:\n  sandstack test --json | jq .totals')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await runTests(ctx);
        out.result(r, () => testsText(r));
        return r.passed ? 0 : 1;
      }),
    );

  program
    .command('evidence')
    .description('write the evidence bundle of the latest run: manifest, gate report, tests, logs, services, rendered model, images, ports, summary.md, report.html')
    .option('--run <dir>', 'the run directory to complete (default: the latest run of this instance)')
    .addHelpText('after', '\nNo secret value is written: values of secret-like variables are replaced by [REDACTED:<NAME>].\n\nExample:\n  sandstack test && sandstack evidence && cat "$(sandstack evidence --json | jq -r .summary)"')
    .action(
      run(async (ctx, out, cmd) => {
        const o = cmd.opts<{ run?: string }>();
        const inst = await resolveInstance(ctx);
        const r = await writeEvidence(ctx, { inst, runDir: o.run ? path.resolve(ctx.cwd, o.run) : undefined });
        out.result({ dir: r.dir, summary: r.summaryFile, report: r.htmlFile, manifest: r.manifest }, () =>
          [`evidence ${r.manifest.result.passed ? 'PASSED' : 'FAILED'} for ${r.manifest.instance.id} (${r.manifest.files.length + 3} files, ${r.manifest.redaction.secretsRedacted} secret value(s) redacted)`, `report:  ${r.htmlFile}`, `summary: ${r.summaryFile}`].join('\n'),
        );
      }),
    );

  program
    .command('verify')
    .description('the whole pre-PR loop on a fresh throwaway instance: gate, tests, evidence, teardown; prints the path of summary.md last')
    .option('--no-build', 'do not build images first')
    .addHelpText('after', '\nExit code 0 only if the gate and every test passed and teardown left nothing.\n\nExample:\n  sandstack verify && gh pr create --body-file "$(sandstack verify --json | jq -r .evidence.summary)"')
    .action(
      run(async (ctx, out, cmd) => {
        const o = cmd.opts<{ build: boolean }>();
        const r = await verify(ctx, { build: o.build });
        const { error, ...data } = r;
        let code = 0;
        if (!r.passed) code = error !== undefined ? out.error(error, { printJson: false }) : 1;
        out.result(data, () =>
          [
            gateText(r.gate),
            r.tests ? testsText(r.tests) : 'tests: not run',
            r.teardown ? `teardown: ${r.teardown.removed.containers.length} containers, ${r.teardown.removed.volumes.length} volumes, ${r.teardown.removed.networks.length} networks removed; nothing left` : 'teardown: not recorded',
            `verify ${r.passed ? 'PASSED' : 'FAILED'}${r.problems.length ? `: ${r.problems.map((p) => `${p.step}: ${p.message.split('\n')[0]}`).join('; ')}` : ''}`,
            r.evidence ? r.evidence.summary : 'no evidence written',
          ].join('\n\n'),
        );
        return r.passed ? 0 : code || 1;
      }),
    );

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
    .action(
      run(async (ctx, out, cmd) => {
        const o = cmd.opts<{ title?: string; blocked?: string; why?: string; option?: string[]; recommend?: string; need?: string; evidence?: string[]; file?: string }>();
        const fromFile = o.file ? await readEscalationFile(path.resolve(ctx.cwd, o.file)) : {};
        const r = await escalate(ctx, {
          ...fromFile,
          ...(o.title ? { title: o.title } : {}),
          ...(o.blocked ? { blocked: o.blocked } : {}),
          ...(o.why ? { whyItMatters: o.why } : {}),
          ...(o.option ? { options: o.option } : {}),
          ...(o.recommend ? { recommended: o.recommend } : {}),
          ...(o.need ? { decisionNeeded: o.need } : {}),
          ...(o.evidence ? { evidence: o.evidence } : {}),
        });
        out.result({ dir: r.dir, markdown: r.markdown, json: r.json, packet: r.packet }, () => `escalation written:\n  ${r.markdown}\n  ${r.json}`);
      }),
    );

  const snapshotCmd = program
    .command('snapshot')
    .description("capture an instance's volumes (and data root) and seed new instances from them (`up --from`)")
    .addHelpText('after', '\nExamples:\n  sandstack snapshot save with-prices\n  sandstack snapshot ls --json\n  sandstack up --from with-prices\n  sandstack snapshot rm with-prices');
  snapshotCmd
    .command('save <name>')
    .description('capture the named volumes and the data root of this instance: runs snapshot.before first, stops the services writing to them for the copy and starts them again')
    .option('--force', 'replace a snapshot of that name')
    .addHelpText('after', '\nExample:\n  sandstack snapshot save with-prices --json')
    .action(
      run(async (ctx, out, cmd) => {
        await assertDockerAvailable(ctx.docker);
        const r = await saveSnapshot(ctx, String(cmd.args[0]), { force: cmd.opts<{ force?: boolean }>().force });
        out.notices(r.notices);
        const m = r.snapshot;
        const total = m.volumes.reduce((n, v) => n + v.bytes, m.dataRoot?.bytes ?? 0);
        out.result(r, () =>
          [
            `snapshot ${m.name} of ${m.source.instance}${m.source.commit ? ` at ${m.source.commit.slice(0, 12)}${m.source.dirty ? ' (uncommitted changes)' : ''}` : ''}: ${m.volumes.map((v) => `${v.key} ${(v.bytes / 1e6).toFixed(1)} MB`).join(', ')}${m.dataRoot ? `, data root ${(m.dataRoot.bytes / 1e6).toFixed(1)} MB` : ''} (${(total / 1e6).toFixed(1)} MB) in ${(m.durationMs / 1000).toFixed(1)} s`,
            m.stopped.length ? `stopped ${m.stopped.join(', ')} for the copy; started again` : '',
            m.secrets.length ? `kept the secrets the data was written with: ${m.secrets.join(', ')} (owner-only, never printed)` : '',
            `stored in ${r.dir}`,
          ]
            .filter(Boolean)
            .join('\n'),
        );
      }),
    );
  snapshotCmd
    .command('ls', { isDefault: true })
    .description('list the snapshots of this state home')
    .addHelpText('after', '\nExample:\n  sandstack snapshot ls --json')
    .action(
      run(async (ctx, out) => {
        const snapshots = await listSnapshots(ctx.home);
        out.result({ snapshots }, () =>
          snapshots.length === 0
            ? 'no snapshots'
            : table(
                ['NAME', 'FROM', 'COMMIT', 'VOLUMES', 'SIZE', 'TAKEN'],
                snapshots.map((x) => [
                  x.name,
                  x.manifest?.source.instance ?? '-',
                  x.manifest?.source.commit?.slice(0, 12) ?? '-',
                  x.manifest ? x.manifest.volumes.map((v) => v.key).join(', ') + (x.manifest.dataRoot ? ' +data root' : '') : `unusable: ${x.problem}`,
                  `${(x.bytes / 1e6).toFixed(1)} MB`,
                  x.manifest?.createdAt ?? '-',
                ]),
              ),
        );
      }),
    );
  snapshotCmd
    .command('rm <name>')
    .description('remove a snapshot (its archives, manifest and stored secrets)')
    .addHelpText('after', '\nExample:\n  sandstack snapshot rm with-prices')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await removeSnapshot(ctx.home, String(cmd.args[0]));
        out.result(r, () => `removed snapshot ${r.name} (${(r.bytes / 1e6).toFixed(1)} MB)`);
      }),
    );

  const secretsCmd = program.command('secrets').description("list the instance's generated secrets (names and files, never values), or rotate them");
  secretsCmd
    .command('ls', { isDefault: true })
    .description('list the declared secrets and where their 0600 files are')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await secrets(ctx);
        out.result(r, () => (r.secrets.length ? table(['SECRET', 'GENERATED', 'FILE'], r.secrets.map((s) => [s.name, s.generated ? 'yes' : 'no (on first up)', s.file])) : 'no secrets declared in sandstack.yaml'));
      }),
    );
  secretsCmd
    .command('rotate [names...]')
    .description('replace the values of the named secrets (default: all); takes effect on the next up')
    .addHelpText('after', '\nExample:\n  sandstack secrets rotate DB_PASSWORD && sandstack down && sandstack up')
    .action(
      run(async (ctx, out, cmd) => {
        const names = cmd.args;
        const r = await secrets(ctx, { rotate: names.length ? names : true });
        out.result(r, () => `rotated ${r.rotated?.join(', ') || 'nothing'}; running containers keep the old values until \`sandstack down && sandstack up\``);
      }),
    );

  program
    .command('status')
    .description("show the instance's services, health and URLs")
    .addHelpText('after', '\nExample:\n  sandstack status --json')
    .action(
      run(async (ctx, out, cmd) => {
        const [base, versions] = await Promise.all([status(ctx), runtimeVersions(ctx)]);
        const r = { ...base, versions };
        out.notices(r.notices);
        out.result(r, () => `${statusText(r)}\n\n${versionsLine(versions)}`);
      }),
    );

  program
    .command('ls')
    .description('list every instance on this machine')
    .addHelpText('after', '\nExample:\n  sandstack ls --json')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await listInstances(ctx);
        out.notices(r.notices);
        out.result(r, () =>
          r.instances.length === 0
            ? 'no instances'
            : table(
                ['INSTANCE', 'STATE', 'CONTAINERS', 'PORTS', 'EXPIRES', 'WORKTREE'],
                r.instances.map((i) => [i.id, i.state + (i.registered ? '' : ' (unregistered)') + (i.drift.length ? ' (drift)' : ''), `${i.containers.running}/${i.containers.total}`, i.ports.map((p) => p.url ?? String(p.host)).join(', ') || '-', expiryText(i), i.worktree]),
              ) + r.instances.flatMap((i) => i.drift.map((d) => `\ndrift ${i.id}: ${d}`)).join(''),
        );
      }),
    );

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
    .action(
      run(async (ctx, out) => {
        // The user config first: an invalid one fails before the engine is asked.
        const user = await loadUserConfig(ctx.env);
        await assertDockerAvailable(ctx.docker);
        const usage = await diskUsage(ctx);
        const budget = budgetStatus(user, usage);
        const only = ctx.instanceFlag;
        if (only && !usage.instances.some((i) => i.id === only)) {
          throw new SandstackError('SANDSTACK_INSTANCE_NOT_FOUND', `No instance ${only} in this state home (${ctx.home}).`, { hint: 'See them all with `sandstack df` or `sandstack ls`.' });
        }
        const r = { ...usage, ...(only ? { instances: usage.instances.filter((i) => i.id === only), filter: only } : {}), budget };
        out.notices(r.notices);
        out.result(r, () => dfText(r, budget));
      }),
    );

  program
    .command('ports')
    .description("show the instance's leased host ports")
    .addHelpText('after', '\nExample:\n  sandstack ports --json')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await ports(ctx);
        out.result(r, () =>
          r.ports.length === 0
            ? `instance ${r.instance.id}: no leased ports${r.instance.registered ? '' : ' (not registered yet; `sandstack up` leases them)'}`
            : table(['SERVICE', 'CONTAINER', 'HOST', 'URL'], r.ports.map((p) => [p.service, `${p.container}/${p.protocol}`, `${p.hostIp}:${p.host}`, p.url ?? '-'])),
        );
      }),
    );

  program
    .command('render')
    .description('print the isolated Compose model sandstack runs for this instance')
    .addHelpText('after', '\nExample:\n  sandstack render > /tmp/isolated.yaml')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await renderInstance(ctx);
        out.result({ instance: r.instance, file: r.file, report: r.report, model: r.model, redacted: r.redacted }, () => r.yaml);
      }),
    );

  program
    .command('logs [service]')
    .description("show the logs of the instance's services (or one service)")
    .option('-f, --follow', 'keep streaming new lines')
    .option('--tail <n>', 'only the last n lines of each service', (v) => Number.parseInt(v, 10))
    .addHelpText('after', '\nExample:\n  sandstack logs backend --tail 50')
    .action(
      run(async (ctx, _out, cmd) => {
        const o = cmd.opts<{ follow?: boolean; tail?: number }>();
        return logs(ctx, { service: cmd.args[0], follow: o.follow, tail: o.tail });
      }),
    );

  program
    .command('shell [service] [command...]')
    .description('open bash (or sh) in a running service container, or run a command given after --')
    .addHelpText('after', '\nExamples:\n  sandstack shell backend\n  sandstack shell db -- psql -U ktrdr -c "select 1"')
    .action(
      run(async (ctx, _out, cmd) => {
        const [service, ...command] = cmd.args;
        return shell(ctx, { service, tty: Boolean(process.stdin.isTTY && process.stdout.isTTY), command });
      }),
    );

  const obs = program
    .command('obs')
    .description('the shared observability stack (Prometheus, Grafana, Jaeger) every instance with observability.enabled reports to')
    .addHelpText('after', '\nExamples:\n  sandstack obs up\n  sandstack obs status --show-password\n  sandstack obs down --volumes');
  obs
    .command('up')
    .description('build, pull and start the shared stack (what is available), then join every instance telemetry network')
    .option('--build', 'rebuild the Prometheus image')
    .option('--no-pull', 'do not try to pull missing Grafana/Jaeger images')
    .addHelpText('after', '\nExample:\n  sandstack obs up --json')
    .action(
      run(async (ctx, out, cmd) => {
        const o = cmd.opts<{ build?: boolean; pull?: boolean }>();
        const r = await obsUp(ctx, { build: o.build, pull: o.pull });
        out.notices(r.notices);
        out.result(r, () => [`started ${r.started.join(', ')} in ${(r.timings.totalMs / 1000).toFixed(1)} s`, ...r.missing.map((m) => `not started: ${m.name}, image ${m.image} is ${m.reason}`), obsText(r)].join('\n'));
      }),
    );
  obs
    .command('status', { isDefault: true })
    .description('show the shared stack: components, URLs, Grafana login, instances it serves')
    .option('--show-password', "print Grafana's admin password")
    .addHelpText('after', '\nExample:\n  sandstack obs status --json')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await obsStatus(ctx, { showPassword: cmd.opts<{ showPassword?: boolean }>().showPassword });
        out.result(r, () => obsText(r));
      }),
    );
  obs
    .command('down')
    .description('stop and remove the shared stack; its volumes (metrics, Grafana) are kept unless --volumes')
    .option('--volumes', 'also remove its volumes and the Grafana admin password')
    .addHelpText('after', '\nExample:\n  sandstack obs down')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await obsDown(ctx, { volumes: cmd.opts<{ volumes?: boolean }>().volumes });
        out.result(r, () =>
          [`removed ${r.removed.containers.length} container(s) of ${r.project}`, r.removed.volumes.length ? `removed volumes ${r.removed.volumes.join(', ')}` : '', r.keptVolumes.length ? `kept volumes ${r.keptVolumes.join(', ')} (--volumes removes them)` : '']
            .filter(Boolean)
            .join('\n'),
        );
      }),
    );

  program
    .command('down')
    .description('stop and remove the containers gracefully; keep volumes, data and ports')
    .addHelpText('after', '\nExample:\n  sandstack down && sandstack up   # same data, same ports')
    .action(
      run(async (ctx, out, cmd) => {
        const r = await down(ctx);
        out.notices(r.notices);
        out.result(r, () => (r.stopped.length ? `stopped ${r.instance.id}: ${r.stopped.join(', ')} (volumes and ports kept)` : `instance ${r.instance.id} was not running`));
      }),
    );

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
    .action(
      run(async (ctx, out, cmd) => {
        const o = cmd.opts<{ dryRun?: boolean; worktreeGone?: boolean; evidenceOlderThan?: string; images?: boolean }>();
        const evidenceOlderThanMs = o.evidenceOlderThan === undefined ? undefined : parseDuration('--evidence-older-than', o.evidenceOlderThan);
        await assertDockerAvailable(ctx.docker);
        const r: GcResult = await gc(ctx, { dryRun: o.dryRun, worktreeGone: o.worktreeGone, evidenceOlderThanMs, images: o.images, named: ctx.instanceFlag ? [ctx.instanceFlag] : [] });
        out.result(r, () => {
          if (r.items.length === 0) return 'nothing to collect';
          const rows = r.items.map((i) => [i.kind, i.id, i.removed ? 'removed' : r.dryRun ? 'would remove' : 'kept', i.why + (i.hint ? ` (${i.hint})` : '')]);
          return `${table(['KIND', 'INSTANCE', 'ACTION', 'WHY'], rows)}\n${r.items.filter((i) => i.removed).length} removed${r.dryRun ? ' (dry run: nothing removed)' : ''}`;
        });
      }),
    );

  program
    .command('destroy')
    .description('remove containers, volumes, networks, data and state; release ports; verify nothing labelled remains')
    .option('--keep-worktree', 'keep the git worktree created by `sandstack new`')
    .option('--keep-images', 'keep the images built for this instance (removed by default; build cache layers are always kept)')
    .addHelpText('after', '\nExample:\n  sandstack destroy --keep-worktree --json')
    .action(
      run(async (ctx, out, cmd) => {
        const o = cmd.opts<{ keepWorktree?: boolean; keepImages?: boolean }>();
        const r: DestroyResult = await destroy(ctx, { keepWorktree: o.keepWorktree, keepImages: o.keepImages });
        out.notices(r.notices);
        out.result(r, () =>
          [
            `destroyed ${r.instance.id}: ${r.removed.containers.length} containers, ${r.removed.volumes.length} volumes, ${r.removed.networks.length} networks, ${r.removed.images.length} image tags removed`,
            `verified: 0 labelled containers, volumes and networks remain`,
            r.releasedPorts.length ? `released ports ${r.releasedPorts.join(', ')}` : '',
            r.worktree ? `worktree ${r.worktree.path}: ${r.worktree.removed ? 'removed' : r.worktree.reason}` : '',
          ]
            .filter(Boolean)
            .join('\n'),
        );
      }),
    );
}

export function contextFrom(globals: GlobalOptions, signal: AbortSignal, out: Output): Context {
  return createContext({
    cwd: globals.cwd ? (globals.cwd.startsWith('/') ? globals.cwd : `${process.cwd()}/${globals.cwd}`) : process.cwd(),
    instanceFlag: globals.instance,
    configFile: globals.config,
    signal,
    onProgress: out.progress,
  });
}

export { ExitCode };
