/** Where sandstack keeps its state: the registry and one folder per instance. */
import path from 'node:path';
import envPaths from 'env-paths';

/** SANDSTACK_HOME, else the XDG data dir (`~/.local/share/sandstack` on Linux). */
export function sandstackHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SANDSTACK_HOME) return path.resolve(env.SANDSTACK_HOME);
  return envPaths('sandstack', { suffix: '' }).data;
}

export interface InstancePaths {
  /** Per-instance state dir: rendered model, reports. */
  dir: string;
  /** The isolated Compose model sandstack runs. */
  rendered: string;
  /** Per-instance data root on the host (SANDSTACK_DATA_ROOT inside compose files). */
  dataRoot: string;
}

export function instancePaths(home: string, id: string): InstancePaths {
  const dir = path.join(home, 'instances', id);
  return { dir, rendered: path.join(dir, 'compose.rendered.yaml'), dataRoot: path.join(dir, 'data') };
}

export function registryPath(home: string): string {
  return path.join(home, 'registry.json');
}

/** Where the Compose detection result is cached between processes. */
export function composeCacheFile(home: string): string {
  return path.join(home, 'cache', 'compose-cli.json');
}
