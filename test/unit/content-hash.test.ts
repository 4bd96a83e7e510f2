import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addressOf, baseImages, contentAddresses, contentTag, repoSlug, type ImageAddress } from '../../src/compose/content-hash.js';
import type { ComposeService } from '../../src/compose/model.js';

let dir: string;
let ctx: string;
const ids: Record<string, string> = { 'python:3.12-slim': 'sha256:aaa', 'debian:bookworm': 'sha256:bbb' };
const opts = { project: 'demo', home: 'h1', imageId: async (ref: string) => ids[ref] };

async function hashOf(svc: ComposeService, o = opts): Promise<string> {
  const a: ImageAddress = await addressOf('backend', svc, o);
  if (!('hash' in a)) throw new Error(`no hash: ${a.reason}`);
  return a.hash;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'content-hash-'));
  ctx = path.join(dir, 'app');
  await mkdir(path.join(ctx, 'src'), { recursive: true });
  await mkdir(path.join(ctx, 'node_modules', 'x'), { recursive: true });
  await writeFile(path.join(ctx, 'Dockerfile'), 'ARG BASE=python:3.12-slim\nFROM ${BASE} AS build\nCOPY . /app\nFROM build\n');
  await writeFile(path.join(ctx, '.dockerignore'), 'node_modules\n*.log\n!keep.log\n');
  await writeFile(path.join(ctx, 'src', 'main.py'), 'print("hi")\n');
  await writeFile(path.join(ctx, 'node_modules', 'x', 'index.js'), 'x');
  await writeFile(path.join(ctx, 'debug.log'), 'noise');
  await writeFile(path.join(ctx, 'keep.log'), 'kept');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('content hash of a build', () => {
  it('is the same for the same content in another folder (another worktree)', async () => {
    const a = await hashOf({ build: { context: ctx } });
    const other = path.join(dir, 'other');
    await cp(ctx, other, { recursive: true });
    expect(await hashOf({ build: { context: other } })).toBe(a);
    expect(a).toMatch(/^[0-9a-f]{20}$/);
  });

  it('does not change when an ignored file changes, and changes when a sent file does', async () => {
    const a = await hashOf({ build: { context: ctx } });
    await writeFile(path.join(ctx, 'node_modules', 'x', 'index.js'), 'changed');
    await writeFile(path.join(ctx, 'debug.log'), 'more noise');
    await writeFile(path.join(ctx, 'new.log'), 'new noise');
    expect(await hashOf({ build: { context: ctx } })).toBe(a);
    // An exception (!keep.log) is sent, so it counts.
    await writeFile(path.join(ctx, 'keep.log'), 'changed');
    const b = await hashOf({ build: { context: ctx } });
    expect(b).not.toBe(a);
    await writeFile(path.join(ctx, 'src', 'main.py'), 'print("bye")\n');
    const c = await hashOf({ build: { context: ctx } });
    expect(c).not.toBe(b);
    await writeFile(path.join(ctx, 'src', 'new.py'), '');
    expect(await hashOf({ build: { context: ctx } })).not.toBe(c);
  });

  it('changes with the executable bit, the Dockerfile and the .dockerignore', async () => {
    const a = await hashOf({ build: { context: ctx } });
    await chmod(path.join(ctx, 'src', 'main.py'), 0o755);
    const b = await hashOf({ build: { context: ctx } });
    expect(b).not.toBe(a);
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM python:3.12-slim\nCOPY . /srv\n');
    const c = await hashOf({ build: { context: ctx } });
    expect(c).not.toBe(b);
    // Un-ignoring node_modules sends it.
    await writeFile(path.join(ctx, '.dockerignore'), '*.log\n');
    expect(await hashOf({ build: { context: ctx } })).not.toBe(c);
  });

  it('changes with a build arg, the target, the platform and the dockerfile chosen; not with arg order', async () => {
    const a = await hashOf({ build: { context: ctx, args: { A: '1', B: '2' } } });
    expect(await hashOf({ build: { context: ctx, args: { B: '2', A: '1' } } })).toBe(a);
    expect(await hashOf({ build: { context: ctx, args: { A: '1', B: '3' } } })).not.toBe(a);
    expect(await hashOf({ build: { context: ctx, args: { A: '1', B: '2' }, target: 'build' } })).not.toBe(a);
    expect(await hashOf({ build: { context: ctx, args: { A: '1', B: '2' } }, platform: 'linux/arm64' })).not.toBe(a);
    await writeFile(path.join(ctx, 'Dockerfile.dev'), 'FROM debian:bookworm\n');
    expect(await hashOf({ build: { context: ctx, dockerfile: 'Dockerfile.dev', args: { A: '1', B: '2' } } })).not.toBe(a);
  });

  it('changes when a base image is replaced locally, and with the state home', async () => {
    const a = await hashOf({ build: { context: ctx } });
    expect(await hashOf({ build: { context: ctx } }, { ...opts, imageId: async (r) => (r === 'python:3.12-slim' ? 'sha256:new' : undefined) })).not.toBe(a);
    expect(await hashOf({ build: { context: ctx } }, { ...opts, home: 'h2' })).not.toBe(a);
    // A build arg that picks another base image.
    expect(await hashOf({ build: { context: ctx, args: { BASE: 'debian:bookworm' } } })).not.toBe(a);
  });

  it('gives no address to a context that cannot be read (the build stage reports it)', async () => {
    const r = await contentAddresses(
      {
        services: {
          web: { build: { context: path.join(dir, 'missing') } },
          api: { build: { context: ctx, additional_contexts: { assets: path.join(dir, 'no-assets') } } as ComposeService['build'] },
          db: { image: 'postgres' },
        },
      },
      opts,
    );
    expect(Object.keys(r).sort()).toEqual(['api', 'web']);
    expect(r.web).toMatchObject({ service: 'web', reason: expect.stringContaining('no Dockerfile') });
    expect(r.api).toMatchObject({ service: 'api', reason: expect.stringContaining('could not be read') });
  });

  it('gives no address to a remote context or a no_cache build', async () => {
    expect(await addressOf('web', { build: { context: 'https://github.com/example/app.git#main' } }, opts)).toEqual({ service: 'web', reason: 'a remote build context' });
    expect(await addressOf('web', { build: { context: ctx, no_cache: true } as ComposeService['build'] }, opts)).toMatchObject({ reason: 'build.no_cache' });
  });
});

describe('base images and tags', () => {
  it('expands ARGs before the first FROM (build args win) and skips stages and scratch', () => {
    const df = 'ARG BASE=python:3.12\nARG TAG\nFROM ${BASE} AS deps\nFROM deps AS test\nFROM alpine:${TAG:-3.19}\nFROM scratch\nCOPY --from=deps /x /x\n';
    expect(baseImages(df, {})).toEqual(['python:3.12', 'alpine:3.19']);
    expect(baseImages(df, { BASE: 'node:22', TAG: '3.20' })).toEqual(['node:22', 'alpine:3.20']);
  });

  it('makes valid repository names', () => {
    expect(repoSlug('My Project!')).toBe('my-project');
    expect(repoSlug('__')).toBe('project');
    expect(contentTag('KTRDR', 'worker_backtest', 'abc')).toBe('sandstack/ktrdr-worker_backtest:abc');
  });
});
