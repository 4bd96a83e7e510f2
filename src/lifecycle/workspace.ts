/** Creating worktrees (`new`), starting configs (`init`), and the read-only/attached commands. */
import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Document, parse as parseYaml } from 'yaml';
import { reapedLine, reapFirst } from './reap.js';
import { detectCompose, spawnCompose, type ComposeProject } from '../compose/cli.js';
import { parsePortEntry } from '../compose/model.js';
import { composeFilesOf, composeProjectDir, locateComposeFiles } from '../compose/files.js';
import { resolveModel } from '../compose/resolve.js';
import type { ComposeModel } from '../compose/model.js';
import { allowancesOf, fixFiles, lintProject, type Allowance, type FixResult, type ProjectLint } from '../policy/check.js';
import type { Finding } from '../policy/rules.js';
import { CONFIG_FILE, findConfigFile, parseConfig } from '../config/load.js';
import { assertDockerAvailable, containerLogTail, execInContainer, instanceContainers, type ContainerView } from '../engine/docker.js';
import { SandstackError } from '../errors.js';
import { addWorktree, branchExists, deleteBranch, gitInfo, isValidBranchName, removeWorktree } from '../git/git.js';
import { branchSlug, deriveInstanceId, sanitizeInstanceId } from '../identity/identity.js';
import { composeCacheFile } from '../state/paths.js';
import { readRegistrySnapshot, type Lease } from '../state/registry.js';
import { reachPort } from '../ports/leases.js';
import type { Context } from './context.js';
import { allowedHostEnv, secretEnv, ensureLeases, findRecord, registryOptions, renderedProject, resolveInstance } from './instance.js';
import { urlFor } from './status.js';
import { ensureSecrets, generateSecret, loadSecrets, rotateSecrets, secretsDir } from '../secrets/secrets.js';
import { SECRET_NAME } from '../evidence/redact.js';
import { findMissingVariables } from '../gate/required-env.js';
import { interpolationEnv } from '../compose/render.js';

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

export interface NewResult {
  instance: { id: string; worktree: string; projectDir: string; branch: string };
  ports: { service: string; container: number; host: number; url: string | null }[];
  notices: string[];
}

/** Creates `<repo>--<branch-slug>` beside the repository on a new branch and registers it. */
export async function newWorktree(ctx: Context, branch: string, opts: { base?: string } = {}): Promise<NewResult> {
  const git = await gitInfo(ctx.cwd);
  if (!git) {
    throw new SandstackError('SANDSTACK_NOT_A_GIT_REPO', `${ctx.cwd} is not inside a git repository.`, { hint: 'Run `sandstack new` inside the repository whose stack you want to run.' });
  }
  if (!(await isValidBranchName(git.mainWorktree, branch))) {
    throw new SandstackError('SANDSTACK_USAGE', `"${branch}" is not a valid git branch name.`, { hint: 'Use a name like feat/operation-metrics.' });
  }
  if (await branchExists(git.mainWorktree, branch)) {
    throw new SandstackError('SANDSTACK_BRANCH_EXISTS', `Branch "${branch}" already exists.`, {
      hint: `Pick a new branch name, or check it out yourself (git worktree add <path> ${branch}) and run \`sandstack up\` there.`,
    });
  }
  const repoName = path.basename(git.mainWorktree);
  const folder = `${repoName}--${branchSlug(branch)}`;
  const worktree = path.join(path.dirname(git.mainWorktree), folder);
  if (await exists(worktree)) {
    throw new SandstackError('SANDSTACK_WORKTREE_EXISTS', `The folder ${worktree} already exists.`, { hint: 'Remove it, or pick another branch name.' });
  }
  // Where the project lives inside the worktree (sandstack.yaml may sit in a subfolder).
  const configFile = ctx.configFile ? path.resolve(ctx.cwd, ctx.configFile) : await findConfigFile(ctx.cwd, git.worktree);
  const rel = path.relative(git.worktree, configFile ? path.dirname(configFile) : ctx.cwd);
  const projectDir = path.join(worktree, rel);
  const config = configFile ? parseConfig(await readFile(configFile, 'utf8'), configFile) : undefined;
  const id = deriveInstanceId({ flag: ctx.instanceFlag, env: ctx.env.SANDSTACK_INSTANCE, idFrom: config?.instance.idFrom ?? 'folder', worktree, branch });
  const registry = (await readRegistrySnapshot(registryOptions(ctx))).result;
  const taken = registry.instances[id];
  if (taken && path.resolve(taken.projectDir) !== path.resolve(projectDir)) {
    throw new SandstackError('SANDSTACK_INSTANCE_CLASH', `Instance id "${id}" already belongs to ${taken.projectDir}.`, {
      hint: 'Pass a different id with --instance <id>, or destroy the other instance first.',
    });
  }
  // Orphans of killed runs go first (quietly skipped when Docker is not reachable: `new` does not need it).
  const reaped = (await reapFirst(ctx, { quiet: true })).map(reapedLine);
  ctx.onProgress({ type: 'step', message: `creating worktree ${worktree} on new branch ${branch}` });
  await addWorktree(git.mainWorktree, worktree, branch, opts.base ?? 'HEAD');
  try {
    const inst = await resolveInstance({ ...ctx, cwd: projectDir, configFile: configFile ? path.join(projectDir, path.basename(configFile)) : undefined });
    const leased = await ensureLeases(ctx, inst, { persist: true, createdBy: 'new', branch });
    return {
      instance: { id: inst.identity.id, worktree, projectDir, branch },
      ports: leased.record.leases.map((l) => ({ service: l.service, container: l.containerPort, host: l.hostPort, url: urlFor(l, '127.0.0.1', l.hostPort) })),
      notices: [...reaped, ...leased.notices],
    };
  } catch (e) {
    await removeWorktree(git.mainWorktree, worktree, { force: true });
    await deleteBranch(git.mainWorktree, branch);
    throw e;
  }
}

