/**
 * Docker Engine API access (dockerode): list, inspect, events, logs and cleanup of resources that
 * carry sandstack's labels. Nothing here touches a resource without the instance label.
 */
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { SandstackError } from '../errors.js';
import { COMPOSE_SERVICE_LABEL, LABELS } from '../identity/identity.js';

export type DockerClient = Docker;

export function createDocker(): Docker {
  return new Docker();
}

/** Server.Version and API version of the engine, or why it did not answer (10 s at most). */
export async function engineVersion(docker: Docker): Promise<{ version: string; apiVersion: string } | { error: string; cause: unknown }> {
  try {
    const v = await Promise.race([
      docker.version(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref()),
    ]);
    return { version: v.Version, apiVersion: v.ApiVersion };
  } catch (cause) {
    return { error: (cause as Error).message, cause };
  }
}

/** Fails with SANDSTACK_DOCKER_UNAVAILABLE (exit 3) when the engine does not answer. */
export async function assertDockerAvailable(docker: Docker): Promise<{ version: string; apiVersion: string }> {
  const v = await engineVersion(docker);
  if ('error' in v) {
    throw new SandstackError('SANDSTACK_DOCKER_UNAVAILABLE', `The Docker engine is not reachable (${v.error}).`, {
      hint: 'Start the Docker daemon (or run scripts/setup-system.sh); check DOCKER_HOST and access to /var/run/docker.sock.',
      cause: v.cause,
    });
  }
  return v;
}

const logDrivers = new WeakMap<Docker, Promise<string | undefined>>();
/** The engine's default log driver (asked once per engine client; undefined when it cannot be told). */
export function defaultLogDriver(docker: Docker): Promise<string | undefined> {
  let driver = logDrivers.get(docker);
  if (!driver) {
    driver = docker.info().then(
      (i: { LoggingDriver?: string }) => i.LoggingDriver,
      () => undefined,
    );
    logDrivers.set(docker, driver);
  }
  return driver;
}

/** True when the engine has the image (by reference or id). */
export async function imagePresent(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch {
    return false;
  }
}

/**
 * Copies an image from one engine to another (`docker save | docker load`, streamed: nothing is
 * written to disk here). Layers the target already has are kept as they are.
 */
export async function copyImage(from: Docker, to: Docker, ref: string): Promise<void> {
  const tar = await from.getImage(ref).get();
  const res = await to.loadImage(tar, { quiet: true });
  await new Promise<void>((resolve, reject) => to.modem.followProgress(res, (err: Error | null) => (err ? reject(err) : resolve())));
  if (!(await imagePresent(to, ref))) throw new Error(`${ref} is not on the target engine after loading it`);
}

const instanceFilter = (id: string) => ({ label: [`${LABELS.instance}=${id}`] });

export interface ContainerView {
  id: string;
  name: string;
  service: string;
  state: string;
  health?: string;
  exitCode: number;
  oomKilled: boolean;
  restartCount: number;
  startedAt?: string;
  finishedAt?: string;
  healthLog: { exitCode: number; output: string }[];
  ports: { containerPort: number; protocol: string; hostIp: string; hostPort: number }[];
  labels: Record<string, string>;
  /** Image reference the container was created from, and the image ID it runs. */
  image: string;
  imageId: string;
  /** Runs with a TTY (its log is one raw stream, not multiplexed). */
  tty: boolean;
  /** Docker's own mount list (inspect `Mounts`): bind mounts, volumes, tmpfs. */
  mounts: ContainerMount[];
}

export interface ContainerMount {
  /** bind, volume, tmpfs, npipe, ... */
  type: string;
  /** Host path (bind) or the volume's folder on the host. */
  source: string;
  /** Path in the container. */
  destination: string;
  /** Writable (false: read-only). */
  rw: boolean;
  /** Volume name (volumes only). */
  name?: string;
}

