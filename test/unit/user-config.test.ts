import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandstackError } from '../../src/errors.js';
import { formatSize, loadUserConfig, parseSize, parseUserConfig, userConfigPath } from '../../src/config/user.js';

function rejected(text: string, file = '/home/u/.config/sandstack/config.yaml'): SandstackError {
  try {
    parseUserConfig(text, file);
  } catch (e) {
    expect(e).toBeInstanceOf(SandstackError);
    const err = e as SandstackError;
    expect(err.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain(file);
    expect(err.hint).toBeTruthy();
    return err;
  }
  throw new Error('expected parseUserConfig to throw');
}

describe('sizes', () => {
  it('parses numbers of bytes and sizes with binary units', () => {
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize('2048')).toBe(2048);
    expect(parseSize('100B')).toBe(100);
    expect(parseSize('1KB')).toBe(1024);
    expect(parseSize('500MiB')).toBe(500 * 1024 ** 2);
    expect(parseSize('500MB')).toBe(500 * 1024 ** 2);
    expect(parseSize('50GB')).toBe(50 * 1024 ** 3);
    expect(parseSize('50 gb')).toBe(50 * 1024 ** 3);
    expect(parseSize('1.5TiB')).toBe(1.5 * 1024 ** 4);
  });

  it('rejects what is not a positive size', () => {
    for (const v of ['lots', '12 potatoes', '-5GB', '0', 'GB', '1e3', '', '5 XB']) expect(parseSize(v), v).toBeUndefined();
    expect(parseSize(0)).toBeUndefined();
    expect(parseSize(-1)).toBeUndefined();
    expect(parseSize(Number.NaN)).toBeUndefined();
  });

  it('formats sizes for people', () => {
    expect(formatSize(0)).toBe('0 B');
    expect(formatSize(50 * 1024 ** 3)).toBe('50 GB');
    expect(formatSize(1536)).toBe('1.5 KB');
  });
});

describe('parseUserConfig', () => {
  it('an empty file gives the defaults', () => {
    expect(parseUserConfig('', '/x/config.yaml')).toEqual({});
    expect(parseUserConfig('# nothing yet\n', '/x/config.yaml')).toEqual({});
    expect(parseUserConfig('budget:\n', '/x/config.yaml').budget ?? undefined).toBeUndefined();
  });

  it('parses budget.disk as a size or a number of bytes', () => {
    expect(parseUserConfig('budget:\n  disk: 50GB\n', '/x').budget?.disk).toBe(50 * 1024 ** 3);
    expect(parseUserConfig('budget: { disk: 500MiB }\n', '/x').budget?.disk).toBe(500 * 1024 ** 2);
    expect(parseUserConfig('budget: { disk: 123456789 }\n', '/x').budget?.disk).toBe(123456789);
  });

  it('rejects an invalid size, naming the file, line and key', () => {
    const err = rejected('budget:\n  disk: lots\n');
    expect(err.message).toContain('config.yaml:2:9: budget.disk');
    expect(err.message).toContain('"lots" is not a size');
    expect(rejected('budget:\n  disk: true\n').message).toContain('expected a size');
    expect(rejected('budget:\n  disk: -3GB\n').message).toContain('budget.disk');
  });

  it('rejects unknown keys, naming the file and the key, with how to fix it', () => {
    const top = rejected('budget: { disk: 1GB }\nengine: remote\n');
    expect(top.message).toContain('config.yaml:2:1: engine: unknown key "engine"');
    expect(top.hint).toContain('budget: { disk: 50GB }');
    const nested = rejected('budget:\n  disk: 1GB\n  memory: 2GB\n');
    expect(nested.message).toContain('config.yaml:3:3: budget.memory: unknown key "memory"');
  });

  it('rejects invalid YAML with its position', () => {
    expect(rejected('budget: [\n').message).toContain('is not valid YAML');
  });
});

describe('userConfigPath and loadUserConfig', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sandstack-user-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves SANDSTACK_USER_CONFIG, else $XDG_CONFIG_HOME/sandstack, else ~/.config/sandstack', () => {
    expect(userConfigPath({ SANDSTACK_USER_CONFIG: '/etc/ss.yaml', XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' })).toBe('/etc/ss.yaml');
    expect(userConfigPath({ XDG_CONFIG_HOME: '/xdg', HOME: '/home/u' })).toBe('/xdg/sandstack/config.yaml');
    expect(userConfigPath({ HOME: '/home/u' })).toBe('/home/u/.config/sandstack/config.yaml');
    // The XDG spec ignores a relative XDG_CONFIG_HOME; an empty one is unset.
    expect(userConfigPath({ XDG_CONFIG_HOME: 'rel/dir', HOME: '/home/u' })).toBe('/home/u/.config/sandstack/config.yaml');
    expect(userConfigPath({ XDG_CONFIG_HOME: '', HOME: '/home/u' })).toBe('/home/u/.config/sandstack/config.yaml');
    expect(userConfigPath({ SANDSTACK_USER_CONFIG: 'rel.yaml' })).toBe(path.resolve('rel.yaml'));
  });

  it('a missing file gives the defaults', async () => {
    const r = await loadUserConfig({ XDG_CONFIG_HOME: dir });
    expect(r).toEqual({ config: {}, file: path.join(dir, 'sandstack', 'config.yaml'), exists: false });
  });

  it('reads the file under XDG_CONFIG_HOME', async () => {
    await mkdir(path.join(dir, 'sandstack'));
    await writeFile(path.join(dir, 'sandstack', 'config.yaml'), 'budget:\n  disk: 2GB\n');
    const r = await loadUserConfig({ XDG_CONFIG_HOME: dir, HOME: '/nonexistent' });
    expect(r.exists).toBe(true);
    expect(r.config.budget?.disk).toBe(2 * 1024 ** 3);
  });

  it('an invalid file fails naming it', async () => {
    const file = path.join(dir, 'user.yaml');
    await writeFile(file, 'budget:\n  disk: 2GB\n  bogus: 1\n');
    await expect(loadUserConfig({ SANDSTACK_USER_CONFIG: file })).rejects.toMatchObject({ code: 'SANDSTACK_CONFIG_INVALID', message: expect.stringContaining(`${file}:3:3: budget.bogus: unknown key`) });
  });
});