/** Container ports whose protocol is not HTTP (databases, DNS, OTLP/gRPC, brokers, mail, ssh). */
const TCP_PORTS = new Set([
  22, 25, 53, 587, // ssh, smtp, dns
  1433, 1521, 3306, 5432, 6379, 6380, 26379, 27017, 9042, 11211, 7687, // databases and caches
  4317, 50051, // OTLP/gRPC, gRPC
  1883, 8883, 2181, 4222, 5671, 5672, 9092, 9093, // brokers: mqtt, zookeeper, nats, amqp, kafka
]);
const HTTPS_PORTS = new Set([443, 8443]);

/** The publish protocol init writes for a container port: udp, https (443, 8443), tcp (known non-HTTP), else http. */
export function guessPublishProtocol(port: number, transport: 'tcp' | 'udp'): 'http' | 'https' | 'tcp' | 'udp' {
  if (transport === 'udp') return 'udp';
  if (HTTPS_PORTS.has(port)) return 'https';
  return TCP_PORTS.has(port) ? 'tcp' : 'http';
}

export interface InitResult {
  file: string;
  publish: { service: string; port: number; protocol: string }[];
  /** Required secret-like variables, declared as generated secrets. */
  secrets: string[];
  /** Other required variables, declared under env.required. */
  required: string[];
  composeFindings: { containerNames: string[]; fixedPorts: string[] };
  /** compose.files as written to sandstack.yaml (relative to it); undefined for Compose's default discovery. */
  composeFiles?: string[];
  /** Where the compose files came from. */
  composeFilesFrom: 'flag' | 'config' | 'COMPOSE_FILE' | 'default';
}

/**
 * The compose section of the sandstack.yaml being replaced: its files (read even from a file that no
 * longer validates) and, when it validates, its profiles.
 */
async function existingComposeSection(file: string): Promise<{ files?: string[]; profiles: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return { profiles: [] };
  }
  try {
    const { files, profiles } = parseConfig(text, file).compose;
    return { files, profiles };
  } catch {
    let files: unknown;
    try {
      files = (parseYaml(text) as { compose?: { files?: unknown } } | null)?.compose?.files;
    } catch {
      // not YAML at all: nothing to keep
    }
    return { files: Array.isArray(files) && files.length > 0 && files.every((f) => typeof f === 'string' && f) ? (files as string[]) : undefined, profiles: [] };
  }
}

/**
 * Writes a starting sandstack.yaml for the compose project in ctx.cwd. The compose files are, in
 * order: `files` (init -f), compose.files of the sandstack.yaml being replaced (--force), COMPOSE_FILE
 * (environment or .env), Compose's default discovery. compose.files is recorded unless it is the
 * default discovery.
 */
