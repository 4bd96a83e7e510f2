import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { composeEnv, type ComposeProject } from '../../src/compose/cli.js';
import { ensureSecrets, generateSecret, loadSecrets, rotateSecrets, secretsDir } from '../../src/secrets/secrets.js';

describe('per-instance secrets', () => {
  let a: string;
  let b: string;
  beforeEach(async () => {
    a = await mkdtemp(path.join(os.tmpdir(), 'sandstack-secrets-a-'));
    b = await mkdtemp(path.join(os.tmpdir(), 'sandstack-secrets-b-'));
  });
  afterEach(async () => {
    await rm(a, { recursive: true, force: true });
    await rm(b, { recursive: true, force: true });
  });
  const specs = [
    { name: 'DB_PASSWORD', length: 32 },
    { name: 'API_TOKEN', length: 48 },
  ];

  it('generates values of the asked length from a URL-safe alphabet, different every time', () => {
    const values = Array.from({ length: 50 }, () => generateSecret(32));
    for (const v of values) expect(v).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(new Set(values).size).toBe(50);
  });

  it('stores each secret owner-only, keeps it stable across calls, and never shares it between instances', async () => {
    const first = await ensureSecrets(a, specs, { persist: true });
    expect(first.map((s) => s.name)).toEqual(['DB_PASSWORD', 'API_TOKEN']);
    expect(first[1]!.value).toHaveLength(48);
    const again = await ensureSecrets(a, specs, { persist: true });
    expect(again).toEqual(first);
    for (const s of first) {
      const file = path.join(secretsDir(a), s.name);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(await readFile(file, 'utf8')).toBe(s.value);
    }
    expect((await stat(secretsDir(a))).mode & 0o777).toBe(0o700);
    const other = await ensureSecrets(b, specs, { persist: true });
    expect(other.map((s) => s.value)).not.toContain(first[0]!.value);
    expect(other.map((s) => s.value)).not.toContain(first[1]!.value);
  });

  it('does not write anything without persist', async () => {
    await ensureSecrets(a, specs, { persist: false });
    expect(await loadSecrets(a)).toEqual([]);
  });

  it('rotates the named secrets only', async () => {
    const before = await ensureSecrets(a, specs, { persist: true });
    expect(await rotateSecrets(a, specs, ['API_TOKEN'])).toEqual(['API_TOKEN']);
    const after = await loadSecrets(a);
    const byName = Object.fromEntries(after.map((s) => [s.name, s.value]));
    expect(byName.DB_PASSWORD).toBe(before[0]!.value);
    expect(byName.API_TOKEN).not.toBe(before[1]!.value);
    expect(byName.API_TOKEN).toHaveLength(48);
  });
});

describe('the environment a Compose process gets', () => {
  const project = (allowEnv: string[]): ComposeProject => ({
    cli: { variant: 'v1', argv: ['docker-compose'], version: '1.29.2' },
    projectName: 'feat-a',
    projectDir: '/p',
    files: [],
    profiles: [],
    env: { SANDSTACK_INSTANCE_ID: 'feat-a', DB_PASSWORD: 'generated' },
    allowEnv,
  });
  const host = { PATH: '/usr/bin', HOME: '/root', DOCKER_HOST: 'unix:///x.sock', GITHUB_TOKEN: 'ghp_x', AWS_SECRET_ACCESS_KEY: 'k', CI_FLAG: '1', COMPOSE_FILE: 'other.yml', COMPOSE_PROJECT_NAME: 'other' };

  it('passes what Compose needs, sandstack variables and allowed host variables only', () => {
    const env = composeEnv(project(['CI_FLAG']), host);
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/root', DOCKER_HOST: 'unix:///x.sock', CI_FLAG: '1', SANDSTACK_INSTANCE_ID: 'feat-a', DB_PASSWORD: 'generated', COMPOSE_PROJECT_NAME: 'feat-a' });
  });

  it('never passes host secrets or selectors of another project unless allowed', () => {
    const env = composeEnv(project([]), host);
    expect(env).not.toHaveProperty('GITHUB_TOKEN');
    expect(env).not.toHaveProperty('AWS_SECRET_ACCESS_KEY');
    expect(env).not.toHaveProperty('COMPOSE_FILE');
    expect(env.COMPOSE_PROJECT_NAME).toBe('feat-a');
  });
});
