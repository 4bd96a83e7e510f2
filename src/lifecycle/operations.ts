/** The instance lifecycle: up, down, destroy. Each rolls back what it started when it fails. */
import { rm, stat } from 'node:fs/promises';
import { composeErrorText, runCompose, type ComposeProject } from '../compose/cli.js';
import { saveGateReport, StageRecorder, withReport, type GateReport } from '../gate/report.js';
import { buildStage, configStage, deadlineFrom, healthyStage, isolationStage, openGateRun, probesStage, startStage, type GateRun } from '../gate/stages.js';
import { assertDockerAvailable, countResources, instanceContainers, labelledResources, removeInstanceImages, removeUnusedContentImages, sweepInstance, type LabelledResources } from '../engine/docker.js';
import { instanceObservability, leaveSharedStack, observabilityStage, removeTargets, type InstanceObservability } from '../observability/wiring.js';
import { isSandstackError, SandstackError } from '../errors.js';
import { gitInfo, removeWorktree } from '../git/git.js';
import { homeLabelValue } from '../identity/identity.js';
import { activeServices } from '../compose/model.js';
import { allowancesOf, type Allowance } from '../policy/check.js';
import type { RenderReport } from '../compose/render.js';
import { stringifyModel } from '../compose/yaml.js';
import { configDirOf, dataRootTemplate, declaredDatasets, instanceDataView, type InstanceDataView } from '../data/shared.js';
import { gatherSecrets } from '../evidence/bundle.js';
import { redactModel } from '../evidence/redact.js';
import { engineNameOf, type InstanceRecord } from '../state/registry.js';
import type { Context } from './context.js';
import { reapedLine, reapFirst } from './reap.js';
import { budgetNotices } from './df.js';
import { rekeyData } from '../data/rekey.js';
import { adoptSnapshotSecrets, planSeed, readSnapshot, seedVolumes, type SeedPlan } from '../data/snapshot.js';
import { assertOwnHome, engineFiles, engineGone, markOrphan, releaseFailedStart, findRecord, handOver, placeOnEngine, placeNewInstance, recordServices, otherHomes, prepareInstance, releaseInstance, removeFromEngine, renderedProject, resolveInstance, type PreparedInstance, type ResolvedInstance } from './instance.js';
import { currentOwner, formatOwner } from '../state/owner.js';
import { expiry, serviceStatuses, type InstanceSummary, type ServiceStatus, summarizeState } from './status.js';

export interface UpResult {
  instance: InstanceSummary;
  services: ServiceStatus[];
  render: RenderReport;
  gate: GateReport;
  timings: { totalMs: number };
  notices: string[];
}

function summary(p: ResolvedInstance, registered: boolean, services: ServiceStatus[], branch?: string, record?: InstanceRecord): InstanceSummary {
  return {
    id: p.identity.id,
    worktree: p.identity.worktree,
    projectDir: p.projectDir,
    kind: p.identity.kind,
    branch: branch ?? p.git?.branch,
    stateDir: p.paths.dir,
    registered,
    state: summarizeState(services, record?.mayFinish),
    engine: record ? engineNameOf(record) : 'local',
    ...(record?.engine ? { engineEndpoint: record.engine.endpoint } : {}),
  };
}