export async function init(ctx: Context, opts: { force?: boolean; files?: string[] } = {}): Promise<InitResult> {
  const file = path.join(ctx.cwd, CONFIG_FILE);
  const existing = await exists(file);
  if (existing && !opts.force) {
    throw new SandstackError('SANDSTACK_CONFIG_EXISTS', `${file} already exists.`, { hint: 'Edit it, or pass --force to overwrite it (its compose.files are kept).' });
  }
  const { files: kept, profiles: keptProfiles } = existing ? await existingComposeSection(file) : { files: undefined, profiles: [] as string[] };
  let files: string[];
  let from: InitResult['composeFilesFrom'];
  if (opts.files && opts.files.length > 0) {
    files = opts.files.map((f) => path.resolve(ctx.cwd, f));
    for (const f of files) {
      if (!(await exists(f))) throw new SandstackError('SANDSTACK_COMPOSE_NOT_FOUND', `No such compose file: ${f} (given with -f).`, { hint: 'Check the path; it is relative to the current folder.' });
    }
    from = 'flag';
  } else if (kept) {
    files = await locateComposeFiles(ctx.cwd, kept);
    from = 'config';
  } else {
    files = await locateComposeFiles(ctx.cwd, undefined, { env: ctx.env });
    from = files.length > 0 ? 'COMPOSE_FILE' : 'default';
  }
  const discovered = await composeFilesOf({ projectDir: ctx.cwd, files: [] });
  const isDiscovery = files.length === 0 || (from !== 'config' && files.length === discovered.length && files.every((f, i) => f === discovered[i]));
  const composeFiles = isDiscovery ? undefined : from === 'config' ? kept : files.map((f) => path.relative(ctx.cwd, f).split(path.sep).join('/'));
  if (isDiscovery) files = [];
  // Compose's project directory for explicit files is the first file's folder: relative paths in
  // the files (build contexts, env_file, bind mounts) and .env resolve from there.
  const projectDir = composeProjectDir(ctx.cwd, files);
  const cli = await detectCompose(ctx.env, { cacheFile: composeCacheFile(ctx.home) });
  // Variables the compose files demand (${VAR:?...}): secret-like ones become generated secrets,
  // the others required host variables. Placeholders let Compose resolve the model meanwhile.
  const demanded = (await findMissingVariables({ projectDir, composeFiles: await composeFilesOf({ projectDir, files }), required: [], env: {} })).map((m) => m.name);
  const secretNames = demanded.filter((n) => SECRET_NAME.test(n));
  const requiredNames = demanded.filter((n) => !SECRET_NAME.test(n));
  const placeholders = Object.fromEntries(demanded.map((n) => [n, generateSecret(16)]));
  const model = await resolveModel({ cli, projectName: sanitizeInstanceId(path.basename(ctx.cwd)), projectDir, files, profiles: keptProfiles, env: placeholders, allowEnv: [] }, ctx.signal);
  const publish: InitResult['publish'] = [];
  const findings: InitResult['composeFindings'] = { containerNames: [], fixedPorts: [] };
  for (const [name, svc] of Object.entries(model.services)) {
    if (svc.container_name) findings.containerNames.push(`${name}: container_name ${svc.container_name}`);
    for (const entry of svc.ports ?? []) {
      for (const m of parsePortEntry(entry)) {
        if (m.published !== undefined) findings.fixedPorts.push(`${name}: ${m.published}->${m.target}${m.protocol === 'udp' ? '/udp' : ''}`);
        // One entry per container port and transport: 53/tcp and 53/udp are two entries.
        const protocol = guessPublishProtocol(m.target, m.protocol);
        if (!publish.some((p) => p.service === name && p.port === m.target && (p.protocol === 'udp') === (m.protocol === 'udp'))) {
          publish.push({ service: name, port: m.target, protocol });
        }
      }
    }
  }
  const doc = new Document({
    version: 1,
    ...(composeFiles || keptProfiles.length ? { compose: { ...(composeFiles ? { files: composeFiles } : {}), ...(keptProfiles.length ? { profiles: keptProfiles } : {}) } } : {}),
    instance: { idFrom: 'folder', kind: 'local' },
    ports: { range: { from: 20000, to: 29999 }, publish },
    ...(secretNames.length ? { secrets: secretNames.map((name) => ({ name })) } : {}),
    ...(requiredNames.length ? { env: { required: requiredNames } } : {}),
    observability: { enabled: false, metrics: [] },
    gate: { timeoutSeconds: 180 },
  });
  doc.commentBefore =
    ' sandstack.yaml: how sandstack runs this Compose project as isolated instances.\n' +
    ' Reference: the README of sandstack ("Config file reference").';
  const composeNode = doc.get('compose', true) as { commentBefore?: string } | undefined;
  if (composeNode && composeFiles) {
    composeNode.commentBefore =
      ` Compose files (relative to this file${from === 'COMPOSE_FILE' ? '; taken from COMPOSE_FILE' : ''}), merged in this order; relative paths inside\n` +
      ' them resolve from the first file\'s folder, as with `docker compose -f`.';
  }
  const portsNode = doc.get('ports', true) as { commentBefore?: string } | undefined;
  if (portsNode) {
    portsNode.commentBefore =
      ' Only these container ports get host ports, leased per instance and bound to 127.0.0.1.\n' +
      ' Every other published port is removed (still reachable inside the stack network).';
  }
  const secretsNode = doc.get('secrets', true) as { commentBefore?: string } | undefined;
  if (secretsNode) secretsNode.commentBefore = ' Generated per instance by sandstack (random, 0600, never printed); the compose files require them.';
  const obsNode = doc.get('observability', true) as { commentBefore?: string } | undefined;
  if (obsNode) {
    obsNode.commentBefore =
      ' enabled: true reports to the shared Prometheus/Grafana/Jaeger (`sandstack obs up`); list the\n' +
      ' Prometheus endpoints under metrics, e.g. - { service: backend, port: 8000, path: /metrics }.';
  }
  const text = doc.toString({ lineWidth: 0 });
  parseConfig(text, file); // never write a config sandstack itself would reject
  await writeFile(file, text, { mode: 0o644 });
  return { file, publish, secrets: secretNames, required: requiredNames, composeFindings: findings, composeFiles, composeFilesFrom: from };
}

