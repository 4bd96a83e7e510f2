/**
 * Content-addressed images on the real engine with the demo stack: a second instance of the same
 * source (here: another git worktree) reuses the first one's images without calling the builder, a
 * changed source builds new ones, and destroying one of two instances that use an image keeps it for
 * the other; the last user's destroy removes it.
 */
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, expectSandboxClean, git, makeSandbox, type Sandbox } from './helpers.js';

interface BuiltImage {
  service: string;
  image: string;
  result: 'built' | 'reused' | 'tagged';
  hash?: string;
}

function buildImages(upJson: any): BuiltImage[] {
  const build = upJson.gate.stages.find((s: { name: string }) => s.name === 'build');
  return (build.details.images as BuiltImage[]).sort((a, b) => a.service.localeCompare(b.service));
}

async function tagged(image: string): Promise<boolean> {
  return docker
    .getImage(image)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

describe('content-addressed images', () => {
  let sb: Sandbox;
  let second: string;

  beforeAll(async () => {
    sb = await makeSandbox();
    second = path.join(sb.base, 'demo-second');
    await git(sb.repo, ['worktree', 'add', '-q', '-b', 'second', second]);
  }, 120_000);

  afterAll(async () => {
    await sb?.cleanup();
  });

  it('a second instance of the same source reuses every image; a changed source builds new ones; an image stays while an instance uses it', async () => {
    const a = await sb.run(sb.repo, ['up', '--no-gate', '--json']);
    expect(a.exitCode, a.stderr).toBe(0);
    const first = buildImages(a.json);
    expect(first.map((i) => i.service)).toEqual(['backend', 'db', 'worker-backtest', 'worker-ingest']);
    for (const i of first) expect(i.hash).toMatch(/^[0-9a-f]{20}$/);
    // backend and the workers build the same context: one content, one hash.
    expect(new Set(first.filter((i) => i.service !== 'db').map((i) => i.hash)).size).toBe(1);

    // The other worktree, same commit: nothing is built.
    const b = await sb.run(second, ['up', '--no-gate', '--json']);
    expect(b.exitCode, b.stderr).toBe(0);
    const reused = buildImages(b.json);
    expect(reused.map((i) => [i.service, i.result, i.image])).toEqual(first.map((i) => [i.service, 'reused', i.image]));
    const stage = b.json.gate.stages.find((s: { name: string }) => s.name === 'build');
    expect(stage.details.summary).toMatch(/^reused /);
    // Both instances run the very same image.
    const imageOf = async (id: string) => (await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${id}`, 'com.docker.compose.service=backend'] } }))[0]!.ImageID;
    expect(await imageOf(a.json.instance.id)).toBe(await imageOf(b.json.instance.id));

    // Destroying one of the two users keeps the shared images for the other.
    const da = await sb.run(sb.repo, ['destroy', '--json']);
    expect(da.exitCode, da.stderr).toBe(0);
    for (const i of first) expect(await tagged(i.image)).toBe(true);

    // A change in the backend's context (in the second worktree) gives it a new address and a build;
    // db's content did not change, so db is reused.
    await appendFile(path.join(second, 'app', 'backend.py'), '\n# changed in the second worktree\n');
    // (A third instance of the unchanged source keeps the first images in use meanwhile.)
    const c = await sb.run(sb.repo, ['up', '--no-gate', '--json', '--instance', 'unchanged']);
    expect(c.exitCode, c.stderr).toBe(0);
    const db = await sb.run(second, ['destroy', '--json']);
    expect(db.exitCode, db.stderr).toBe(0);
    const d = await sb.run(second, ['up', '--no-gate', '--json']);
    expect(d.exitCode, d.stderr).toBe(0);
    const rebuilt = buildImages(d.json);
    const backend = rebuilt.find((i) => i.service === 'backend')!;
    expect(backend.result).toBe('built');
    expect(backend.hash).not.toBe(first.find((i) => i.service === 'backend')!.hash);
    expect(rebuilt.find((i) => i.service === 'db')!.result).toBe('reused');

    // The last users' destroys remove the shared images.
    for (const [cwd, args] of [
      [sb.repo, ['destroy', '--json', '--instance', 'unchanged']],
      [second, ['destroy', '--json']],
    ] as const) {
      const r = await sb.run(cwd, [...args]);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    for (const i of [...first, ...rebuilt]) expect(await tagged(i.image)).toBe(false);
    await expectSandboxClean(sb);
  }, 600_000);
});
