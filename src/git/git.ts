/** Thin git helpers (through the git CLI, via execa). */
import path from 'node:path';
import { execa } from 'execa';
import { SandstackError } from '../errors.js';

async function git(cwd: string, args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const r = await execa('git', args, { cwd, reject: false, stdin: 'ignore' });
    return { ok: r.exitCode === 0, stdout: String(r.stdout).trim(), stderr: String(r.stderr).trim() };
  } catch (cause) {
    throw new SandstackError('SANDSTACK_GIT_FAILED', `Cannot run git: ${(cause as Error).message}`, {
      hint: 'Install git (apt-get install git).',
      cause,
    });
  }
}

export interface GitInfo {
  /** Top-level folder of the current worktree. */
  worktree: string;
  /** Top-level folder of the main worktree (the repository itself). */
  mainWorktree: string;
  branch?: string;
  commit?: string;
  dirty: boolean;
}

/** Returns git facts for `cwd`, or undefined when `cwd` is not inside a git worktree. */
export async function gitInfo(cwd: string): Promise<GitInfo | undefined> {
  const top = await git(cwd, ['rev-parse', '--show-toplevel']);
  if (!top.ok) return undefined;
  const common = await git(cwd, ['rev-parse', '--path-format=absolute', '--git-common-dir']);
  const mainWorktree = common.ok ? path.dirname(common.stdout) : top.stdout;
  const branch = await git(cwd, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
  const commit = await git(cwd, ['rev-parse', '--verify', '--quiet', 'HEAD']);
  const status = await git(cwd, ['status', '--porcelain']);
  return {
    worktree: top.stdout,
    mainWorktree,
    branch: branch.ok && branch.stdout ? branch.stdout : undefined,
    commit: commit.ok && commit.stdout ? commit.stdout : undefined,
    dirty: status.ok && status.stdout.length > 0,
  };
}

export async function branchExists(repo: string, branch: string): Promise<boolean> {
  return (await git(repo, ['show-ref', '--verify', '--quiet', `refs/heads/${branch}`])).ok;
}

export async function isValidBranchName(repo: string, branch: string): Promise<boolean> {
  return (await git(repo, ['check-ref-format', '--branch', branch])).ok;
}

export async function addWorktree(repo: string, worktree: string, branch: string, base: string): Promise<void> {
  const r = await git(repo, ['worktree', 'add', '-b', branch, worktree, base]);
  if (!r.ok) {
    throw new SandstackError('SANDSTACK_GIT_FAILED', `git worktree add failed: ${r.stderr}`, {
      hint: 'Check that the base ref exists and the folder is writable.',
    });
  }
}

/** Removes a worktree without forcing: a worktree with uncommitted changes is kept and reported. */
export async function removeWorktree(repo: string, worktree: string, opts: { force?: boolean } = {}): Promise<{ removed: boolean; reason?: string }> {
  const r = await git(repo, ['worktree', 'remove', ...(opts.force ? ['--force'] : []), worktree]);
  if (r.ok) return { removed: true };
  return { removed: false, reason: r.stderr };
}

export async function deleteBranch(repo: string, branch: string): Promise<void> {
  await git(repo, ['branch', '-D', branch]);
}
