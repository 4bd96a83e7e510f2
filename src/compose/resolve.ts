/** Resolves the project's compose files through the Compose CLI itself (`config`). */
import { SandstackError } from '../errors.js';
import { composeErrorText, runCompose, type ComposeProject } from './cli.js';
import { ComposeModelSchema, type ComposeModel } from './model.js';
import { parseModelText } from './yaml.js';

// Locating the compose files moved to files.ts; re-exported for existing importers.
export { DEFAULT_COMPOSE_FILES, composeFilesOf, locateComposeFiles } from './files.js';

/**
 * Parses and checks the model `compose config` printed (v2: JSON; v1: YAML, read as YAML 1.1 like
 * v1 itself reads it) or that sandstack wrote. Exported for unit tests.
 */
export function parseResolvedModel(text: string): ComposeModel {
  let raw: unknown;
  try {
    raw = parseModelText(text);
  } catch (cause) {
    throw new SandstackError('SANDSTACK_COMPOSE_INVALID', `Compose printed a model that is not YAML: ${(cause as Error).message}`, { cause });
  }
  const r = ComposeModelSchema.safeParse(raw);
  if (!r.success) {
    throw new SandstackError('SANDSTACK_COMPOSE_INVALID', `The resolved compose model has an unexpected shape: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, {
      hint: 'Check the compose file with `docker compose config`.',
    });
  }
  return r.data;
}

export interface ResolvedModel {
  model: ComposeModel;
  /** Variables Compose reported as unset (interpolated as blank). */
  unsetVariables: string[];
}

/** Runs `compose config` for the project and returns the validated model (all profiles included). */
export async function resolveModel(project: ComposeProject, signal?: AbortSignal): Promise<ComposeModel> {
  return (await resolveModelDetailed(project, signal)).model;
}

export async function resolveModelDetailed(project: ComposeProject, signal?: AbortSignal): Promise<ResolvedModel> {
  // v2 prints JSON on request: no YAML version question at all. v1 prints YAML 1.1 (PyYAML).
  const args = project.cli.variant === 'v2' ? ['config', '--format', 'json'] : ['config'];
  // v2 leaves out services of inactive profiles; the special profile `*` (compose-go, every v2
  // release) activates all of them, so the model is whole in one Compose run.
  const withProfiles = project.cli.variant === 'v2' ? { ...project, profiles: [...new Set([...project.profiles, '*'])] } : project;
  const r = await runCompose(withProfiles, args, { signal });
  if (r.exitCode !== 0) {
    const text = composeErrorText(r.stderr) || r.tail.join('\n');
    throw new SandstackError('SANDSTACK_COMPOSE_INVALID', `The compose project in ${project.projectDir} is invalid:\n${text}`, {
      hint: 'Fix the compose file (Compose names the file and key above), then run again.',
      details: { compose: project.cli.argv.join(' '), stderr: text },
    });
  }
  const unsetVariables = [...r.stderr.matchAll(/The \\?"?([A-Za-z_][A-Za-z0-9_]*)\\?"? variable is not set/g)].map((m) => m[1]!);
  return { model: parseResolvedModel(r.stdout), unsetVariables: [...new Set(unsetVariables)] };
}
