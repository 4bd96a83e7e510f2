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

/**
 * Returns git facts for `cwd`, or undefined when `cwd` is not inside a git worktree. Two git
 * processes, run at once: `rev-parse` for the folders, `status --porcelain=v2 --branch` for the
 * branch (`# branch.head`), the commit (`# branch.oid`) and whether anything changed.
 */
export async function gitInfo(cwd: string): Promise<GitInfo | undefined> {
  const [where, status] = await Promise.all([
    git(cwd, ['rev-parse', '--path-format=absolute', '--show-toplevel', '--git-common-dir']),
    git(cwd, ['status', '--porcelain=v2', '--branch']),
  ]);
  if (!where.ok) return undefined;
  const [top, common] = where.stdout.split(/\r?\n/);
  if (!top) return undefined;
  const lines = status.ok ? status.stdout.split(/\r?\n/) : [];
  const header = (name: string): string | undefined => lines.find((l) => l.startsWith(`# branch.${name} `))?.slice(`# branch.${name} `.length).trim();
  const head = header('head');
  const oid = header('oid');
  return {
    worktree: top,
    mainWorktree: common ? path.dirname(common) : top,
    branch: head && head !== '(detached)' ? head : undefined,
    commit: oid && /^[0-9a-f]{7,}$/.test(oid) ? oid : undefined,
    dirty: lines.some((l) => l.length > 0 && !l.startsWith('#')),
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
