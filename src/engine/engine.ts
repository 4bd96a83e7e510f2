/**
 * The engine seam: where an instance runs. One object, chosen once per instance and passed
 * everywhere, answers the three questions every part of sandstack asks of "Docker":
 *   - how to reach the Docker Engine API (inspect, events, logs, exec, cleanup): `docker`;
 *   - how Compose reaches the same engine: `composeEnv` (Compose always runs on this machine; for a
 *     remote engine it talks to it through an SSH tunnel, see engine/ssh.ts);
 *   - where files live for the engine: in place on this machine (local), or under an instance's
 *     `filesRoot` on the engine's host, kept up to date by `sync`; published ports are reached
 *     through `forward`.
 * Lifecycle, gate, tests, evidence, gc and status use only this interface; nothing else knows
 * whether an engine is local or remote.
 */
import { isPortFree } from '../ports/probe.js';
import type { Lease } from '../state/registry.js';
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
  /**
   * Where an instance's files live on the engine's host (its synced sources under `src/`, its data
   * root and secrets under `state/`); undefined when the engine uses this machine's files in place.
   */
  filesRoot(instanceDir: string): string | undefined;
  /**
   * Copies folders of this machine to the engine's host, incrementally: `mirror` folders are made
   * equal (deleted files go; `.gitignore`d files and `.git` are left out), `seed` folders only
   * receive files that are not there yet (what the stack writes there is never overwritten),
   * `secret` folders are made equal with 0600 files.
   */
  sync(folders: SyncFolder[], signal?: AbortSignal): Promise<void>;
  /** Removes an instance's files root on the engine's host (destroy). */
  removeFiles(root: string): Promise<void>;
  /**
   * Makes each port published on the engine's host (`hostPort`) reachable at 127.0.0.1:`localPort`
   * on this machine (a lease's `reachPort`); entries without a `localPort` need nothing.
   */
  forward(ports: PortForward[]): Promise<void>;
  /** Closes what forward opened for these ports. */
  unforward(ports: PortForward[]): Promise<void>;
  /**
   * A test of whether a port is free on the engine's host (127.0.0.1 and any address), for lease
   * allocation. Got once per allocation: a remote engine reads its host's sockets in one command.
   */
  portProbe(signal?: AbortSignal): Promise<PortProbe>;
}

export type PortProbe = (port: number, protocol: 'tcp' | 'udp') => Promise<boolean>;

/** A port published on the engine's host and the local port it is reached at (leases have both). */
export type PortForward = Pick<Lease, 'hostPort' | 'localPort'>;

export interface SyncFolder {
  local: string;
  remote: string;
  mode: 'mirror' | 'seed' | 'secret';
}

/** The engine of this machine: DOCKER_HOST or the default socket, exactly as the docker CLI finds it. */
export function localEngine(docker: DockerClient = createDocker()): Engine {
  return {
    name: 'local',
    endpoint: 'local',
    remote: false,
    docker,
    composeEnv: {},
    filesRoot: () => undefined,
    sync: async () => undefined,
    removeFiles: async () => undefined,
    forward: async () => undefined,
    unforward: async () => undefined,
    portProbe: async () => isPortFree,
  };
}