export interface PortsResult {
  instance: { id: string; registered: boolean };
  ports: { service: string; container: number; protocol: string; host: number; hostIp: string; url: string | null; name?: string }[];
}

export async function ports(ctx: Context): Promise<PortsResult> {
  const inst = await resolveInstance(ctx);
  const { record } = await findRecord(ctx, inst.identity.id);
  return {
    instance: { id: inst.identity.id, registered: record !== undefined },
    ports: (record?.leases ?? []).map((l: Lease) => ({ service: l.service, container: l.containerPort, protocol: l.protocol, host: reachPort(l), hostIp: '127.0.0.1', url: urlFor(l, '127.0.0.1', l.hostPort), name: l.name, ...(l.localPort ? { enginePort: l.hostPort } : {}) })),
  };
}

async function attachedProject(ctx: Context) {
  await assertDockerAvailable(ctx.engine.docker);
  const inst = await resolveInstance(ctx);
  const { record } = await findRecord(ctx, inst.identity.id);
  if (record) inst.projectDir = record.projectDir;
  const rp = await renderedProject(ctx, inst, record?.leases ?? []);
  if (!rp) {
    throw new SandstackError('SANDSTACK_NOT_RUNNING', `Instance ${inst.identity.id} has not been started.`, { hint: 'Start it with `sandstack up`.' });
  }
  return { inst, rp };
}

/** Streams `compose logs` to the terminal; resolves with Compose's exit code. */
export async function logs(ctx: Context, opts: { service?: string; follow?: boolean; tail?: number }): Promise<number> {
  const { rp } = await attachedProject(ctx);
  if (opts.service && !rp.model.services[opts.service]) {
    throw new SandstackError('SANDSTACK_UNKNOWN_SERVICE', `No service "${opts.service}".`, { hint: `Services: ${Object.keys(rp.model.services).join(', ')}.` });
  }
  const args = ['logs', '--no-color', ...(opts.follow ? ['--follow'] : []), ...(opts.tail !== undefined ? ['--tail', String(opts.tail)] : []), ...(opts.service ? [opts.service] : [])];
  const r = await spawnCompose(rp.project, args, { interactive: true, signal: ctx.signal });
  return r.exitCode ?? 1;
}

export interface LogTailResult {
  instance: { id: string };
  /** One entry per container of the asked services, in service order. */
  services: { service: string; container: string; state: string; lines: string[] }[];
}

