/** What every lifecycle operation receives: where it runs, how to report progress, how to stop. */
import { localEngine, type Engine } from '../engine/engine.js';
import { sandstackHome } from '../state/paths.js';

export type ProgressEvent =
  | { type: 'step'; message: string }
  | { type: 'notice'; message: string }
  | { type: 'log'; source: string; line: string }
  | { type: 'services'; ready: string[]; waiting: { service: string; state: string }[] }
  | { type: 'stage'; name: string; status: 'running' | 'passed' | 'failed' | 'skipped' | 'warning'; durationMs?: number; message?: string };

export interface Context {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** State home (registry and instance dirs). */
  home: string;
  /** `--instance` override. */
  instanceFlag?: string;
  /** `--config` override. */
  configFile?: string;
  /** `--engine` override: the engine a new instance runs on (engine/select.ts). */
  engineFlag?: string;
  signal?: AbortSignal;
  /**
   * Set for a throwaway instance (gate --fresh, verify): this process as its owner. Its resources are
   * labelled with it, and an instance whose owner is gone is reaped (lifecycle/reap.ts).
   */
  owner?: string;
  /** `up --ttl`: remove the instance after this long without use (overrides instance.ttl). */
  ttlMs?: number;
  onProgress: (e: ProgressEvent) => void;
  /** Where instances of this context run (engine/engine.ts); the local engine unless chosen otherwise. */
  engine: Engine;
}

export function createContext(partial: Partial<Context> & { cwd?: string } = {}): Context {
  const env = partial.env ?? process.env;
  return {
    cwd: partial.cwd ?? process.cwd(),
    env,
    home: partial.home ?? sandstackHome(env),
    instanceFlag: partial.instanceFlag,
    configFile: partial.configFile,
    engineFlag: partial.engineFlag,
    signal: partial.signal,
    onProgress: partial.onProgress ?? (() => undefined),
    engine: partial.engine ?? localEngine(),
  };
}
