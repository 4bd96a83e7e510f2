/**
 * Per-instance data roots: `data.root.template` is copied into a new instance's data root
 * (`instancePaths(home, id).dataRoot`, ${SANDSTACK_DATA_ROOT} in compose files) once, when the
 * instance is created, so each instance writes its own files. Copy-on-write (reflink) where the
 * filesystem allows it, a plain copy otherwise; modes are kept.
 */
import { constants } from 'node:fs';
import { cp, lstat, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';

export interface SeedResult {
  template: string;
  dataRoot: string;
  files: number;
  bytes: number;
  /** reflink: every file is a copy-on-write clone; copy: the bytes were copied. */
  method: 'reflink' | 'copy';
  durationMs: number;
}

/** Regular files and their bytes under `dir` (symlinks and special files not counted). */
export async function countFiles(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const e of (await readdir(dir, { recursive: true })) as string[]) {
    const st = await lstat(path.join(dir, e)).catch(() => undefined);
    if (st?.isFile()) {
      files++;
      bytes += st.size;
    }
  }
  return { files, bytes };
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** Errors of a forced clone that mean "this filesystem (or this pair of folders) cannot reflink". */
const NO_REFLINK = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY', 'EPERM', 'EBADF']);

async function copyTree(from: string, to: string, mode: number): Promise<void> {
  // verbatimSymlinks: a relative link stays relative (inside the copy), never pointing back into the template.
  await cp(from, to, { recursive: true, mode, preserveTimestamps: true, verbatimSymlinks: true, errorOnExist: true, force: false });
}

/**
 * Seeds `dataRoot` from `template` when it does not exist yet; returns undefined when it already
 * does (an instance's data root is seeded once, at creation). The copy is made beside it and renamed
 * into place, so an interrupted seed never leaves a half-filled data root behind.
 */
export async function seedDataRoot(template: string, dataRoot: string): Promise<SeedResult | undefined> {
  if (await exists(dataRoot)) return undefined;
  const t0 = Date.now();
  const { files, bytes } = await countFiles(template);
  const staging = `${dataRoot}.seeding-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  let method: SeedResult['method'] = 'copy';
  try {
    if (files > 0) {
      try {
        await copyTree(template, staging, constants.COPYFILE_FICLONE_FORCE);
        method = 'reflink';
      } catch (e) {
        if (!NO_REFLINK.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
        await rm(staging, { recursive: true, force: true });
      }
    }
    // COPYFILE_FICLONE: a clone where possible, else Node copies the bytes.
    if (method === 'copy') await copyTree(template, staging, constants.COPYFILE_FICLONE);
    await rename(staging, dataRoot);
  } catch (e) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  return { template, dataRoot, files, bytes, method, durationMs: Date.now() - t0 };
}

export function seedLine(r: SeedResult, shownTemplate = r.template): string {
  const mb = r.bytes / (1024 * 1024);
  return `data root seeded from ${shownTemplate} (${r.files} file${r.files === 1 ? '' : 's'}, ${mb < 0.1 && r.bytes > 0 ? mb.toFixed(2) : mb.toFixed(1)} MB, ${r.method})`;
}