function toView(info: Docker.ContainerInspectInfo): ContainerView {
  const ports: ContainerView['ports'] = [];
  for (const [key, bindings] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
    const [port, protocol] = key.split('/');
    for (const b of bindings ?? []) ports.push({ containerPort: Number(port), protocol: protocol ?? 'tcp', hostIp: b.HostIp, hostPort: Number(b.HostPort) });
  }
  const labels = info.Config?.Labels ?? {};
  const health = (info.State as { Health?: { Status: string; Log?: { ExitCode: number; Output: string }[] } }).Health;
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ''),
    service: labels[COMPOSE_SERVICE_LABEL] ?? info.Name.replace(/^\//, ''),
    state: info.State.Status,
    health: health?.Status,
    exitCode: info.State.ExitCode,
    oomKilled: info.State.OOMKilled,
    restartCount: info.RestartCount ?? 0,
    startedAt: info.State.StartedAt,
    finishedAt: info.State.FinishedAt,
    healthLog: (health?.Log ?? []).map((l) => ({ exitCode: l.ExitCode, output: l.Output.trim() })),
    ports,
    labels,
    image: info.Config?.Image ?? '',
    imageId: info.Image,
    tty: info.Config?.Tty === true,
    mounts: (info.Mounts ?? []).map((m) => ({
      type: m.Type ?? '',
      source: m.Source ?? '',
      destination: m.Destination ?? '',
      rw: m.RW !== false,
      ...(m.Name ? { name: m.Name } : {}),
    })),
  };
}

/** Inspects one container. */
export async function inspectContainer(docker: Docker, containerId: string): Promise<ContainerView> {
  return toView(await docker.getContainer(containerId).inspect());
}

/** Inspects every container (running or not) of an instance. */
export async function instanceContainers(docker: Docker, id: string): Promise<ContainerView[]> {
  const list = await docker.listContainers({ all: true, filters: instanceFilter(id) });
  const views = await Promise.all(
    list.map(async (c) => {
      try {
        return toView(await docker.getContainer(c.Id).inspect());
      } catch {
        return undefined; // removed meanwhile
      }
    }),
  );
  return views.filter((v): v is ContainerView => v !== undefined).sort((a, b) => a.service.localeCompare(b.service));
}

export interface LabelledResources {
  containers: { id: string; name: string; labels: Record<string, string>; imageId?: string }[];
  volumes: { name: string; labels: Record<string, string> }[];
  networks: { id: string; name: string; labels: Record<string, string> }[];
}

/**
 * Lists containers, volumes and networks carrying the instance label: of one instance (an id), of
 * any instance (nothing), or matching label filters (`key` or `key=value`, all must hold).
 */
export async function labelledResources(docker: Docker, selector?: string | { labels: string[] }): Promise<LabelledResources> {
  const filters = typeof selector === 'string' ? instanceFilter(selector) : { label: [LABELS.instance, ...(selector?.labels ?? [])] };
  const [containers, volumes, networks] = await Promise.all([
    docker.listContainers({ all: true, filters }),
    docker.listVolumes({ filters }),
    docker.listNetworks({ filters }),
  ]);
  return {
    containers: containers.map((c) => ({ id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, ''), labels: c.Labels ?? {}, imageId: c.ImageID })),
    volumes: (volumes.Volumes ?? []).map((v) => ({ name: v.Name, labels: (v.Labels ?? {}) as Record<string, string> })),
    networks: networks.map((n) => ({ id: n.Id, name: n.Name, labels: n.Labels ?? {} })),
  };
}

export function countResources(r: LabelledResources): number {
  return r.containers.length + r.volumes.length + r.networks.length;
}

/**
 * Takes the shared observability stack's containers (label LABELS.obs) off the instance's networks,
 * so that the networks can be removed. Other foreign containers are left alone.
 */
export async function detachShared(docker: Docker, id: string): Promise<string[]> {
  const detached: string[] = [];
  const networks = await docker.listNetworks({ filters: instanceFilter(id) });
  for (const n of networks) {
    const info = (await docker.getNetwork(n.Id).inspect().catch(() => undefined)) as { Containers?: Record<string, { Name?: string }> } | undefined;
    for (const [containerId, ep] of Object.entries(info?.Containers ?? {})) {
      const labels = (await docker.getContainer(containerId).inspect().catch(() => undefined))?.Config?.Labels ?? {};
      if (labels[LABELS.instance] === id || !(LABELS.obs in labels)) continue;
      await docker.getNetwork(n.Id).disconnect({ Container: containerId, Force: true }).then(
        () => detached.push(`${ep.Name ?? containerId} from ${n.Name}`),
        () => undefined,
      );
    }
  }
  return detached;
}

