/**
 * Engines as the state home sees them: the user config's engines and pool, the engines its instances
 * run on (from the registry), each probed for reachability, versions and load; and placement of a
 * new instance on the pool.
 */
import { loadUserConfig, type UserConfig } from '../config/user.js';
import { SandstackError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import { configuredEngines, placeOn, probeEngine, type EngineSpec, type EngineStatus } from '../engine/select.js';
import { engineNameOf, readRegistrySnapshot, type Registry } from '../state/registry.js';
import type { Context } from './context.js';
import { registryOptions } from './instance.js';

export interface EngineEntry extends EngineStatus {
  /** Ids of this state home's instances on the engine. */
  instanceIds: string[];
}

export interface EnginesResult {
  engines: EngineEntry[];
  pool: string[];
  /** The user config file the engines come from. */
  userConfig: string;
  notices: string[];
}

/** Every engine to show: configured ones, then those only the registry names (an instance started with a URL). */
function knownSpecs(user: UserConfig, registry: Registry): EngineSpec[] {
  const specs = configuredEngines(user);
  for (const rec of Object.values(registry.instances)) {
    if (rec.engine && !specs.some((s) => s.name === rec.engine!.name)) specs.push({ name: rec.engine.name, url: rec.engine.endpoint });
  }
  return specs;
}

async function probeAll(ctx: Context, specs: EngineSpec[], registry: Registry, pool: string[]): Promise<{ entries: EngineEntry[]; opened: Map<string, Engine> }> {
  const ids = (name: string) => Object.values(registry.instances).filter((r) => engineNameOf(r) === name).map((r) => r.id).sort();
  const opened = new Map<string, Engine>();
  const entries = await Promise.all(
    specs.map(async (spec) => {
      const instanceIds = ids(spec.name);
      const local = ctx.engine.remote ? undefined : ctx.engine;
      const { status, engine } = await probeEngine(spec, { home: ctx.home, env: ctx.env, signal: ctx.signal, ...(local ? { local } : {}), instances: instanceIds.length, inPool: pool.includes(spec.name) });
      if (engine && status.reachable) opened.set(spec.name, engine);
      return { ...status, instanceIds };
    }),
  );
  return { entries, opened };
}

/** `sandstack engines`: every engine with reachability, versions, instances and load. */
export async function listEngines(ctx: Context): Promise<EnginesResult> {
  const loaded = await loadUserConfig(ctx.env);
  const snap = await readRegistrySnapshot(registryOptions(ctx));
  const pool = loaded.config.pool ?? [];
  const { entries } = await probeAll(ctx, knownSpecs(loaded.config, snap.result), snap.result, pool);
  return { engines: entries, pool, userConfig: loaded.file, notices: snap.notices };
}

/**
 * Places a new instance: opens the pool's engines, and returns the least-loaded reachable one with
 * room (engine/select.ts placeOn). SANDSTACK_POOL_FULL (exit 3) when none can take it, naming why
 * for each.
 */
export async function placeOnPool(ctx: Context, user: UserConfig): Promise<{ engine: Engine; status: EngineStatus }> {
  const pool = user.pool ?? [];
  const snap = await readRegistrySnapshot(registryOptions(ctx));
  const specs = configuredEngines(user);
  const poolSpecs = pool.map((name) => specs.find((s) => s.name === name) ?? { name });
  const { entries, opened } = await probeAll(ctx, poolSpecs, snap.result, pool);
  const chosen = placeOn(entries);
  const engine = chosen && opened.get(chosen.name);
  if (!chosen || !engine) {
    const why = entries.map((e) => `${e.name}: ${e.reachable ? `full (${e.instances}/${e.capacity})` : e.error}`).join('; ');
    throw new SandstackError('SANDSTACK_POOL_FULL', `No engine of the pool can take a new instance (${why}).`, {
      hint: 'Destroy instances you no longer need (sandstack ls), raise a capacity, or choose an engine with --engine.',
      details: { engines: entries },
    });
  }
  return { engine, status: chosen };
}
