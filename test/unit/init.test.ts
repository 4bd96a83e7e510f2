/** `sandstack init` on real project layouts (runs the real Compose CLI's `config`; no engine needed). */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { createContext } from '../../src/lifecycle/context.js';
import { guessPublishProtocol, init } from '../../src/lifecycle/workspace.js';

let base: string;
let repo: string;
let home: string;
beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'sandstack-init-'));
  repo = path.join(base, 'repo');
  home = path.join(base, 'home');
  await mkdir(repo);
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (!('COMPOSE_FILE' in extra)) delete e.COMPOSE_FILE;
  delete e.COMPOSE_PATH_SEPARATOR;
  return e;
}
const ctxFor = (extra: Record<string, string> = {}) => createContext({ cwd: repo, home, env: env(extra) });
const put = async (rel: string, text: string) => {
  await mkdir(path.dirname(path.join(repo, rel)), { recursive: true });
  await writeFile(path.join(repo, rel), text);
};
const written = async () => {
  const text = await readFile(path.join(repo, 'sandstack.yaml'), 'utf8');
  return { text, raw: parseYaml(text) as any, config: parseConfig(text, 'sandstack.yaml') };
};

const SANDBOX = `services:
  web:
    image: nginx:1.25
    ports: ["8080:80", "8443:443"]
  dns:
    image: coredns/coredns:1.11.1
    ports:
      - "53:53/tcp"
      - "53:53/udp"
  otel:
    image: otel/opentelemetry-collector:0.98.0
    ports: ["4317:4317", "4318:4318"]
  db:
    image: postgres:16
    ports: ["5432:5432"]
  cache:
    image: redis:7
    ports: ["6379"]
  broker:
    image: eclipse-mosquitto:2
    ports: ["1883:1883"]
`;

describe('init: which compose files', () => {
  it('fails for a lone docker-compose.sandbox.yml without -f, naming the ways out', async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    await expect(init(ctxFor())).rejects.toMatchObject({ code: 'SANDSTACK_COMPOSE_NOT_FOUND', hint: expect.stringContaining('init -f docker-compose.sandbox.yml') });
  });

  it('init -f docker-compose.sandbox.yml records compose.files', async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    const r = await init(ctxFor(), { files: ['docker-compose.sandbox.yml'] });
    const { config } = await written();
    expect(config.compose.files).toEqual(['docker-compose.sandbox.yml']);
    expect(r.composeFiles).toEqual(['docker-compose.sandbox.yml']);
    expect(config.ports.publish.map((p) => p.service)).toContain('dns');
  });

  it('honours COMPOSE_FILE from the environment and records it', async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    await init(ctxFor({ COMPOSE_FILE: 'docker-compose.sandbox.yml' }));
    expect((await written()).config.compose.files).toEqual(['docker-compose.sandbox.yml']);
  });

  it("honours COMPOSE_FILE from the project's .env", async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    await put('.env', 'COMPOSE_FILE=docker-compose.sandbox.yml\n');
    await init(ctxFor());
    expect((await written()).config.compose.files).toEqual(['docker-compose.sandbox.yml']);
  });

  it('a compose file in a subfolder: sandstack.yaml at the root points at it, relative paths resolve from its folder', async () => {
    const rel = 'deploy/environments/dev/docker-compose.dev.yml';
    // env_file is relative to the compose file's folder (Compose's project directory): if sandstack
    // resolved it from the repository root, Compose would reject the model.
    await put(rel, 'services:\n  api:\n    image: busybox:1.36\n    env_file: ./dev.env\n    ports: ["8000:8000"]\n');
    await put('deploy/environments/dev/dev.env', 'MODE=dev\n');
    const r = await init(ctxFor(), { files: [rel] });
    expect(r.file).toBe(path.join(repo, 'sandstack.yaml'));
    const { config } = await written();
    expect(config.compose.files).toEqual([rel]);
    expect(config.ports.publish).toEqual([{ service: 'api', port: 8000, protocol: 'http' }]);
  });

  it('compose.yaml + compose.override.yaml (default discovery): no compose.files, the override is read', async () => {
    await put('compose.yaml', 'services:\n  app:\n    image: busybox:1.36\n    ports: ["8000:8000"]\n');
    await put('compose.override.yaml', 'services:\n  app:\n    ports: ["9229:9229"]\n');
    await init(ctxFor());
    const { config, raw } = await written();
    expect(raw.compose).toBeUndefined();
    expect(config.compose.files).toBeUndefined();
    expect(config.ports.publish.map((p) => p.port).sort()).toEqual([8000, 9229]);
  });

  it('-f naming exactly the default discovery records nothing', async () => {
    await put('compose.yaml', 'services:\n  app:\n    image: busybox:1.36\n');
    await init(ctxFor(), { files: ['compose.yaml'] });
    expect((await written()).raw.compose).toBeUndefined();
  });

  it('--force keeps compose.files of the existing sandstack.yaml', async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    await put('sandstack.yaml', 'version: 1\ncompose:\n  files: [docker-compose.sandbox.yml]\n  profiles: [debug]\n');
    await expect(init(ctxFor())).rejects.toMatchObject({ code: 'SANDSTACK_CONFIG_EXISTS' });
    await init(ctxFor(), { force: true });
    const { config } = await written();
    expect(config.compose.files).toEqual(['docker-compose.sandbox.yml']);
    expect(config.compose.profiles).toEqual(['debug']);
  });

  it('a missing -f file is named', async () => {
    await expect(init(ctxFor(), { files: ['nope.yml'] })).rejects.toMatchObject({ code: 'SANDSTACK_COMPOSE_NOT_FOUND', message: expect.stringContaining(path.join(repo, 'nope.yml')) });
  });
});

describe('init: published ports', () => {
  it('keeps the UDP twin of a TCP port and guesses https/tcp/http per port', async () => {
    await put('docker-compose.sandbox.yml', SANDBOX);
    const r = await init(ctxFor(), { files: ['docker-compose.sandbox.yml'] });
    const { config } = await written();
    const got = config.ports.publish.map((p) => `${p.service}:${p.port}/${p.protocol}`).sort();
    expect(got).toEqual(
      [
        'web:80/http',
        'web:443/https',
        'dns:53/tcp',
        'dns:53/udp',
        'otel:4317/tcp',
        'otel:4318/http',
        'db:5432/tcp',
        'cache:6379/tcp',
        'broker:1883/tcp',
      ].sort(),
    );
    expect(r.publish).toHaveLength(9);
  });

  it('guessPublishProtocol', () => {
    expect(guessPublishProtocol(443, 'tcp')).toBe('https');
    expect(guessPublishProtocol(8443, 'tcp')).toBe('https');
    expect(guessPublishProtocol(53, 'tcp')).toBe('tcp');
    expect(guessPublishProtocol(53, 'udp')).toBe('udp');
    expect(guessPublishProtocol(8080, 'udp')).toBe('udp');
    for (const p of [5432, 3306, 1433, 27017, 6379, 9042, 11211, 4317, 9092, 5672, 1883, 4222, 2181]) expect(guessPublishProtocol(p, 'tcp')).toBe('tcp');
    for (const p of [80, 3000, 4318, 8000, 8080, 9090]) expect(guessPublishProtocol(p, 'tcp')).toBe('http');
  });
});