/**
 * Force-removes every container, network and volume labelled with the instance id (and only those).
 * Returns what could not be removed.
 */
export async function sweepInstance(docker: Docker, id: string, listed?: LabelledResources): Promise<string[]> {
  const problems: string[] = [];
  // A resource that is already gone (404) is what we wanted; anything else is reported.
  const attempt = (what: string, op: Promise<unknown>) =>
    op.catch((e: { statusCode?: number; message: string }) => {
      if (e.statusCode !== 404) problems.push(`${what}: ${e.message}`);
    });
  // What the caller listed just before (destroy), else a listing now; the caller verifies after.
  const [found] = await Promise.all([listed ?? labelledResources(docker, id), detachShared(docker, id).catch(() => undefined)]);
  // All at once: the containers, then (no longer in use) every network and volume.
  await Promise.all(found.containers.map((c) => attempt(`container ${c.name}`, docker.getContainer(c.id).remove({ force: true, v: true }))));
  await Promise.all([
    ...found.networks.map((n) => attempt(`network ${n.name}`, docker.getNetwork(n.id).remove())),
    ...found.volumes.map((v) => attempt(`volume ${v.name}`, docker.getVolume(v.name).remove())),
  ]);
  return problems;
}

/**
 * Removes images by ID at once (force: one image carries a tag per service built from it), adding
 * each removed image's tags (its ID when untagged, with `idWhenUntagged`) to `removed`. An image already gone is not a
 * problem; another failure is a notice naming the image, and its ID is added to `failed`.
 */
