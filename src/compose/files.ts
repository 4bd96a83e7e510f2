/** Which compose files a project uses: configured ones, COMPOSE_FILE, or Compose's own discovery. */
import { access } from 'node:fs/promises';
import path from 'node:path';
import { SandstackError } from '../errors.js';
import type { ComposeProject } from './cli.js';

export const DEFAULT_COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

/** Returns the absolute compose files to pass with -f, or [] for Compose's own discovery. */
export async function locateComposeFiles(projectDir: string, configured: string[] | undefined): Promise<string[]> {
  const check = async (f: string) => {
    try {
      await access(f);
      return true;
    } catch {
      return false;
    }
  };
  if (configured && configured.length > 0) {
    const files = configured.map((f) => path.resolve(projectDir, f));
    for (const f of files) {
      if (!(await check(f))) {
        throw new SandstackError('SANDSTACK_COMPOSE_NOT_FOUND', `Compose file ${f} does not exist (listed in compose.files of sandstack.yaml).`, {
          hint: 'Fix the path in compose.files; paths are relative to sandstack.yaml.',
        });
      }
    }
    return files;
  }
  for (const name of DEFAULT_COMPOSE_FILES) if (await check(path.join(projectDir, name))) return [];
  throw new SandstackError('SANDSTACK_COMPOSE_NOT_FOUND', `No compose file in ${projectDir} (looked for ${DEFAULT_COMPOSE_FILES.join(', ')}).`, {
    hint: 'Run sandstack in the folder of your Compose project, or list the files under compose.files in sandstack.yaml.',
  });
}

/** The files Compose reads for a project: the configured ones, or what its discovery finds. */
export async function composeFilesOf(project: Pick<ComposeProject, 'projectDir' | 'files'>): Promise<string[]> {
  if (project.files.length > 0) return project.files;
  const out: string[] = [];
  for (const name of DEFAULT_COMPOSE_FILES) {
    const f = path.join(project.projectDir, name);
    if (await access(f).then(() => true, () => false)) {
      out.push(f);
      const override = f.replace(/\.(ya?ml)$/, '.override.$1');
      if (await access(override).then(() => true, () => false)) out.push(override);
      break;
    }
  }
  return out;
}
