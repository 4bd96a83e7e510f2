/**
 * The engine seam: where an instance runs. One object, chosen once per instance and passed
 * everywhere, answers the three questions every part of sandstack asks of "Docker":
 *   - how to reach the Docker Engine API (inspect, events, logs, exec, cleanup): `docker`;
 *   - how Compose reaches the same engine: `composeEnv` (Compose always runs on this machine; for a
 *     remote engine it talks to it through an SSH tunnel, see engine/ssh.ts);
 *   - where files live for the engine: `hostPath` maps a path on this machine (a project file, the
 *     data root, the secrets folder) to the path the engine's bind mounts must name.
 * Lifecycle, gate, tests, evidence, gc and status use only this interface; nothing else knows
 * whether an engine is local or remote.
 */
import { createDocker, type DockerClient } from './docker.js';

export interface Engine {
  /** `local`, or the engine's name (from the engines config, a Docker context, or its URL). */
  name: string;
  /** What the engine is, for people: `local` or `ssh://user@host`. */
  endpoint: string;
  /** True when the engine runs on another machine (files are synced there, ports forwarded). */
  remote: boolean;
  docker: DockerClient;
  /** Variables that point a Compose process at this engine (empty: the host's own settings). */
  composeEnv: Record<string, string>;
  /** The path on the engine's host of a path on this machine (identity for the local engine). */
  hostPath(localPath: string): string;
}

/** The engine of this machine: DOCKER_HOST or the default socket, exactly as the docker CLI finds it. */
export function localEngine(docker: DockerClient = createDocker()): Engine {
  return {
    name: 'local',
    endpoint: 'local',
    remote: false,
    docker,
    composeEnv: {},
    hostPath: (p) => p,
  };
}
