/** gitInfo against real git repositories: branch, commit, dirty, detached HEAD, linked worktrees, no repository. */
import { mkdtemp, mkdir, rm, writeFile, realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitInfo } from '../../src/git/git.js';

const ENV = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
const git = (cwd: string, ...args: string[]) => execa('git', args, { cwd, env: ENV });

let base: string;
let repo: string;
beforeAll(async () => {
  base = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sandstack-git-')));
  repo = path.join(base, 'repo');
  await mkdir(path.join(repo, 'sub'), { recursive: true });
  await git(repo, 'init', '-q', '-b', 'main');
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('gitInfo', () => {
  it('an unborn branch: the branch, no commit, dirty once a file is there', async () => {
    const clean = await gitInfo(repo);
    expect(clean).toEqual({ worktree: repo, mainWorktree: repo, branch: 'main', commit: undefined, dirty: false });
    await writeFile(path.join(repo, 'a.txt'), 'a\n');
    expect((await gitInfo(path.join(repo, 'sub')))?.dirty).toBe(true);
  });

  it('after a commit: its full hash, clean, dirty again on a change to a tracked file', async () => {
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-qm', 'one');
    const head = (await git(repo, 'rev-parse', 'HEAD')).stdout.trim();
    const info = await gitInfo(path.join(repo, 'sub'));
    expect(info).toEqual({ worktree: repo, mainWorktree: repo, branch: 'main', commit: head, dirty: false });
    await writeFile(path.join(repo, 'a.txt'), 'changed\n');
    expect((await gitInfo(repo))?.dirty).toBe(true);
    await git(repo, 'checkout', '-q', '--', 'a.txt');
  });

  it('a detached HEAD has a commit and no branch', async () => {
    const head = (await git(repo, 'rev-parse', 'HEAD')).stdout.trim();
    await git(repo, 'checkout', '-q', '--detach');
    const info = await gitInfo(repo);
    expect(info?.branch).toBeUndefined();
    expect(info?.commit).toBe(head);
    await git(repo, 'checkout', '-q', 'main');
  });

  it('a linked worktree names itself and the main worktree, with its own branch', async () => {
    const wt = path.join(base, 'repo--feature');
    await git(repo, 'worktree', 'add', '-q', '-b', 'feature/x', wt);
    const info = await gitInfo(wt);
    expect(info).toMatchObject({ worktree: wt, mainWorktree: repo, branch: 'feature/x', dirty: false });
  });

  it('a folder outside any repository gives undefined', async () => {
    const outside = path.join(base, 'plain');
    await mkdir(outside);
    expect(await gitInfo(outside)).toBeUndefined();
  });
});
