/**
 * Instance identity: derivation and sanitising of the instance id, the label set put on every
 * resource, and the environment injected into every container.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { SandstackError } from '../errors.js';

export type EnvironmentKind = 'local' | 'sandbox';

export interface InstanceIdentity {
  /** Compose project name and the value of every sandstack label. */
  id: string;
  /** Absolute path of the git worktree (or project folder outside git). */
  worktree: string;
  kind: EnvironmentKind;
  /**
   * The state home the instance belongs to (homeLabelValue of SANDSTACK_HOME): several state homes
   * may share one engine, and each adopts only its own instances from Docker labels.
   */
  home?: string;
  /**
   * The owning process (`<pid>@<start>@<boot id>`, state/owner.ts) of a throwaway instance, or of
   * an instance being created with a ttl until its start has finished.
   */
  owner?: string;
  /** Removed after this long without use (ms): `up --ttl`, `instance.ttl`. */
  ttlMs?: number;
}

/** Longest id we produce; Compose allows more, but container and volume names get long. */
export const MAX_ID_LENGTH = 48;
const HASH_LENGTH = 8;

export const LABELS = {
  instance: 'dev.sandstack.instance',
  worktree: 'dev.sandstack.worktree',
  kind: 'dev.sandstack.kind',
  managed: 'dev.sandstack.managed',
  /** Leased host ports, `service:port/proto=host,...`; lets the registry be rebuilt from Docker. */
  leases: 'dev.sandstack.leases',
  /** What a network is for (`telemetry`: the instance network the shared observability stack joins). */
  role: 'dev.sandstack.role',
  /** On the shared observability stack's resources: the state home it belongs to. */
  obs: 'dev.sandstack.obs',
  /** The state home an instance belongs to (homeLabelValue); on its containers, volumes and networks. */
  home: 'dev.sandstack.home',
  /** On a throwaway instance's resources: the sandstack process that owns it (state/owner.ts). */
  owner: 'dev.sandstack.owner',
  /** On an instance with a ttl: the ttl in ms (so a registry rebuilt from labels keeps its expiry). */
  ttl: 'dev.sandstack.ttl',
  /** On a content-addressed image (src/compose/content-hash.ts): the hash of what went into it. */
  content: 'dev.sandstack.content',
} as const;

export const COMPOSE_PROJECT_LABEL = 'com.docker.compose.project';
export const COMPOSE_SERVICE_LABEL = 'com.docker.compose.service';

function shortHash(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, HASH_LENGTH);
}

/**
 * Turns any string into a valid Compose project name: lowercase `[a-z0-9_-]`, starting with a letter
 * or digit. A name longer than MAX_ID_LENGTH is cut and given a stable hash of the original, so two
 * long names that share a prefix stay distinct.
 */
export function sanitizeInstanceId(raw: string): string {
  let s = raw
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/[-_]+$/, '');
  if (s.length === 0) {
    throw new SandstackError('SANDSTACK_INSTANCE_ID_INVALID', `Cannot derive an instance id from "${raw}": it has no letters or digits.`, {
      hint: 'Pass an explicit id with --instance <id> or SANDSTACK_INSTANCE.',
    });
  }
  if (s.length > MAX_ID_LENGTH) {
    const keep = MAX_ID_LENGTH - HASH_LENGTH - 1;
    s = `${s.slice(0, keep).replace(/[-_]+$/, '')}-${shortHash(raw)}`;
  }
  return s;
}

/** Checks an explicit id: it must already be valid, so that what the user typed is what is used. */
export function validateExplicitId(id: string): string {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(id) || id.length > MAX_ID_LENGTH) {
    throw new SandstackError(
      'SANDSTACK_INSTANCE_ID_INVALID',
      `Invalid instance id "${id}": use lowercase letters, digits, '-' and '_', starting with a letter or digit, at most ${MAX_ID_LENGTH} characters.`,
      { hint: /[a-z0-9]/i.test(id) ? `For example: ${sanitizeInstanceId(id)}` : 'For example: feat-login.' },
    );
  }
  return id;
}

/** Turns a branch name into a folder/id slug: `feat/Operation Metrics` → `feat-operation-metrics`. */
export function branchSlug(branch: string): string {
  return sanitizeInstanceId(branch.replace(/\//g, '-'));
}

export interface DeriveIdInput {
  /** `--instance` flag. */
  flag?: string;
  /** SANDSTACK_INSTANCE environment variable. */
  env?: string;
  idFrom: 'folder' | 'branch';
  worktree: string;
  branch?: string;
}

export function deriveInstanceId(input: DeriveIdInput): string {
  if (input.flag) return validateExplicitId(input.flag);
  if (input.env) return validateExplicitId(input.env);
  if (input.idFrom === 'branch') {
    if (!input.branch) {
      throw new SandstackError('SANDSTACK_INSTANCE_ID_INVALID', 'instance.idFrom is "branch" but HEAD is not on a branch (detached HEAD or not a git repository).', {
        hint: 'Check out a branch, set instance.idFrom: folder, or pass --instance <id>.',
      });
    }
    return branchSlug(input.branch);
  }
  const base = input.worktree.split(/[\\/]/).filter(Boolean).pop() ?? '';
  return sanitizeInstanceId(base);
}

/** The value of the state-home label: a short hash of the absolute state home path. */
export function homeLabelValue(home: string): string {
  const abs = path.resolve(home);
  return createHash('sha256').update(abs.length > 1 ? abs.replace(/[\\/]+$/, '') : abs).digest('hex').slice(0, 12);
}

/** Labels set on every container, volume and network of an instance. */
export function instanceLabels(identity: InstanceIdentity, leases = ''): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.instance]: identity.id,
    [LABELS.worktree]: identity.worktree,
    [LABELS.kind]: identity.kind,
    [LABELS.managed]: 'true',
  };
  if (identity.home) labels[LABELS.home] = identity.home;
  if (identity.owner) labels[LABELS.owner] = identity.owner;
  if (identity.ttlMs) labels[LABELS.ttl] = String(identity.ttlMs);
  if (leases) labels[LABELS.leases] = leases;
  return labels;
}

const OTEL_KEYS = ['sandstack.instance.id', 'deployment.environment'];

/**
 * Merges sandstack's identity into an existing OTEL_RESOURCE_ATTRIBUTES value, replacing any
 * previous values of the keys sandstack owns and keeping the project's own attributes.
 */
export function mergeOtelAttributes(existing: string | undefined, identity: InstanceIdentity): string {
  const kept = (existing ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !OTEL_KEYS.includes(s.split('=')[0]?.trim() ?? ''));
  return [...kept, `sandstack.instance.id=${identity.id}`, `deployment.environment=${identity.kind}`].join(',');
}

/** Environment injected into every container of an instance. */
export function instanceEnvironment(identity: InstanceIdentity, existingOtel?: string): Record<string, string> {
  return {
    SANDSTACK_INSTANCE_ID: identity.id,
    SANDSTACK_ENVIRONMENT: identity.kind,
    OTEL_RESOURCE_ATTRIBUTES: mergeOtelAttributes(existingOtel, identity),
  };
}