async function rollback(ctx: Context, prepared: PreparedInstance, wipeVolumes: boolean): Promise<void> {
  ctx.onProgress({ type: 'step', message: wipeVolumes ? 'rolling back: removing everything this up created' : 'rolling back: removing containers (volumes kept)' });
  await leaveSharedStack(ctx, prepared.identity.id).catch(() => undefined);
  await runCompose(prepared.project, ['down', '--remove-orphans', '-t', '0', ...(wipeVolumes ? ['-v'] : [])]).catch(() => undefined);
  if (wipeVolumes) {
    await sweepInstance(ctx.engine.docker, prepared.identity.id).catch(() => undefined);
    // Nothing of the instance existed before this up: the images it built go too (build cache stays).
    await removeInstanceImages(ctx.engine.docker, prepared.identity.id, []).catch(() => undefined);
  } else {
    // Containers only: volumes hold the instance's data.
    const left = await labelledResources(ctx.engine.docker, prepared.identity.id).catch(() => undefined);
    for (const c of left?.containers ?? []) await ctx.engine.docker.getContainer(c.id).remove({ force: true }).catch(() => undefined);
  }
  await removeFromEngine(ctx, prepared, prepared.record.leases, { files: prepared.createdRecord }).catch(() => undefined);
  if (prepared.createdRecord) {
    if (await releaseFailedStart(ctx, prepared.identity.id).catch(() => false)) {
      ctx.onProgress({ type: 'notice', message: `engine ${ctx.engine.name} does not answer: what ${prepared.identity.id} made there is listed for \`sandstack gc\`, which removes it when the engine answers again` });
      return;
    }
    await rm(prepared.paths.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export interface StartOptions {
  build?: boolean;
  /** Run the probes and isolation stages after health (the Startability Gate). Default true. */
  gate?: boolean;
  /** Roll back what was started when a stage fails (up: yes; gate --fresh tears down itself). */
  rollbackOnFailure?: boolean;
  /** Seed the instance's fresh volumes from this snapshot before anything starts (`--from`). */
  from?: string;
}

/**
 * Runs config, build, start, healthy (and with the gate, probes and isolation) on the context's
 * instance, recording each stage. On failure, rolls back when asked and rethrows with the report.
 */
export async function startInstance(ctx: Context, rec: StageRecorder, opts: StartOptions & { inst?: ResolvedInstance } = {}): Promise<{ prepared: PreparedInstance; mayFinish: string[] }> {
  const inst = opts.inst ?? (await resolveInstance(ctx));
  await placeNewInstance(ctx, inst);
  await assertDockerAvailable(ctx.engine.docker);
  rec.reaped.push(...(await reapFirst(ctx)));
  // What the engine holds of this id before anything starts: another state home's resources refuse
  // the start; existing volumes mean a rollback must keep them.
  const existing = await labelledResources(ctx.engine.docker, inst.identity.id);
  assertOwnHome(ctx, inst.identity.id, existing);
  const deadline = deadlineFrom(inst.loaded.config.gate.timeoutSeconds);
  const hadVolumes = existing.volumes.length > 0;
  // data.seed applies to a new instance only (its volumes do not exist yet); --from always.
  const from = opts.from ?? (hadVolumes ? undefined : inst.loaded.config.data.seed);
  // A snapshot to seed from is read (and checked) once, before anything is made.
  let snap: Awaited<ReturnType<typeof readSnapshot>> | undefined;
  const prepared = await rec.run('config', async (s) => {
    // A new instance takes the secrets its data was written with (before its own are generated).
    if (from) {
      snap = await readSnapshot(ctx.home, from);
      s.details.snapshot = from;
      if (!hadVolumes) await adoptSnapshotSecrets(inst.paths.dir, snap.dir, snap.manifest, inst.loaded.config.secrets.map((x) => x.name), inst.loaded.config.snapshot.rekey?.secrets);
    }
    return configStage(ctx, s, { persist: true, inst });
  });
  const id = prepared.identity.id;
  try {
    const before = await instanceContainers(ctx.engine.docker, id);
    const running = new Set(before.filter((c) => c.state === 'running').map((c) => c.service));
    if (prepared.services.length > 0 && prepared.services.every((s) => running.has(s))) {
      throw new SandstackError('SANDSTACK_ALREADY_RUNNING', `Instance ${id} is already running.`, {
        hint: 'See it with `sandstack status`, check it with `sandstack gate`; run `sandstack down` first to restart it.',
      });
    }
  } catch (e) {
    if (prepared.createdRecord) await releaseInstance(ctx, id).catch(() => undefined);
    throw e;
  }
  let mayFinish: string[] = [];
  let run: (GateRun & { stop: () => void }) | undefined;
  let seedPlan: SeedPlan | undefined;
  try {
    if (from && snap) {
      const read = snap;
      await rec.run('seed', async (s) => {
        const plan = await planSeed(ctx, prepared, { name: from, ...read });
        seedPlan = plan;
        ctx.onProgress({ type: 'step', message: `seeding ${plan.manifest.volumes.length} volume(s) from snapshot ${from}` });
        const r = await seedVolumes(ctx, prepared, plan);
        s.details.seeded = r;
        const bytes = r.volumes.reduce((n, v) => n + v.bytes, r.dataRoot?.bytes ?? 0);
        s.details.summary = `seeded ${r.volumes.map((v) => v.key).join(', ')}${r.dataRoot ? ' and the data root' : ''} from snapshot ${from} (${(bytes / 1e6).toFixed(1)} MB)`;
      });
    }
    if (opts.build === false) rec.skip('build', '--no-build');
    else await rec.run('build', (s) => buildStage(ctx, s, prepared, deadline));
    // Seeded data written with other values of secrets this instance generated anew: the re-key hook
    // gives it this instance's values before anything else starts.
    const plan = seedPlan;
    if (plan && plan.rekey.length > 0) {
      await rec.run('rekey', async (s) => {
        const r = await rekeyData(ctx, prepared, plan, deadline.at);
        s.details.rekey = r;
        s.details.summary = `re-keyed ${r.secrets.join(', ')} in ${r.service}`;
      });
    }
    // From here to the verdict, one event watch fails the stage running when a container fails.
    run = await openGateRun(ctx, prepared, deadline);
    const gateRun = run;
    const handle = await rec.run('start', (s) => startStage(ctx, s, prepared, gateRun));
    await rec.run('healthy', (s) => healthyStage(ctx, s, prepared, handle, gateRun));
    if (opts.gate === false) {
      rec.skip('probes', '--no-gate');
      rec.skip('isolation', '--no-gate');
    } else {
      await rec.run('probes', (s) => probesStage(ctx, s, prepared, gateRun));
      await rec.run('isolation', (s) => isolationStage(ctx, s, prepared, gateRun));
    }
    await runObservabilityStage(ctx, rec, prepared, gateRun);
    run.stop();
    const policies = gateRun.policies;
    mayFinish = prepared.services.filter((s) => policies[s]?.job === true || !policies[s]?.mustStayUp);
    await recordServices(ctx, id, prepared.services, mayFinish).catch(() => undefined);
  } catch (e) {
    // The failure's log tail may still be on its way: get it before anything is removed. Then stop
    // watching: the rollback's own stops are not failures.
    await run?.watch.settle();
    run?.stop();
    if (opts.rollbackOnFailure !== false) await rollback(ctx, prepared, !hadVolumes);
    if (!(isSandstackError(e) && e.code === 'SANDSTACK_ENGINE_UNREACHABLE') && (await engineGone(ctx))) {
      throw new SandstackError('SANDSTACK_ENGINE_UNREACHABLE', `Engine "${ctx.engine.name}" (${ctx.engine.endpoint}) stopped answering during up of ${id} (the SSH connection dropped?): ${(e as Error).message.split('\n')[0]}`, {
        hint: 'Check the network and the remote host; run `sandstack gc` when it answers again to remove what this up left there, then run up again.',
        details: { engine: ctx.engine.name, endpoint: ctx.engine.endpoint, id },
        cause: e,
      });
    }
    if (ctx.signal?.aborted && !(isSandstackError(e) && e.code === 'SANDSTACK_SERVICE_FAILED')) {
      throw new SandstackError('SANDSTACK_INTERRUPTED', `Interrupted during up of ${id}; ${opts.rollbackOnFailure !== false ? 'everything it started was removed' : 'tearing down'}.`);
    }
    throw e;
  }
  return { prepared, mayFinish };
}

/** observability: wires a started instance to the shared stack (skipped when not enabled). */
export async function runObservabilityStage(ctx: Context, rec: StageRecorder, inst: ResolvedInstance, run?: GateRun): Promise<void> {
  const config = inst.loaded.config.observability;
  if (!config.enabled) rec.skip('observability', 'not enabled (observability.enabled in sandstack.yaml)');
  else {
    await rec.run('observability', async (s) => {
      if (!run) return observabilityStage(ctx, s, inst.identity, config);
      // Still watched: the verdict comes after this stage.
      await run.watch.guard(observabilityStage(ctx, s, inst.identity, config));
      await run.watch.assertSteady();
    });
  }
}

/** Renders, builds, starts, waits until every service is healthy, then runs the gate's checks. */
export async function up(ctx: Context, opts: { build?: boolean; gate?: boolean; from?: string } = {}): Promise<UpResult> {
  const t0 = Date.now();
  const rec = new StageRecorder(ctx.onProgress);
  const inst = await resolveInstance(ctx);
  const identity = { id: inst.identity.id, worktree: inst.identity.worktree, kind: inst.identity.kind };
  // Created with a ttl: owned by this process until started, so a kill half-way makes it an orphan
  // the next sandstack reaps; handed over once started (its ttl then decides).
  const owned = inst.identity.ttlMs !== undefined && !inst.identity.owner && (await findRecord(ctx, identity.id).then(({ record }) => !record || record.owner !== undefined));
  if (owned) inst.identity.owner = formatOwner(currentOwner());
  let prepared: PreparedInstance;
  let mayFinish: string[];
  try {
    ({ prepared, mayFinish } = await startInstance(ctx, rec, { ...opts, inst }));
    if (owned) await handOver(ctx, identity.id);
  } catch (e) {
    const report = rec.report('up', identity, inst.loaded.config.gate.timeoutSeconds);
    if (rec.stages.length > 0) report.reportFile = await saveGateReport(ctx.home, identity.id, report).catch(() => undefined);
    throw withReport(e, report);
  }
  const report = rec.report('up', identity, inst.loaded.config.gate.timeoutSeconds);
  report.reportFile = await saveGateReport(ctx.home, identity.id, report);
  const services = await serviceStatuses(ctx, prepared.identity.id, prepared.services, prepared.record.leases);
  const reaped = rec.reaped.map(reapedLine);
  // The disk budget of the user config: a warning, never a failure (no engine call without a budget).
  const budget = await budgetNotices(ctx);
  return {
    instance: { ...summary(prepared, true, services, prepared.record.branch, { ...prepared.record, mayFinish }), ...expiry(prepared.record) },
    services,
    render: prepared.report,
    gate: report,
    timings: { totalMs: Date.now() - t0 },
    notices: [...reaped, ...prepared.notices, ...budget],
  };
}

export interface SyncResult {
  instance: string;
  engine: string;
  /** The local folders synced (empty on the local engine, which uses them in place). */
  synced: string[];
  durationMs: number;
}

/**
 * `sync`: brings a registered instance's files on its engine up to date with this machine (the
 * worktree, new files of the data root, the secrets, data.shared) and reopens its port forwards
 * (after the SSH connection was lost, say). Nothing to do on the local engine.
 */
export async function syncInstance(ctx: Context): Promise<SyncResult> {
  const { inst, record } = await locate(ctx);
  if (!record) {
    throw new SandstackError('SANDSTACK_INSTANCE_NOT_FOUND', `Instance ${inst.identity.id} is not registered: there is nothing to sync.`, { hint: 'Start it with `sandstack up` (which syncs it).' });
  }
  const files = engineFiles(ctx, inst, declaredDatasets(inst.loaded.config, configDirOf(inst.loaded)));
  const placed = await placeOnEngine(ctx, { ...inst, record, ...(files ? { engineFiles: files } : {}) });
  return { instance: inst.identity.id, engine: ctx.engine.name, synced: placed?.synced ?? [], durationMs: placed?.durationMs ?? 0 };
}

/**
 * destroy of an instance whose remote engine does not answer: the record is given this process as
 * its owner, so once it exits `sandstack gc` (or the next start on that engine) removes the instance
 * there when the engine answers again. Rethrows the error (exit 3) with that said.
 */
async function scheduleForGc(ctx: Context, e: unknown): Promise<never> {
  const id = e instanceof SandstackError && e.code === 'SANDSTACK_ENGINE_UNREACHABLE' ? e.details?.instance : undefined;
  if (typeof id !== 'string' || !(e instanceof SandstackError)) throw e;
  await markOrphan(ctx, id);
  throw new SandstackError(e.code, `${e.message}\nCould not destroy ${id} there now: it is listed for \`sandstack gc\`, which removes it from the engine once it answers again.`, {
    hint: 'Run `sandstack gc` when the engine is back (`sandstack engines` shows whether it answers).',
    details: { ...e.details, scheduledForGc: true },
  });
}

/** Resolves the instance, preferring the registry's record of where its project lives. */
async function locate(ctx: Context): Promise<{ inst: ResolvedInstance; record: Awaited<ReturnType<typeof findRecord>>['record']; notices: string[] }> {
  const inst = await resolveInstance(ctx);
  const { record, notices } = await findRecord(ctx, inst.identity.id);
  if (record && record.projectDir && record.projectDir !== inst.projectDir) {
    inst.projectDir = record.projectDir;
    inst.identity = { ...inst.identity, worktree: record.worktree || inst.identity.worktree };
  }
  return { inst, record, notices };
}

export interface DownResult {
  instance: InstanceSummary;
  stopped: string[];
  notices: string[];
}

/** Stops and removes the containers gracefully; keeps volumes, data and port leases. */
export async function down(ctx: Context): Promise<DownResult> {
  const { inst, record, notices } = await locate(ctx);
  await assertDockerAvailable(ctx.engine.docker);
  const id = inst.identity.id;
  const before = await instanceContainers(ctx.engine.docker, id);
  if (before.length > 0) {
    let project: ComposeProject | undefined = (await renderedProject(ctx, inst, record?.leases ?? []))?.project;
    project ??= (await prepareInstance(ctx, { persist: true, inst })).project;
    ctx.onProgress({ type: 'step', message: `stopping ${before.length} containers of ${id}` });
    await leaveSharedStack(ctx, id);
    const r = await runCompose(project, ['down', '--remove-orphans'], { onLine: (line) => ctx.onProgress({ type: 'log', source: 'compose', line }) });
    if (r.exitCode !== 0) {
      throw new SandstackError('SANDSTACK_COMPOSE_FAILED', `compose down failed for ${id}:\n${composeErrorText(r.stderr)}`, { hint: 'Run it again; `sandstack destroy` removes everything by label.' });
    }
  }
  // Nothing answers on a stopped instance's ports: their forwards (remote engine) close too.
  await removeFromEngine(ctx, inst, record?.leases ?? [], { files: false });
  return { instance: summary(inst, record !== undefined, [], undefined, record), stopped: [...new Set(before.map((c) => c.service))], notices };
}

export interface DestroyResult {
  instance: { id: string; worktree: string; projectDir: string };
  removed: { containers: string[]; volumes: string[]; networks: string[]; images: string[] };
  releasedPorts: number[];
  verified: { containers: number; volumes: number; networks: number };
  worktree: { path: string; removed: boolean; reason?: string } | null;
  timings: { totalMs: number };
  notices: string[];
}

/**
 * Removes containers, volumes, networks, the images built for the instance (unless kept), the data root and state, releases the leases, then checks
 * that nothing labelled with the instance remains (and fails loudly if something does).
 */
export async function destroy(ctx: Context, opts: { keepWorktree?: boolean; keepImages?: boolean; keepSharedImages?: boolean } = {}): Promise<DestroyResult> {
  const t0 = Date.now();
  const { inst, record, notices } = await locate(ctx).catch((e) => scheduleForGc(ctx, e));
  await assertDockerAvailable(ctx.engine.docker);
  const id = inst.identity.id;
  const before: LabelledResources = await labelledResources(ctx.engine.docker, id);
  if (!record && countResources(before) === 0) {
    throw new SandstackError('SANDSTACK_INSTANCE_NOT_FOUND', `There is no instance "${id}" (nothing registered, nothing labelled in Docker).`, {
      hint: 'List instances with `sandstack ls`; pass --instance <id> to pick one.',
    });
  }
  // The instance id is the Compose project name, unique on the engine: destroy removes by id even
  // what another state home created (asked for by id), and says so.
  const foreign = otherHomes(before, homeLabelValue(ctx.home));
  if (foreign.length > 0 && !record) notices.push(`${id} belonged to another sandstack state home (dev.sandstack.home=${foreign.join(', ')}); removed by explicit request.`);
  // The data is being thrown away: remove by label through the Engine API, all containers at once
  // and without waiting out stop timeouts (what `compose down -v -t 0` does, without needing the
  // compose file, which may be broken or gone by now).
  ctx.onProgress({ type: 'step', message: `removing ${id}: ${before.containers.length} containers, ${before.volumes.length} volumes, ${before.networks.length} networks` });
  // (the sweep takes the shared stack's containers off the networks itself)
  await removeTargets(ctx, id);
  const used = opts.keepImages || opts.keepSharedImages ? [] : [...new Set(before.containers.flatMap((c) => (c.imageId ? [c.imageId] : [])))];
  const problems = await sweepInstance(ctx.engine.docker, id, before);
  // The instance's own images, and the shared (content-addressed) ones it was the last user of.
  const images = opts.keepImages ? [] : [...(await removeInstanceImages(ctx.engine.docker, id, notices)), ...(used.length ? await removeUnusedContentImages(ctx.engine.docker, homeLabelValue(ctx.home), notices, used) : [])];
  const after = await labelledResources(ctx.engine.docker, id);
  const verified = { containers: after.containers.length, volumes: after.volumes.length, networks: after.networks.length };
  if (countResources(after) > 0) {
    const names = [...after.containers.map((c) => `container ${c.name}`), ...after.volumes.map((v) => `volume ${v.name}`), ...after.networks.map((n) => `network ${n.name}`)];
    throw new SandstackError('SANDSTACK_DESTROY_INCOMPLETE', `Destroy of ${id} left ${names.length} labelled resource(s): ${names.join(', ')}.`, {
      hint: `Run \`sandstack destroy --instance ${id}\` again; if it persists, remove them with docker rm/volume rm/network rm. The registry entry is kept until they are gone.`,
      details: { remaining: names, problems },
    });
  }
  // The record goes last: a destroy interrupted before it is simply run again.
  let worktree: DestroyResult['worktree'] = null;
  if (record?.createdBy === 'new' && record.worktree) {
    if (opts.keepWorktree) {
      worktree = { path: record.worktree, removed: false, reason: 'kept (--keep-worktree)' };
    } else {
      const git = await gitInfo(record.worktree);
      if (git) {
        const r = await removeWorktree(git.mainWorktree, record.worktree);
        worktree = { path: record.worktree, removed: r.removed, reason: r.removed ? undefined : `kept: ${r.reason ?? 'git refused'} (commit or stash the changes, then git worktree remove)` };
      } else {
        worktree = { path: record.worktree, removed: false, reason: 'not a git worktree any more' };
      }
    }
  }
  // Its forwards and its files on the engine's host (a remote engine), then its state here.
  await removeFromEngine(ctx, inst, record?.leases ?? [], { files: true });
  await rm(inst.paths.dir, { recursive: true, force: true });
  await releaseInstance(ctx, id);
  return {
    instance: { id, worktree: record?.worktree ?? inst.identity.worktree, projectDir: record?.projectDir ?? inst.projectDir },
    removed: {
      containers: before.containers.map((c) => c.name),
      volumes: before.volumes.map((v) => v.name),
      networks: before.networks.map((n) => n.name),
      images,
    },
    releasedPorts: (record?.leases ?? []).map((l) => l.hostPort),
    verified,
    worktree,
    timings: { totalMs: Date.now() - t0 },
    notices,
  };
}

export interface StatusResult {
  instance: InstanceSummary;
  services: ServiceStatus[];
  /** Guardrail findings sandstack.yaml allows (rule, service, written reason). */
  policy: { allowances: Allowance[] };
  /** Shared observability: stack state, scrape targets and links filtered to this instance. */
  observability: InstanceObservability;
  /** The data the instance sees: declared shared datasets (and where Docker shows them mounted), its data root. */
  data: StatusData;
  notices: string[];
}

export interface StatusData {
  shared: (InstanceDataView['shared'][number] & { mountedIn: string[] })[];
  root: InstanceDataView['root'] & { exists: boolean };
}

/** data.shared and the data root of an instance; `mountedIn`: services whose containers mount the dataset as declared (Docker's mount list). */
async function statusData(ctx: Context, inst: ResolvedInstance): Promise<StatusData> {
  const configDir = configDirOf(inst.loaded);
  const datasets = declaredDatasets(inst.loaded.config, configDir);
  const view = instanceDataView(datasets, inst.paths.dataRoot, dataRootTemplate(inst.loaded.config, configDir));
  const containers = datasets.length ? await instanceContainers(ctx.engine.docker, inst.identity.id).catch(() => []) : [];
  const shared = view.shared.map((d) => ({
    ...d,
    mountedIn: [
      ...new Set(
        containers
          .filter((c) => d.services.includes(c.service) && c.mounts.some((m) => m.type === 'bind' && m.destination === d.target && m.source === d.host && (d.mode === 'rw' || !m.rw)))
          .map((c) => c.service),
      ),
    ],
  }));
  const exists = await stat(inst.paths.dataRoot).then(
    (st) => st.isDirectory(),
    () => false,
  );
  return { shared, root: { ...view.root, exists } };
}

export async function status(ctx: Context): Promise<StatusResult> {
  await assertDockerAvailable(ctx.engine.docker);
  const { inst, record, notices } = await locate(ctx);
  const rendered = await renderedProject(ctx, inst, record?.leases ?? []).catch(() => undefined);
  const expected = rendered ? activeServices(rendered.model, inst.loaded.config.compose.profiles) : [];
  const services = await serviceStatuses(ctx, inst.identity.id, expected, record?.leases ?? []);
  const observability = await instanceObservability(ctx, inst.identity, inst.loaded.config);
  const data = await statusData(ctx, inst);
  return { instance: { ...summary(inst, record !== undefined, services, record?.branch, record), ...expiry(record) }, services, policy: { allowances: allowancesOf(inst.loaded.config) }, observability, data, notices };
}

export interface RenderCommandResult {
  instance: { id: string };
  /** The isolated model, secret values redacted (structurally: it stays a valid model). */
  model: unknown;
  /** The same model as YAML that Compose v1 and v2 read back exactly (see compose/yaml.ts). */
  yaml: string;
  report: RenderReport;
  /** The state-dir copy Compose runs (unredacted, 0600), when the instance is registered. */
  file?: string;
  /** How many secret values were replaced by markers. */
  redacted: number;
}

/** The isolated model `up` would run (written to the state dir only if the instance is registered). */
export async function renderInstance(ctx: Context): Promise<RenderCommandResult> {
  const inst = await resolveInstance(ctx);
  const { record } = await findRecord(ctx, inst.identity.id);
  const prepared = await prepareInstance(ctx, { persist: record !== undefined, inst });
  // Never print a secret: the instance's generated secrets and secret-like values become markers,
  // only where they are values of variables, so that labels, names and paths stay intact.
  const secrets = await gatherSecrets(ctx, inst, stringifyModel(prepared.model), prepared.secrets);
  const { model, count } = redactModel(prepared.model, secrets);
  return {
    instance: { id: prepared.identity.id },
    model,
    yaml: stringifyModel(model),
    report: prepared.report,
    file: record ? prepared.paths.rendered : undefined,
    redacted: count,
  };
}
