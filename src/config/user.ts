/**
 * The user config: settings of the person running sandstack rather than of a project (a disk budget,
 * the Docker engines it may use and the pool new instances are placed on). One file per user, `$SANDSTACK_USER_CONFIG`, else
 * `$XDG_CONFIG_HOME/sandstack/config.yaml`, else `~/.config/sandstack/config.yaml`. A missing file
 * means defaults. Validated with a strict schema: an unknown key is an error naming the file and key.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import bytes from 'bytes';
import * as z from 'zod';
import { SandstackError } from '../errors.js';
import { parseYamlWith } from './load.js';

/** `<number>` bytes or `<number><unit>`; units are binary (1 KB = 1 KiB = 1024 bytes), as in `bytes`. */
const SIZE = /^(\d+(?:\.\d+)?)\s*(b|[kmgtp]i?b)?$/i;

/**
 * Parses a size: a number of bytes, or a string such as `50GB`, `500MiB`, `1.5 TB`, `2048`. Units
 * are binary (KB and KiB both mean 1024 bytes). Undefined when it is not a positive size.
 */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? Math.floor(value) : undefined;
  const m = SIZE.exec(value.trim());
  if (!m) return undefined;
  // `bytes` knows b, kb … pb; the IEC spellings (KiB) mean the same there.
  const n = bytes.parse(`${m[1]}${(m[2] ?? 'b').replace(/i/i, '')}`);
  return n !== null && Number.isFinite(n) && n > 0 ? Math.floor(n) : undefined;
}

/** A size as people read it: `50 GB`, `12.3 MB` (binary units, as parsed). */
export function formatSize(n: number): string {
  return bytes.format(n, { unitSeparator: ' ', decimalPlaces: 1 }) ?? `${n} B`;
}

/** An engine name (also a folder name in the state home). */
export const ENGINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

const SizeSchema = z
  .union([z.number(), z.string()], { error: 'expected a size: a number of bytes or a string such as 50GB or 500MiB' })
  .transform((v, ctx) => {
    const n = parseSize(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a size: use a positive number of bytes or a number with a unit (500MiB, 50GB, 1.5TB; 1 KB = 1024 bytes)` });
      return z.NEVER;
    }
    return n;
  });

export const UserConfigSchema = z
  .strictObject({
    budget: z
      .strictObject({
        disk: SizeSchema.nullish().describe(
          'Disk budget for what sandstack holds in this state home (containers, volumes, images, instance folders); `up` warns when it is exceeded',
        ),
      })
      .nullish(),
    engines: z
      .record(
        z.string().regex(ENGINE_NAME, 'an engine name: letters, digits, `.`, `_` and `-`, starting with a letter or digit'),
        z.strictObject({
          url: z
            .string()
            .regex(/^ssh:\/\/([^@/\s]+@)?[^@/:\s]+(:\d{1,5})?\/?$/, 'an ssh URL: ssh://[user@]host[:port]')
            .optional()
            .describe('Where the engine is: ssh://[user@]host[:port] (a remote Docker engine over SSH). Omitted only for `local`'),
          capacity: z.number().int().min(1).optional().describe('At most this many sandstack instances are placed on the engine'),
          root: z
            .string()
            .min(1)
            .optional()
            .describe('Folder on the remote host for synced sources and instance state (absolute, or relative to the remote home); default .sandstack-remote'),
        }),
      )
      .optional()
      .superRefine((engines, ctx) => {
        for (const [name, e] of Object.entries(engines ?? {})) {
          if (name === 'local' && (e.url || e.root)) ctx.addIssue({ code: 'custom', path: [name], message: '`local` is this machine\'s engine: only `capacity` can be set for it' });
          if (name !== 'local' && !e.url) ctx.addIssue({ code: 'custom', path: [name, 'url'], message: 'a remote engine needs url: ssh://[user@]host[:port]' });
        }
      })
      .describe('Docker engines by name (`local` is this machine\'s); `--engine <name>`, SANDSTACK_ENGINE or `engine:` in sandstack.yaml choose one'),
    pool: z
      .array(z.string().regex(ENGINE_NAME, 'an engine name'))
      .min(1)
      .optional()
      .describe('Engines `up` places new instances on (the least loaded reachable one) when no engine is chosen; `local` may be one of them'),
  })
  .superRefine((c, ctx) => {
    for (const [i, name] of (c.pool ?? []).entries()) {
      if (name !== 'local' && !c.engines?.[name]) ctx.addIssue({ code: 'custom', path: ['pool', i], message: `"${name}" is not an engine listed under engines:` });
    }
  })
  .describe('The user config (~/.config/sandstack/config.yaml)');

/** The user config, sizes in bytes. */
export type UserConfig = z.output<typeof UserConfigSchema>;

export interface LoadedUserConfig {
  config: UserConfig;
  /** The file looked at (whether or not it exists). */
  file: string;
  exists: boolean;
}

/** Where the user config is: SANDSTACK_USER_CONFIG, else $XDG_CONFIG_HOME/sandstack, else ~/.config/sandstack. */
export function userConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SANDSTACK_USER_CONFIG) return path.resolve(env.SANDSTACK_USER_CONFIG);
  // The XDG spec ignores a relative XDG_CONFIG_HOME.
  const xdg = env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.join(env.HOME || os.homedir(), '.config');
  return path.join(xdg, 'sandstack', 'config.yaml');
}

const HINT = 'Fix or remove the key shown in the user config; it accepts `budget: { disk: 50GB }`, `engines:` and `pool:` (see "User config" in the README). SANDSTACK_USER_CONFIG points sandstack at another file.';

/** Parses and validates user config text (exported for unit tests). */
export function parseUserConfig(text: string, file: string): UserConfig {
  return parseYamlWith(text, file, UserConfigSchema, HINT);
}

/** Reads the user config; a missing file gives the defaults. Throws SANDSTACK_CONFIG_INVALID (exit 2) naming the file. */
export async function loadUserConfig(env: NodeJS.ProcessEnv = process.env): Promise<LoadedUserConfig> {
  const file = userConfigPath(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return { config: {}, file, exists: false };
    throw new SandstackError('SANDSTACK_CONFIG_INVALID', `Cannot read the user config ${file}: ${(cause as Error).message}`, {
      hint: 'Make it readable, or point SANDSTACK_USER_CONFIG at another file.',
      details: { file },
      cause,
    });
  }
  return { config: parseUserConfig(text, file), file, exists: true };
}
