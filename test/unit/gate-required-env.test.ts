import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findMissingVariables } from '../../src/gate/required-env.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'sandstack-reqenv-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function compose(text: string, name = 'compose.yaml'): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

async function missing(files: string[], env: NodeJS.ProcessEnv = {}, required: string[] = []) {
  return findMissingVariables({ projectDir: dir, composeFiles: files, required, env });
}

const COMPOSE = `services:
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: \${DB_PASSWORD:?set DB_PASSWORD in .env}
  web:
    image: \${WEB_IMAGE?}
    environment:
      TOKEN: "\${API_TOKEN?API_TOKEN must be set}"
      OPTIONAL: \${OPTIONAL:-fallback}
      PLAIN: \${PLAIN}
      SHORT: $SHORT
`;

describe('findMissingVariables', () => {
  it('reports ${A:?msg} and ${B?msg} when unset, with file:line and message', async () => {
    const file = await compose(COMPOSE);
    expect(await missing([file])).toEqual([
      { name: 'DB_PASSWORD', requiredBy: 'compose.yaml:5', message: 'set DB_PASSWORD in .env' },
      { name: 'WEB_IMAGE', requiredBy: 'compose.yaml:7', message: undefined },
      { name: 'API_TOKEN', requiredBy: 'compose.yaml:9', message: 'API_TOKEN must be set' },
    ]);
  });

  it('ignores ${X}, $X and ${X:-default}', async () => {
    const file = await compose(COMPOSE);
    const names = (await missing([file])).map((m) => m.name);
    expect(names).not.toContain('OPTIONAL');
    expect(names).not.toContain('PLAIN');
    expect(names).not.toContain('SHORT');
  });

  it('nothing is missing when every variable has a value in the environment', async () => {
    const file = await compose(COMPOSE);
    expect(await missing([file], { DB_PASSWORD: 'pw', WEB_IMAGE: 'nginx', API_TOKEN: 't' })).toEqual([]);
  });

  it('${A:?msg} is missing when set but empty', async () => {
    const file = await compose(COMPOSE);
    const m = await missing([file], { DB_PASSWORD: '', WEB_IMAGE: 'nginx', API_TOKEN: 't' });
    expect(m).toEqual([{ name: 'DB_PASSWORD', requiredBy: 'compose.yaml:5', message: 'set DB_PASSWORD in .env' }]);
  });

  it('${B?msg} is present when set to the empty string', async () => {
    const file = await compose(COMPOSE);
    expect(await missing([file], { DB_PASSWORD: 'pw', WEB_IMAGE: '', API_TOKEN: '' })).toEqual([]);
  });

  it('takes values from the project .env file', async () => {
    const file = await compose(COMPOSE);
    await writeFile(path.join(dir, '.env'), '# secrets\nDB_PASSWORD=from-dotenv\nWEB_IMAGE="nginx:1"\nAPI_TOKEN=\n');
    // API_TOKEN= is set-but-empty: fine for `?`
    expect(await missing([file])).toEqual([]);
  });

  it('an empty value in .env still fails ${A:?msg}', async () => {
    const file = await compose('x: ${A:?need A}\n');
    await writeFile(path.join(dir, '.env'), 'A=\n');
    expect(await missing([file])).toEqual([{ name: 'A', requiredBy: 'compose.yaml:1', message: 'need A' }]);
  });

  it('the environment overrides .env (an empty env value wins)', async () => {
    const file = await compose('x: ${A:?need A}\n');
    await writeFile(path.join(dir, '.env'), 'A=value\n');
    expect(await missing([file], { A: '' })).toHaveLength(1);
    expect(await missing([file])).toEqual([]);
  });

  it('reports env.required entries that are unset or empty', async () => {
    await writeFile(path.join(dir, '.env'), 'FROM_DOTENV=1\n');
    const m = await missing([], { SET: 'x', EMPTY: '' }, ['SET', 'EMPTY', 'UNSET', 'FROM_DOTENV']);
    expect(m).toEqual([
      { name: 'EMPTY', requiredBy: 'sandstack.yaml env.required' },
      { name: 'UNSET', requiredBy: 'sandstack.yaml env.required' },
    ]);
  });

  it('ignores commented lines', async () => {
    const file = await compose(`services:
  web:
    image: nginx
    # environment:
    #   TOKEN: \${COMMENTED:?not really}
    environment:
      TOKEN: \${REAL:?really}
`);
    expect(await missing([file])).toEqual([{ name: 'REAL', requiredBy: 'compose.yaml:7', message: 'really' }]);
  });

  it('lists a variable once, at its first use, across lines and files', async () => {
    const a = await compose('a: ${X:?first}\nb: ${X:?second} ${Y?} ${X?third}\n', 'compose.yaml');
    const b = await compose('c: ${X:?other file}\nd: ${Y?again}\n', 'compose.override.yaml');
    expect(await missing([a, b])).toEqual([
      { name: 'X', requiredBy: 'compose.yaml:1', message: 'first' },
      { name: 'Y', requiredBy: 'compose.yaml:2', message: undefined },
    ]);
  });

  it('names the file a variable is first required by', async () => {
    const a = await compose('services: {}\n', 'compose.yaml');
    const b = await compose('\n\nz: ${ONLY_HERE:?x}\n', 'compose.prod.yaml');
    expect(await missing([a, b])).toEqual([{ name: 'ONLY_HERE', requiredBy: 'compose.prod.yaml:3', message: 'x' }]);
  });

  it('does not list a compose requirement again when env.required already has it', async () => {
    const file = await compose('x: ${A:?need A}\n');
    expect(await missing([file], {}, ['A'])).toEqual([{ name: 'A', requiredBy: 'sandstack.yaml env.required' }]);
  });

  it('counts lines across CRLF line endings', async () => {
    const file = await compose('services:\r\n  web:\r\n    image: ${IMG:?image}\r\n');
    expect(await missing([file])).toEqual([{ name: 'IMG', requiredBy: 'compose.yaml:3', message: 'image' }]);
  });

  it('skips compose files that cannot be read', async () => {
    const file = await compose('x: ${A?}\n');
    expect(await missing([path.join(dir, 'missing.yaml'), file])).toEqual([{ name: 'A', requiredBy: 'compose.yaml:1', message: undefined }]);
  });

  // BUG (src/gate/required-env.ts): `$$` is Compose's escape for a literal `$`, so `$${VAR:?msg}`
  // is not an interpolation (the container's shell sees `${VAR:?msg}`). The REQUIRED regex does not
  // look at the preceding character and reports VAR as missing, failing the config stage.
  it('does not treat an escaped $${VAR:?msg} as a requirement', async () => {
    const file = await compose(`services:
  web:
    image: alpine
    command: sh -c 'echo $\${IN_CONTAINER:?set inside the container}'
`);
    expect(await missing([file])).toEqual([]);
  });

  // BUG (src/gate/required-env.ts): only whole-line comments are skipped. A trailing YAML comment is
  // not part of any value, so Compose never interpolates it, yet a `${VAR:?}` in it is reported.
  it('ignores a ${VAR:?msg} inside a trailing YAML comment', async () => {
    const file = await compose(`services:
  web:
    image: nginx # was \${OLD_IMAGE:?old}
`);
    expect(await missing([file])).toEqual([]);
  });
});
