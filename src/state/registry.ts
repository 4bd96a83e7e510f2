/**
 * The instance registry: which instances exist, where their worktrees are, and which host ports they
 * lease. Docker labels are the truth about what runs; the registry records intent. It is changed only
 * under a cross-process lock (proper-lockfile) and written atomically (write-file-atomic). A missing
 * or corrupt registry is rebuilt from Docker labels and reported, never silently reset.
 */
import { mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import writeFileAtomic from 'write-file-atomic';
// zod/mini: the same validation with tree-shakable functions; `ls` loads ~40 KB of zod instead of ~750 KB.
import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { SandstackError } from '../errors.js';
import { registryPath } from './paths.js';

// English issue messages (classic zod sets them on import; zod/mini leaves that to the caller).
z.config(en());

export const LeaseSchema = z.strictObject({
  service: z.string(),
  containerPort: z.int(),
  protocol: z.enum(['tcp', 'udp']),
  hostPort: z.int(),
  /** On a remote engine: the local 127.0.0.1 port forwarded to hostPort on the engine's host. */
  localPort: z.optional(z.int()),
  /** http/https/tcp/udp: how the port is meant to be reached. */
  scheme: z._default(z.enum(['http', 'https', 'tcp', 'udp']), 'tcp'),
  name: z.optional(z.string()),
});
export type Lease = z.output<typeof LeaseSchema>;

export const InstanceRecordSchema = z.strictObject({
  id: z.string(),
  worktree: z.string(),
  /** Folder holding sandstack.yaml / the compose files (may be inside the worktree). */
  projectDir: z.string(),
  kind: z.enum(['local', 'sandbox']),
  createdAt: z.string(),
  /** `new` created the worktree (destroy removes it); `up` registered an existing folder. */
  createdBy: z.enum(['new', 'up', 'reconciled']),
  branch: z.optional(z.string()),
  leases: z._default(z.array(LeaseSchema), []),
  /** The owning process of a throwaway instance (`<pid>@<start>@<boot id>`); see state/owner.ts. */
  owner: z.optional(z.string()),
  /** Removed after this long without use (ms); see lifecycle/reap.ts. */
  ttlMs: z.optional(z.int().check(z.positive())),
  /** When a command last used the instance (up, gate, test). */
  lastUsedAt: z.optional(z.string()),
  /** The services its last successful start ran, and those among them that may finish (exit 0 is done, not down). */
  services: z.optional(z.array(z.string())),
  mayFinish: z.optional(z.array(z.string())),
  /** The engine the instance runs on (absent: the local engine); it stays there for its life. */
  engine: z.optional(z.strictObject({ name: z.string(), endpoint: z.string() })),
});

/** The name of the engine an instance runs on (`local` unless its record names a remote one). */
export function engineNameOf(rec: Pick<InstanceRecord, 'engine'>): string {
  return rec.engine?.name ?? 'local';
}

/** When an instance with a ttl expires (ms since the epoch), if it has one. */
export function expiresAt(rec: Pick<InstanceRecord, 'ttlMs' | 'lastUsedAt' | 'createdAt'>): number | undefined {
  if (!rec.ttlMs) return undefined;
  const since = Date.parse(rec.lastUsedAt ?? rec.createdAt);
  return Number.isFinite(since) ? since + rec.ttlMs : undefined;
}
export type InstanceRecord = z.output<typeof InstanceRecordSchema>;

export const RegistrySchema = z.strictObject({
  version: z.literal(1),
  instances: z.record(z.string(), InstanceRecordSchema),
});
export type Registry = z.output<typeof RegistrySchema>;

/** An instance found by its Docker labels that reconciliation did not adopt, and why. */
export interface SkippedInstance {
  id: string;
  /** other-home: labelled with another state home; no-home-label: created before the label existed. */
  reason: 'other-home' | 'no-home-label';
  worktree?: string;
}

export interface Reconciled {
  records: InstanceRecord[];
  skipped: SkippedInstance[];
}

export interface RegistryOptions {
  home: string;
  /**
   * Rebuilds instance records from Docker labels; called when the registry is missing or corrupt.
   * Returns the records to adopt (and, optionally, the instances it left alone).
   */
  reconcile?: () => Promise<InstanceRecord[] | Reconciled>;
  /** How long to wait for another sandstack process holding the lock. */
  lockWaitMs?: number;
}

export interface RegistryTransaction<T> {
  result: T;
  /** Things the user should be told (registry rebuilt, corrupt file moved aside). */
  notices: string[];
}

const EMPTY: Registry = { version: 1, instances: {} };

async function readRegistry(file: string, opts: RegistryOptions, notices: string[]): Promise<{ registry: Registry; dirty: boolean }> {
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (text !== undefined) {
    let parsed: unknown;
    let problem: string | undefined;
    try {
      parsed = JSON.parse(text);
      const r = RegistrySchema.safeParse(parsed);
      if (r.success) return { registry: r.data, dirty: false };
      problem = r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    } catch (e) {
      problem = (e as Error).message;
    }
    const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    await rename(file, aside);
    notices.push(`The registry ${file} was corrupt (${problem}); it was moved to ${aside} and rebuilt from Docker labels.`);
  }
  const found = opts.reconcile ? await opts.reconcile() : [];
  const { records, skipped } = Array.isArray(found) ? { records: found, skipped: [] } : found;
  const registry: Registry = { version: 1, instances: {} };
  for (const r of records) registry.instances[r.id] = r;
  if (text === undefined && records.length > 0) {
    notices.push(`The registry ${file} was missing; rebuilt ${records.length} instance(s) from Docker labels: ${records.map((r) => r.id).join(', ')}.`);
  } else if (text !== undefined) {
    notices.push(`Rebuilt ${records.length} instance(s) from Docker labels${records.length ? `: ${records.map((r) => r.id).join(', ')}` : ''}.`);
  }
  notices.push(...skippedNotices(skipped));
  return { registry, dirty: text !== undefined || records.length > 0 };
}

/** What reconciliation left alone, and how to take it over or remove it. */
export function skippedNotices(skipped: SkippedInstance[]): string[] {
  const out: string[] = [];
  const name = (s: SkippedInstance) => (s.worktree ? `${s.id} (${s.worktree})` : s.id);
  const other = skipped.filter((s) => s.reason === 'other-home');
  const legacy = skipped.filter((s) => s.reason === 'no-home-label');
  if (other.length) {
    out.push(`skipped ${other.length} instance(s) of another state home: ${other.map(name).join(', ')}; they are managed with that SANDSTACK_HOME.`);
  }
  if (legacy.length) {
    out.push(
      `skipped ${legacy.length} instance(s) created without a state-home label: ${legacy.map(name).join(', ')}. ` +
        'To adopt one into this state home, run `sandstack up` in its worktree (it is relabelled); to remove it, `sandstack destroy --instance <id>`.',
    );
  }
  return out;
}

/**
 * Runs `fn` on the registry under the cross-process lock. If `fn` changes the registry (returns
 * with the object modified), it is written atomically before the lock is released.
 */
export async function withRegistry<T>(opts: RegistryOptions, fn: (registry: Registry) => T | Promise<T>): Promise<RegistryTransaction<T>> {
  await mkdir(opts.home, { recursive: true, mode: 0o700 });
  const file = registryPath(opts.home);
  const waitMs = opts.lockWaitMs ?? 30_000;
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(opts.home, {
      lockfilePath: path.join(opts.home, 'registry.lock'),
      stale: 15_000,
      update: 5_000,
      retries: { retries: Math.ceil(waitMs / 200), factor: 1, minTimeout: 200, maxTimeout: 200 },
    });
  } catch (cause) {
    throw new SandstackError('SANDSTACK_REGISTRY_LOCKED', `Another sandstack process holds the registry lock (${path.join(opts.home, 'registry.lock')}) and did not release it within ${Math.round(waitMs / 1000)} s.`, {
      hint: 'Wait for the other sandstack command to finish. A lock left by a killed process expires after 15 s.',
      cause,
    });
  }
  try {
    const notices: string[] = [];
    const { registry, dirty } = await readRegistry(file, opts, notices);
    const before = JSON.stringify(registry);
    const result = await fn(registry);
    if (dirty || JSON.stringify(registry) !== before) {
      const valid = RegistrySchema.parse(registry);
      await writeFileAtomic(file, `${JSON.stringify(valid, null, 2)}\n`, { mode: 0o600 });
    }
    return { result, notices };
  } finally {
    await release();
  }
}

/** Reads the registry without changing it (still under the lock, so it never sees a half-write). */
export async function readRegistrySnapshot(opts: RegistryOptions): Promise<RegistryTransaction<Registry>> {
  return withRegistry(opts, (r) => structuredClone(r));
}

/**
 * One instance's record read without the lock, or undefined (no registry, no such record, unreadable):
 * for a quick look before any change (writes are atomic, so a read never sees half a file).
 */
export async function peekRecord(home: string, id: string): Promise<InstanceRecord | undefined> {
  try {
    const r = RegistrySchema.safeParse(JSON.parse(await readFile(registryPath(home), 'utf8')));
    return r.success ? r.data.instances[id] : undefined;
  } catch {
    return undefined;
  }
}

export { EMPTY as EMPTY_REGISTRY };
