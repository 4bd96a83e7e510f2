/**
 * sandstack's own version (from its package.json), and the versions of what it runs on. Imported by
 * the CLI entry point, so the Compose adapter and the Docker client are imported only when the
 * versions of what sandstack runs on are asked for (versionReport).
 */
import { readFileSync } from 'node:fs';
import type { DockerClient } from './engine/docker.js';

/** Set by the CLI bundle (scripts/bundle-cli.mjs), whose chunks do not sit where package.json is relative to them. */
declare const __SANDSTACK_VERSION__: string | undefined;

let cached: string | undefined;
export function sandstackVersion(): string {
  cached ??=
    typeof __SANDSTACK_VERSION__ === 'string'
      ? __SANDSTACK_VERSION__
      : (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}

export interface ComposeVersion {
  variant: 'v1' | 'v2';
  version: string;
  /** The command sandstack runs, e.g. ['docker', 'compose']. */
  command: string[];
}

export interface EngineVersion {
  /** Server.Version, e.g. `26.1.5+dfsg1`. */
  version: string;
  /** Server API version, e.g. `1.45`. */
  apiVersion: string;
}

export interface VersionReport {
  sandstack: string;
  node: string;
  platform: string;
  /** null when no Compose was found (see problems). */
  compose: ComposeVersion | null;
  /** null when the engine did not answer (see problems). */
  engine: EngineVersion | null;
  problems: string[];
}

/**
 * sandstack, Node, Compose (variant, version, command) and engine versions. Never throws: what
 * cannot be found is null with a line in `problems`. `fresh` probes Compose again instead of
 * trusting the cache (and refreshes it).
 */
export async function versionReport(opts: { env: NodeJS.ProcessEnv; home: string; docker: DockerClient; fresh?: boolean }): Promise<VersionReport> {
  const [{ detectCompose }, { engineVersion }, { composeCacheFile }] = await Promise.all([import('./compose/cli.js'), import('./engine/docker.js'), import('./state/paths.js')]);
  const problems: string[] = [];
  const [compose, engine] = await Promise.all([
    detectCompose(opts.env, { cacheFile: composeCacheFile(opts.home), fresh: opts.fresh }).then(
      (c): ComposeVersion => ({ variant: c.variant, version: c.version, command: [...c.argv] }),
      (e: Error) => {
        problems.push(`Compose: ${e.message}`);
        return null;
      },
    ),
    engineVersion(opts.docker),
  ]);
  if ('error' in engine) problems.push(`Docker engine: not reachable (${engine.error})`);
  return {
    sandstack: sandstackVersion(),
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    compose,
    engine: 'error' in engine ? null : engine,
    problems,
  };
}