async function removeImages(
  docker: Docker,
  images: Docker.ImageInfo[],
  opts: { noprune?: boolean; idWhenUntagged?: boolean; removed: string[]; notices: string[]; failed?: Set<string> },
): Promise<void> {
  await Promise.all(
    images.map((img) => {
      const tags = (img.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      return docker.getImage(img.Id).remove({ force: true, ...(opts.noprune ? { noprune: true } : {}) }).then(
        () => opts.removed.push(...(tags.length || !opts.idWhenUntagged ? tags : [img.Id])),
        (e: { statusCode?: number; message: string }) => {
          if (e.statusCode === 404) return;
          opts.failed?.add(img.Id);
          opts.notices.push(`could not remove image ${tags.join(', ') || img.Id}: ${e.message}`);
        },
      );
    }),
  );
}

/**
 * Removes the images built for an instance: the tagged ones and the untagged layers that carry its
 * label (the classic builder adds one layer per build label), and nothing else, so the layers the
 * build shares with other builds stay as cache. Returns the removed tags (untagged layers are not listed).
 */
export async function removeInstanceImages(docker: Docker, id: string, notices: string[], home?: string): Promise<string[]> {
  const removed: string[] = [];
  const failed = new Set<string>();
  // Only this state home's, when given (gc); destroy of an id removes what carries the id.
  const filters = home ? { label: [...instanceFilter(id).label, `${LABELS.home}=${home}`] } : instanceFilter(id);
  // Each pass removes the images no other labelled image depends on; the next pass, their parents.
  for (let pass = 0; pass < 32; pass++) {
    const list = (await docker.listImages({ all: true, filters })).filter((i) => !failed.has(i.Id));
    if (list.length === 0) break;
    const parents = new Set(list.map((i) => i.ParentId).filter(Boolean));
    const leaves = list.filter((i) => !parents.has(i.Id));
    await removeImages(docker, leaves.length ? leaves : list, { noprune: true, removed, notices, failed });
  }
  return removed;
}

/**
 * Removes, among `candidates` (image IDs; all of this home's when omitted), the content-addressed
 * images of this state home (label LABELS.content) that no container on the engine uses: a shared
 * image goes with its last user. Returns the removed tags.
 */
export async function removeUnusedContentImages(docker: Docker, home: string, notices: string[], candidates?: string[]): Promise<string[]> {
  const images = await docker.listImages({ filters: { label: [`${LABELS.home}=${home}`, LABELS.content] } });
  const pick = images.filter((i) => !candidates || candidates.includes(i.Id));
  if (pick.length === 0) return [];
  const used = new Set((await docker.listContainers({ all: true })).map((c) => c.ImageID));
  const removed: string[] = [];
  await removeImages(docker, pick.filter((img) => !used.has(img.Id)), { idWhenUntagged: true, removed, notices });
  return removed;
}

/**
 * Last `lines` lines of a container's stdout+stderr, demultiplexed. `tty` (from an inspect the
 * caller already made) saves inspecting the container again.
 */
export async function containerLogTail(docker: Docker, containerId: string, lines = 50, tty?: boolean, sinceSeconds?: number): Promise<string[]> {
  try {
    const c = docker.getContainer(containerId);
    const raw = tty ?? (await c.inspect()).Config.Tty;
    const buf = (await c.logs({ stdout: true, stderr: true, tail: lines, follow: false, timestamps: false, ...(sinceSeconds !== undefined ? { since: sinceSeconds } : {}) })) as unknown as Buffer;
    let text: string;
    if (raw) {
      text = buf.toString('utf8');
    } else {
      const out = new PassThrough();
      const chunks: Buffer[] = [];
      out.on('data', (d: Buffer) => chunks.push(d));
      const src = new PassThrough();
      docker.modem.demuxStream(src, out, out);
      await new Promise<void>((resolve) => {
        src.on('end', resolve);
        src.end(buf);
      });
      text = Buffer.concat(chunks).toString('utf8');
    }
    return text.split(/\r?\n/).filter((l) => l.length > 0).slice(-lines);
  } catch {
    return [];
  }
}

/** Container events that can change readiness. */
export const STATE_EVENTS = ['create', 'start', 'restart', 'die', 'kill', 'oom', 'stop', 'destroy', 'health_status', 'pause', 'unpause'] as const;

/** A container event of an instance, as `watchInstanceEvents` passes it on. */
export interface InstanceEvent {
  /** `start`, `die`, `oom`, `health_status: unhealthy`, ... */
  action: string;
  /** The container's id. */
  id: string;
  /** The actor's attributes: the container's labels, `name`, `exitCode` (die), `signal` (kill). */
  attributes: Record<string, string>;
  /** When the engine says it happened (ms since the epoch). */
  at: number;
}

/**
 * Subscribes to Docker events for an instance's containers; `onEvent` is called for each. Returns a
 * function that stops the subscription.
 */
export async function watchInstanceEvents(docker: Docker, id: string, onEvent: (e: InstanceEvent) => void): Promise<() => void> {
  // Only state changes matter; healthchecks alone emit exec_create/exec_start/exec_die every interval.
  const filters = { type: ['container'], event: [...STATE_EVENTS], ...instanceFilter(id) };
  const stream = (await docker.getEvents({ filters: JSON.stringify(filters) })) as unknown as NodeJS.ReadableStream & { destroy?: () => void };
  let buffer = '';
  stream.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (!line) continue;
      let raw: { status?: string; Action?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; time?: number; timeNano?: number };
      try {
        raw = JSON.parse(line);
      } catch {
        continue; // partial or unexpected line
      }
      const action = raw.Action ?? raw.status ?? '';
      if (action.startsWith('exec_')) continue;
      const at = raw.timeNano ? Math.floor(raw.timeNano / 1e6) : raw.time ? raw.time * 1000 : Date.now();
      onEvent({ action, id: raw.Actor?.ID ?? raw.id ?? '', attributes: raw.Actor?.Attributes ?? {}, at });
    }
  });
  stream.on('error', () => undefined);
  return () => stream.destroy?.();
}

export interface ExecResult {
  exitCode: number;
  output: string;
}

/** Runs a command in a running container (no TTY) and returns its exit code and combined output. */
export async function execInContainer(docker: Docker, containerId: string, cmd: string[], timeoutMs = 10_000, env?: Record<string, string>): Promise<ExecResult> {
  const Env = env ? Object.entries(env).map(([k, v]) => `${k}=${v}`) : undefined;
  const exec = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, Tty: false, ...(Env ? { Env } : {}) });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (d: Buffer) => chunks.push(d));
  docker.modem.demuxStream(stream, out, out);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      stream.destroy();
      reject(new Error(`command did not finish within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    stream.on('end', () => {
      clearTimeout(t);
      resolve();
    });
    stream.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  const info = await exec.inspect();
  return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(chunks).toString('utf8').trim() };
}