/** The last `tail` log lines of each container (of `service`, or all), since `sinceSeconds` ago when given, captured rather than streamed. */
export async function logTail(ctx: Context, opts: { service?: string; tail?: number; sinceSeconds?: number } = {}): Promise<LogTailResult> {
  const { inst, rp } = await attachedProject(ctx);
  if (opts.service && !rp.model.services[opts.service]) {
    throw new SandstackError('SANDSTACK_UNKNOWN_SERVICE', `No service "${opts.service}".`, { hint: `Services: ${Object.keys(rp.model.services).join(', ')}.` });
  }
  const containers = (await instanceContainers(ctx.engine.docker, inst.identity.id)).filter((c) => !opts.service || c.service === opts.service).sort((a, b) => a.service.localeCompare(b.service) || a.name.localeCompare(b.name));
  const since = opts.sinceSeconds !== undefined ? Math.floor(Date.now() / 1000 - opts.sinceSeconds) : undefined;
  return {
    instance: { id: inst.identity.id },
    services: await Promise.all(
      containers.map(async (c) => ({ service: c.service, container: c.name, state: c.state, lines: await containerLogTail(ctx.engine.docker, c.id, opts.tail ?? 100, c.tty, since) })),
    ),
  };
}

export interface ExecResultData {
  instance: { id: string };
  service: string;
  command: string[];
  exitCode: number;
  output: string;
  /** The output was longer than the cap: its end is kept. */
  truncated: boolean;
  durationMs: number;
}

/**
 * A running container of the service (of any service, the first running one, when none is named),
 * or SANDSTACK_NOT_RUNNING naming the running services.
 */
async function runningContainer(ctx: Context, id: string, service?: string): Promise<ContainerView> {
  const running = (await instanceContainers(ctx.engine.docker, id)).filter((x) => x.state === 'running');
  const c = service === undefined ? running[0] : running.find((x) => x.service === service);
  if (!c) {
    const names = [...new Set(running.map((x) => x.service))];
    throw new SandstackError('SANDSTACK_NOT_RUNNING', service ? `Service ${service} of ${id} is not running.` : `No service of ${id} is running.`, {
      hint: names.length ? `Running services: ${names.join(', ')}.` : 'Start the instance with `sandstack up`.',
    });
  }
  return c;
}

/** Runs a command (no shell, no TTY) in a running container of the service, within a time limit; the output's last `maxBytes` are kept. */
export async function execInService(ctx: Context, opts: { service: string; command: string[]; timeoutSeconds?: number; maxBytes?: number }): Promise<ExecResultData> {
  const { inst } = await attachedProject(ctx);
  const c = await runningContainer(ctx, inst.identity.id, opts.service);
  const t0 = Date.now();
  const timeoutMs = (opts.timeoutSeconds ?? 60) * 1000;
  const r = await execInContainer(ctx.engine.docker, c.id, opts.command, timeoutMs).catch((e: Error) => {
    throw new SandstackError('SANDSTACK_EXEC_FAILED', `\`${opts.command.join(' ')}\` in ${opts.service}: ${e.message}.`, {
      hint: 'Give it a larger time limit, or run something that finishes (exec has no input and no terminal).',
    });
  });
  const max = opts.maxBytes ?? 64 * 1024;
  const bytes = Buffer.from(r.output, 'utf8');
  const truncated = bytes.length > max;
  return {
    instance: { id: inst.identity.id },
    service: opts.service,
    command: opts.command,
    exitCode: r.exitCode,
    output: truncated ? bytes.subarray(bytes.length - max).toString('utf8') : r.output,
    truncated,
    durationMs: Date.now() - t0,
  };
}

/** Opens bash (or sh where bash is missing) in a running service container. */
export async function shell(ctx: Context, opts: { service?: string; tty: boolean; command?: string[] }): Promise<number> {
  const { inst, rp } = await attachedProject(ctx);
  const { service } = await runningContainer(ctx, inst.identity.id, opts.service);
  const cmd = opts.command && opts.command.length > 0 ? opts.command : ['sh', '-c', 'if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi'];
  const r = await spawnCompose(rp.project, ['exec', ...(opts.tty ? [] : ['-T']), service, ...cmd], { interactive: true });
  return r.exitCode ?? 1;
}

export interface SecretsResult {
  instance: { id: string; registered: boolean };
  /** Names and files only: values are never returned. */
  secrets: { name: string; file: string; generated: boolean }[];
  rotated?: string[];
}

