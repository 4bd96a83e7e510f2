import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { composeFilesOf, composeProjectDir, locateComposeFiles } from '../../src/compose/files.js';
import { SandstackError } from '../../src/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sandstack-files-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const put = async (rel: string, text = 'services: {}\n') => {
  await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
  await writeFile(path.join(dir, rel), text);
};

describe('locateComposeFiles', () => {
  it('honours COMPOSE_FILE from the environment (colon-separated, relative to the project dir)', async () => {
    await put('docker-compose.sandbox.yml');
    await put('deploy/extra.yml');
    expect(await locateComposeFiles(dir, undefined, { env: { COMPOSE_FILE: 'docker-compose.sandbox.yml:deploy/extra.yml' } })).toEqual([
      path.join(dir, 'docker-compose.sandbox.yml'),
      path.join(dir, 'deploy', 'extra.yml'),
    ]);
  });

  it('honours COMPOSE_PATH_SEPARATOR', async () => {
    await put('a.yml');
    await put('b.yml');
    expect(await locateComposeFiles(dir, undefined, { env: { COMPOSE_FILE: 'a.yml;b.yml', COMPOSE_PATH_SEPARATOR: ';' } })).toEqual([path.join(dir, 'a.yml'), path.join(dir, 'b.yml')]);
  });

  it("honours COMPOSE_FILE set in the project's .env (the environment wins over .env)", async () => {
    await put('docker-compose.sandbox.yml');
    await put('other.yml');
    await writeFile(path.join(dir, '.env'), '# compose settings\nCOMPOSE_FILE=docker-compose.sandbox.yml\n');
    expect(await locateComposeFiles(dir, undefined, { env: {} })).toEqual([path.join(dir, 'docker-compose.sandbox.yml')]);
    expect(await locateComposeFiles(dir, undefined, { env: { COMPOSE_FILE: 'other.yml' } })).toEqual([path.join(dir, 'other.yml')]);
  });

  it('prefers COMPOSE_FILE over default discovery, and compose.files over COMPOSE_FILE', async () => {
    await put('compose.yaml');
    await put('docker-compose.sandbox.yml');
    expect(await locateComposeFiles(dir, undefined, { env: { COMPOSE_FILE: 'docker-compose.sandbox.yml' } })).toEqual([path.join(dir, 'docker-compose.sandbox.yml')]);
    expect(await locateComposeFiles(dir, ['compose.yaml'], { env: { COMPOSE_FILE: 'docker-compose.sandbox.yml' } })).toEqual([path.join(dir, 'compose.yaml')]);
    expect(await locateComposeFiles(dir, undefined, { env: {} })).toEqual([]);
  });

  it('names COMPOSE_FILE when a file it lists does not exist', async () => {
    await expect(locateComposeFiles(dir, undefined, { env: { COMPOSE_FILE: 'nope.yml' } })).rejects.toMatchObject({
      code: 'SANDSTACK_COMPOSE_NOT_FOUND',
      message: expect.stringMatching(/COMPOSE_FILE.*nope\.yml|nope\.yml.*COMPOSE_FILE/),
    });
  });

  it('says how to name a non-default file when nothing is found (not "run sandstack in the folder")', async () => {
    await put('docker-compose.sandbox.yml');
    const e = await locateComposeFiles(dir, undefined, { env: {} }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(SandstackError);
    const err = e as SandstackError;
    expect(err.code).toBe('SANDSTACK_COMPOSE_NOT_FOUND');
    expect(err.hint).toContain('sandstack init -f');
    expect(err.hint).toContain('COMPOSE_FILE');
    expect(err.hint).toContain('compose.files');
    // It points at the compose-like file it saw.
    expect(`${err.message} ${err.hint}`).toContain('docker-compose.sandbox.yml');
  });
});

describe('composeFilesOf', () => {
  it('finds the default pair compose.yaml + compose.override.yaml', async () => {
    await put('compose.yaml');
    await put('compose.override.yaml');
    expect(await composeFilesOf({ projectDir: dir, files: [] })).toEqual([path.join(dir, 'compose.yaml'), path.join(dir, 'compose.override.yaml')]);
  });
});

describe('composeProjectDir', () => {
  it("is the first file's folder, as Compose has it without --project-directory", () => {
    expect(composeProjectDir('/repo', ['/repo/deploy/environments/dev/docker-compose.dev.yml', '/repo/x.yml'])).toBe('/repo/deploy/environments/dev');
    expect(composeProjectDir('/repo', [])).toBe('/repo');
  });
});
