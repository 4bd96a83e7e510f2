/**
 * The context every command action runs with. Imported lazily by main.ts when a command runs: it
 * pulls in the Docker client (lifecycle/context.ts creates one), which `--version` and `--help` never need.
 */
import { createContext, type Context } from '../lifecycle/context.js';
import type { Output } from './output.js';

export interface GlobalOptions {
  json?: boolean;
  verbose?: boolean;
  instance?: string;
  config?: string;
  cwd?: string;
  engine?: string;
}

export function contextFrom(globals: GlobalOptions, signal: AbortSignal, out: Output): Context {
  return createContext({
    cwd: globals.cwd ? (globals.cwd.startsWith('/') ? globals.cwd : `${process.cwd()}/${globals.cwd}`) : process.cwd(),
    instanceFlag: globals.instance,
    configFile: globals.config,
    engineFlag: globals.engine,
    signal,
    onProgress: out.progress,
  });
}
