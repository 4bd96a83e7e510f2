/**
 * Compose detection and its cross-process cache, with fake `docker` / `docker-compose` executables
 * on PATH (no Docker needed). Each "process" is a fresh import of the module (vi.resetModules), so
 * only the cache file carries an answer from one to the next, as between two sandstack commands.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

type Detect = typeof import('../../src/compose/cli.js').detectCompose;

let dir: string;
let bin: string;
let dockerConfig: string;
let cacheFile: string;
let env: NodeJS.ProcessEnv;

async function script(file: string, body: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
}

/** A fake Compose that answers `version --short` with the contents of `<file>.version`. */
async function fakeCompose(file: string, version: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(`${file}.version`, version);
  await script(file, `if [ "$1" = version ]; then cat "${file}.version"; exit 0; fi\nexit 2`);
}

/** The v2 plugin as the docker CLI finds it in ~/.docker/cli-plugins (here $DOCKER_CONFIG/cli-plugins). */
const pluginFile = () => path.join(dockerConfig, 'cli-plugins', 'docker-compose');

/** A new process: the module loaded afresh, so nothing is remembered but the cache file. */
async function freshDetect(): Promise<Detect> {
  vi.resetModules();
  return (await import('../../src/compose/cli.js')).detectCompose;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sandstack-compose-detect-'));
  bin = path.join(dir, 'bin');
  dockerConfig = path.join(dir, 'docker-config');
  cacheFile = path.join(dir, 'home', 'cache', 'compose-cli.json');
  // A docker CLI that runs the compose plugin when it exists, as the real one does.
  await script(
    path.join(bin, 'docker'),
    `if [ "$1" = compose ] && [ -x "$DOCKER_CONFIG/cli-plugins/docker-compose" ]; then shift; exec "$DOCKER_CONFIG/cli-plugins/docker-compose" "$@"; fi\necho "docker: '$1' is not a docker command." >&2\nexit 1`,
  );
  await fakeCompose(path.join(bin, 'docker-compose'), '1.29.2');
  await mkdir(path.join(dir, 'home'), { recursive: true });
  env = { PATH: `${bin}:/usr/bin:/bin`, DOCKER_CONFIG: dockerConfig, HOME: path.join(dir, 'home') };
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('detectCompose', () => {
  it('finds v1 when only docker-compose 1.x exists, and prefers the v2 plugin when both exist', async () => {
    expect(await (await freshDetect())(env)).toEqual({ variant: 'v1', argv: ['docker-compose'], version: '1.29.2' });
    await fakeCompose(pluginFile(), 'v2.26.1');
    expect(await (await freshDetect())(env)).toEqual({ variant: 'v2', argv: ['docker', 'compose'], version: '2.26.1' });
  });

  it('answers from the cache in a later process while nothing changed', async () => {
    expect((await (await freshDetect())(env, { cacheFile })).version).toBe('1.29.2');
    expect(JSON.parse(await readFile(cacheFile, 'utf8'))).toMatchObject({ variant: 'v1', argv: ['docker-compose'] });
    // Only what the fake prints changes, not its executable: the cached answer stands.
    await writeFile(path.join(bin, 'docker-compose.version'), '1.29.3');
    expect((await (await freshDetect())(env, { cacheFile })).version).toBe('1.29.2');
  });

  it('drops a cached v1 answer when the v2 plugin appears beside it', async () => {
    expect((await (await freshDetect())(env, { cacheFile })).variant).toBe('v1');
    await fakeCompose(pluginFile(), '2.26.1');
    const cli = await (await freshDetect())(env, { cacheFile });
    expect(cli).toEqual({ variant: 'v2', argv: ['docker', 'compose'], version: '2.26.1' });
    // ... and the cache now holds the new answer.
    expect(JSON.parse(await readFile(cacheFile, 'utf8'))).toMatchObject({ variant: 'v2', version: '2.26.1' });
  });

  it('drops a cached v2 answer when the plugin is removed', async () => {
    await fakeCompose(pluginFile(), '2.26.1');
    expect((await (await freshDetect())(env, { cacheFile })).variant).toBe('v2');
    await rm(pluginFile());
    expect(await (await freshDetect())(env, { cacheFile })).toEqual({ variant: 'v1', argv: ['docker-compose'], version: '1.29.2' });
  });

  it('drops a cached answer when docker-compose on PATH is replaced (v1 upgraded to a v2 binary)', async () => {
    expect((await (await freshDetect())(env, { cacheFile })).variant).toBe('v1');
    await script(path.join(bin, 'docker-compose'), 'echo 2.26.1 # the Go binary, standalone');
    expect(await (await freshDetect())(env, { cacheFile })).toEqual({ variant: 'v2', argv: ['docker-compose'], version: '2.26.1' });
  });

  it('ignores a cache file in the old format', async () => {
    await mkdir(path.dirname(cacheFile), { recursive: true });
    await writeFile(cacheFile, JSON.stringify({ argv: ['docker-compose'], variant: 'v1', version: '1.0.0', executable: path.join(bin, 'docker-compose'), size: 1, mtimeMs: 1, checkedAt: Date.now() }));
    await fakeCompose(pluginFile(), '2.26.1');
    expect((await (await freshDetect())(env, { cacheFile })).variant).toBe('v2');
  });

  it('fresh probes again even when the process and the cache remember an answer', async () => {
    const detect = await freshDetect();
    expect((await detect(env, { cacheFile })).version).toBe('1.29.2');
    await writeFile(path.join(bin, 'docker-compose.version'), '1.29.3');
    expect((await detect(env, { cacheFile })).version).toBe('1.29.2');
    expect((await detect(env, { cacheFile, fresh: true })).version).toBe('1.29.3');
    expect((await (await freshDetect())(env, { cacheFile })).version).toBe('1.29.3');
  });

  it('remembers one answer per environment within a process', async () => {
    const detect = await freshDetect();
    const otherConfig = path.join(dir, 'other-config');
    await fakeCompose(path.join(otherConfig, 'cli-plugins', 'docker-compose'), '2.26.1');
    expect((await detect(env)).variant).toBe('v1');
    expect((await detect({ ...env, DOCKER_CONFIG: otherConfig })).variant).toBe('v2');
  });

  it('SANDSTACK_COMPOSE forces a command (a path, or whitespace-separated argv) and bypasses the cache', async () => {
    const v1 = path.join(dir, 'opt', 'bin', 'docker-compose-v1');
    await fakeCompose(v1, '1.29.2');
    await fakeCompose(pluginFile(), '2.26.1');
    const detect = await freshDetect();
    expect(await detect({ ...env, SANDSTACK_COMPOSE: v1 }, { cacheFile })).toEqual({ variant: 'v1', argv: [v1], version: '1.29.2' });
    expect(await detect({ ...env, SANDSTACK_COMPOSE: ` ${path.join(bin, 'docker')}  compose ` }, { cacheFile })).toEqual({
      variant: 'v2',
      argv: [path.join(bin, 'docker'), 'compose'],
      version: '2.26.1',
    });
    await expect(readFile(cacheFile, 'utf8')).rejects.toThrow();
    await expect(detect({ ...env, SANDSTACK_COMPOSE: path.join(dir, 'missing') })).rejects.toMatchObject({ code: 'SANDSTACK_COMPOSE_UNAVAILABLE' });
  });
});

describe('detectCompose when nothing usable answers', () => {
  it('says what each candidate did instead of calling a broken Compose "not found"', async () => {
    await script(path.join(bin, 'docker-compose'), 'echo "ModuleNotFoundError: No module named compose" >&2\nexit 1');
    const err = await (await freshDetect())(env).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toBe('SANDSTACK_COMPOSE_UNAVAILABLE');
    expect(err?.message).toContain('docker-compose: `version` exited 1: ModuleNotFoundError: No module named compose');
    expect(err?.message).toMatch(/docker compose: `version` exited 1/);
  });

  it('names a missing SANDSTACK_COMPOSE command as not found', async () => {
    const err = await (await freshDetect())({ ...env, SANDSTACK_COMPOSE: path.join(dir, 'nope') }).catch((e: { message: string }) => e);
    expect((err as { message: string }).message).toContain(`${path.join(dir, 'nope')}: not found`);
  });
});