/** The instance's declared secrets (names and files, never values); `rotate` replaces their values. */
export async function secrets(ctx: Context, opts: { rotate?: string[] | true } = {}): Promise<SecretsResult> {
  const inst = await resolveInstance(ctx);
  const { record } = await findRecord(ctx, inst.identity.id);
  const specs = inst.loaded.config.secrets;
  let rotated: string[] | undefined;
  if (opts.rotate) {
    if (!record) {
      throw new SandstackError('SANDSTACK_NOT_RUNNING', `Instance ${inst.identity.id} has no secrets yet: they are generated by its first \`sandstack up\`.`, { hint: 'Start it with `sandstack up`.' });
    }
    const names = opts.rotate === true ? undefined : opts.rotate;
    const unknown = (names ?? []).filter((n) => !specs.some((s) => s.name === n));
    if (unknown.length) {
      throw new SandstackError('SANDSTACK_USAGE', `Not declared in sandstack.yaml secrets: ${unknown.join(', ')}.`, { hint: `Declared: ${specs.map((s) => s.name).join(', ') || 'none'}.` });
    }
    rotated = await rotateSecrets(inst.paths.dir, specs, names);
  }
  const present = new Set((await loadSecrets(inst.paths.dir)).map((s) => s.name));
  return {
    instance: { id: inst.identity.id, registered: record !== undefined },
    secrets: specs.map((s) => ({ name: s.name, file: path.join(secretsDir(inst.paths.dir), s.name), generated: present.has(s.name) })),
    rotated,
  };
}

export interface LintResult {
  /** The linted files, relative to the current directory. */
  files: string[];
  /** Findings; their file is relative to the current directory. */
  findings: Finding[];
  summary: ProjectLint['summary'];
  /** With --fix: what was changed in each file (before the findings above were computed); files relative to the current directory. */
  fixes?: FixResult[];
  /** Allowances in sandstack.yaml (rule, service, reason). */
  allowances: Allowance[];
  /** Why the merged model could not be checked (e.g. Compose rejects the files). */
  mergedError?: string;
  /** The repository root (git toplevel of the current directory, else the current directory), absolute: SARIF's %SRCROOT%. */
  root: string;
}

/**
 * Lints the given files (relative to the current directory; Compose's project directory is the
 * first file's folder), or the project's (compose.files, COMPOSE_FILE, or Compose's discovery), as
 * written and as merged by Compose.
 */
export async function lint(ctx: Context, opts: { files?: string[]; fix?: boolean } = {}): Promise<LintResult> {
  const inst = await resolveInstance(ctx);
  let projectDir: string;
  let files: string[];
  if (opts.files && opts.files.length > 0) {
    files = opts.files.map((f) => path.resolve(ctx.cwd, f));
    for (const f of files) {
      if (!(await exists(f))) throw new SandstackError('SANDSTACK_COMPOSE_NOT_FOUND', `No such compose file: ${f}.`, { hint: 'Check the path; it is relative to the current folder.' });
    }
    projectDir = composeProjectDir(ctx.cwd, files);
  } else {
    const located = await locateComposeFiles(inst.projectDir, inst.loaded.config.compose.files, { env: ctx.env });
    files = located.length > 0 ? located : await composeFilesOf({ projectDir: inst.projectDir, files: [] });
    projectDir = composeProjectDir(inst.projectDir, located);
  }
  const fixes = opts.fix ? await fixFiles(files) : undefined;
  let merged: ComposeModel | undefined;
  let mergedError: string | undefined;
  try {
    // What sandstack would provide at run time: port variables and (ephemeral, unsaved) secrets.
    const ports = inst.loaded.config.ports.publish.map((p) => ({ service: p.service, containerPort: p.port, protocol: 'tcp' as const, hostPort: 0, scheme: 'tcp' as const }));
    const secretValues = await ensureSecrets(inst.paths.dir, inst.loaded.config.secrets, { persist: false });
    const project: ComposeProject = {
      cli: await detectCompose(ctx.env, { cacheFile: composeCacheFile(ctx.home) }),
      projectName: inst.identity.id,
      projectDir,
      files,
      profiles: inst.loaded.config.compose.profiles,
      env: { ...interpolationEnv(inst.identity, ports, inst.paths.dataRoot), ...secretEnv(inst, secretValues) },
      allowEnv: allowedHostEnv(inst),
    };
    merged = await resolveModel(project, ctx.signal);
  } catch (e) {
    if (!(e instanceof SandstackError) || e.code !== 'SANDSTACK_COMPOSE_INVALID') throw e;
    mergedError = e.message;
  }
  const r = await lintProject({ projectDir, files, merged, baseDir: ctx.cwd, config: inst.loaded.config, configFile: inst.loaded.file, stateHome: ctx.home });
  const rel = (f: string) => path.relative(ctx.cwd, f) || f;
  return {
    files: files.map(rel),
    findings: r.findings,
    summary: r.summary,
    fixes: fixes?.map((x) => ({ ...x, file: rel(x.file) })),
    allowances: allowancesOf(inst.loaded.config),
    mergedError,
    root: inst.git?.worktree ?? ctx.cwd,
  };
}
