/**
 * The data an instance sees: the shared datasets declared under data.shared (the same host path for
 * every instance, read-only unless declared rw) and its own data root (seeded from data.root).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { SandstackConfig } from '../config/schema.js';
import { SandstackError } from '../errors.js';

/** A dataset of data.shared with its host path resolved. */
export interface DeclaredDataset {
  name: string;
  /** Absolute host path (relative ones resolved against the folder of sandstack.yaml). */
  host: string;
  services: string[];
  /** Path in the container. */
  target: string;
  mode: 'ro' | 'rw';
}

/** The folder relative paths of sandstack.yaml resolve against (its own folder; else the project's). */
export function configDirOf(loaded: { file?: string; projectDir: string }): string {
  return loaded.file ? path.dirname(loaded.file) : loaded.projectDir;
}

/** data.shared with every host path made absolute and every target normalised. */
export function declaredDatasets(config: Pick<SandstackConfig, 'data'>, configDir: string): DeclaredDataset[] {
  return config.data.shared.map((d) => ({
    name: d.name,
    host: path.resolve(configDir, d.host),
    services: [...d.services],
    target: path.posix.normalize(d.target).replace(/(.)\/$/, '$1'),
    mode: d.mode,
  }));
}

/** data.root.template as an absolute path, or undefined when none is configured. */
export function dataRootTemplate(config: Pick<SandstackConfig, 'data'>, configDir: string): string | undefined {
  const t = config.data.root?.template;
  return t ? path.resolve(configDir, t) : undefined;
}

/**
 * Checks that every host path data.shared and data.root name exists (before anything starts):
 * SANDSTACK_CONFIG_INVALID naming the dataset (or the template) and the path otherwise.
 */
export async function assertDataPathsExist(datasets: DeclaredDataset[], template: string | undefined, configFile?: string): Promise<void> {
  const where = configFile ?? 'sandstack.yaml';
  for (const d of datasets) {
    const st = await stat(d.host).catch((e: NodeJS.ErrnoException) => e);
    if (st instanceof Error) {
      const missing = st.code === 'ENOENT' || st.code === 'ENOTDIR';
      throw new SandstackError(
        'SANDSTACK_CONFIG_INVALID',
        `The shared dataset ${d.name} in ${where} names the host path ${d.host}, which ${missing ? 'does not exist' : `cannot be read (${st.code ?? st.message})`}.`,
        {
          hint: `Create it (or mount the dataset there), or fix data.shared[${d.name}].host; a relative path is taken from the folder of sandstack.yaml.`,
          details: { dataset: d.name, host: d.host },
        },
      );
    }
  }
  if (template !== undefined) {
    const st = await stat(template).catch((e: NodeJS.ErrnoException) => e);
    if (st instanceof Error || !st.isDirectory()) {
      throw new SandstackError(
        'SANDSTACK_CONFIG_INVALID',
        `data.root.template in ${where} names ${template}, which ${st instanceof Error ? (st.code === 'ENOENT' ? 'does not exist' : `cannot be read (${st.code ?? st.message})`) : 'is not a folder'}.`,
        {
          hint: 'Point data.root.template at the folder a new instance\'s data root is copied from (relative to sandstack.yaml), or remove it.',
          details: { template },
        },
      );
    }
  }
}

/** What `status` and the evidence list about the data an instance sees. */
export interface InstanceDataView {
  shared: { name: string; host: string; target: string; services: string[]; mode: 'ro' | 'rw' }[];
  root: { path: string; template: string | null };
}

export function instanceDataView(datasets: DeclaredDataset[], dataRoot: string, template: string | undefined): InstanceDataView {
  return {
    shared: datasets.map((d) => ({ name: d.name, host: d.host, target: d.target, services: d.services, mode: d.mode })),
    root: { path: dataRoot, template: template ?? null },
  };
}
