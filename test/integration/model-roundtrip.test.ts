/**
 * The model sandstack writes is read back by the Compose that runs it exactly as Compose resolved it
 * (Compose v2 and v1: YAML 1.2 vs 1.1), fixed network addresses are neutralised so instances run side
 * by side, and a failing BuildKit build is diagnosed on Compose v2. Real engine, real Compose.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docker, git, runCli, type CliResult } from './helpers.js';

const V1 = '/opt/sandstack/bin/docker-compose-v1';
/** Where Compose v1's PyYAML lives (see the v1 wrapper script). */
const PYYAML_PATH = '/opt/sandstack/compose-v1/usr/lib/python3/dist-packages';

/** Strings YAML 1.1 or 1.2 would read as something else when written plain. */
const TRICKY: Record<string, string> = {
  START_DATE: '2015-01-01',
  STAMP: '2015-01-01T10:00:00Z',
  YES: 'yes',
  ON: 'on',
  OFF: 'off',
  NO: 'no',
  Y: 'y',
  NULLISH: 'null',
  TILDE: '~',
  MODE: '0755',
  SEXAGESIMAL: '1:20',
  SCI: '1e3',
  HEX: '0x1F',
  UNDERSCORE: '1_000',
  HALF: '.5',
  TRUE_WORD: 'True',
  // secret-like name with a boolean value: never redacted (it would hit every "true" in the model)
  BASIC_AUTH: 'true',
  // keys YAML 1.1 would misread
  on: 'key-on',
  '1:20': 'key-sexagesimal',
};

function composeText(variant: 'v1' | 'v2'): string {
  // Keys quoted too: Compose v1 reads a plain `YES:` key as `true` in the source already.
  const env = Object.entries(TRICKY).map(([k, v]) => `      ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join('\n');
  const labels = Object.values(TRICKY).map((v, i) => `      com.example.l${i}: ${JSON.stringify(v)}`).join('\n');
  return `${variant === 'v1' ? "version: '3.8'\n" : ''}services:
  app:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
    restart: "no"
    stop_grace_period: 1s
    environment:
${env}
    labels:
${labels}
    networks:
      fixed:
        ipv4_address: 172.29.77.10
        aliases: [app-alias]
networks:
  fixed:
    ipam:
      config:
        - subnet: 172.29.77.0/24
          gateway: 172.29.77.1
`;
}

interface Project {
  base: string;
  repo: string;
  home: string;
  run: (args: string[], env?: Record<string, string>) => Promise<CliResult>;
}

async function makeProject(name: string, compose: string, sandstackYaml = 'version: 1\n'): Promise<Project> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'sandstack-rt-'));
  const repo = path.join(base, name);
  const home = path.join(base, '.sandstack-home');
  await mkdir(repo, { recursive: true });
  await writeFile(path.join(repo, 'compose.yaml'), compose);
  await writeFile(path.join(repo, 'sandstack.yaml'), sandstackYaml);
  await git(repo, ['init', '-q', '-b', 'main']);
  await git(repo, ['add', '-A']);
  await git(repo, ['commit', '-qm', 'project']);
  const run = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(home, repo, args, { env });
  return { base, repo, home, run };
}

/** What the given Compose resolves a model file to (v2: JSON; v1: its YAML read as YAML 1.1, as v1 reads it). */
async function composeConfig(variant: 'v1' | 'v2', file: string, project: string): Promise<any> {
  if (variant === 'v2') {
    const r = await execa('docker', ['compose', '-p', project, '-f', file, 'config', '--format', 'json'], { reject: false });
    expect(r.stderr).not.toMatch(/error/i);
    return JSON.parse(String(r.stdout));
  }
  const r = await execa(V1, ['-p', project, '-f', file, 'config'], { reject: false });
  expect(r.exitCode, String(r.stderr)).toBe(0);
  // Read v1's output with PyYAML itself (what v1 reads), converted to JSON.
  const py = await execa('/usr/bin/python3', ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], {
    input: String(r.stdout),
    env: { PYTHONPATH: PYYAML_PATH },
  });
  return JSON.parse(String(py.stdout));
}

for (const variant of ['v2', 'v1'] as const) {
  const env: Record<string, string> = variant === 'v1' ? { SANDSTACK_COMPOSE: V1 } : {};

  describe(`rendered model round trip on Compose ${variant}`, () => {
    let p: Project;
    const ids = [`rt-${variant}-a`, `rt-${variant}-b`];

    beforeAll(async () => {
      p = await makeProject(`roundtrip-${variant}`, composeText(variant));
    });
    afterAll(async () => {
      for (const id of ids) await p.run(['destroy', '--instance', id, '--json'], env);
      await rm(p.base, { recursive: true, force: true });
    });

    it('Compose reads the state-dir model back with every string unchanged, and the container gets them', async () => {
      const up = await p.run(['up', '--no-gate', '--json', '--instance', ids[0]!], env);
      expect(up.exitCode, JSON.stringify(up.json?.error ?? up.json?.gate?.failure ?? up.stderr)).toBe(0);
      const file = path.join(p.home, 'instances', ids[0]!, 'compose.rendered.yaml');
      const text = await readFile(file, 'utf8');
      expect(text).not.toMatch(/^%YAML/m);
      const back = await composeConfig(variant, file, ids[0]!);
      const app = back.services.app;
      expect(app.restart).toBe('no');
      Object.entries(TRICKY).forEach(([k, v], i) => {
        expect(app.environment[k], `environment ${k}`).toBe(v);
        expect(app.labels[`com.example.l${i}`], `label ${k}`).toBe(v);
      });
      const [c] = await docker.listContainers({ all: true, filters: { label: [`dev.sandstack.instance=${ids[0]}`] } });
      const info = await docker.getContainer(c!.Id).inspect();
      expect(info.HostConfig.RestartPolicy?.Name).toBe('no');
      Object.entries(TRICKY).forEach(([k, v], i) => {
        expect(info.Config.Env).toContain(`${k}=${v}`);
        expect(info.Config.Labels[`com.example.l${i}`]).toBe(v);
      });
    }, 180_000);

    it('another state home on the same engine neither adopts the instance nor takes it over', async () => {
      const otherHome = path.join(p.base, '.other-home');
      const ls = await p.run(['ls'], { ...env, SANDSTACK_HOME: otherHome });
      expect(ls.stdout + ls.stderr).toMatch(new RegExp(`skipped \\d+ instance\\(s\\) of another state home: [^\\n]*${ids[0]}`));
      // ls of the other home does not list it either (it says it left it out).
      const lsJson = await p.run(['ls', '--json'], { ...env, SANDSTACK_HOME: otherHome });
      expect(lsJson.json.instances.map((i: { id: string }) => i.id)).not.toContain(ids[0]);
      const r = await p.run(['up', '--no-gate', '--json', '--instance', ids[0]!], { ...env, SANDSTACK_HOME: otherHome });
      expect(r.exitCode).not.toBe(0);
      expect(r.json.error.code).toBe('SANDSTACK_INSTANCE_CLASH');
      const registry = JSON.parse(await readFile(path.join(otherHome, 'registry.json'), 'utf8').catch(() => '{"instances":{}}'));
      expect(Object.keys(registry.instances)).not.toContain(ids[0]);
      // Still running, untouched, under its own home.
      const [c] = await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${ids[0]}`, `dev.sandstack.home`], status: ['running'] } });
      expect(c).toBeDefined();
    }, 120_000);

    it('the printed model (render) reads back the same too', async () => {
      const r = await p.run(['render', '--instance', ids[0]!], env);
      expect(r.exitCode, r.stderr).toBe(0);
      const file = path.join(p.base, `printed-${variant}.yaml`);
      await writeFile(file, r.stdout);
      const app = (await composeConfig(variant, file, ids[0]!)).services.app;
      expect(app.restart).toBe('no');
      for (const [k, v] of Object.entries(TRICKY)) expect(app.environment[k]).toBe(v);
      expect(app.labels['dev.sandstack.instance']).toBe(ids[0]);
      expect(app.labels['dev.sandstack.managed']).toBe('true');
      expect(r.stdout).not.toContain('REDACTED');
    }, 120_000);

    it('a fixed subnet and address are neutralised and reported, so a second instance runs beside the first', async () => {
      const up = await p.run(['up', '--no-gate', '--json', '--instance', ids[1]!], env);
      expect(up.exitCode, JSON.stringify(up.json?.error ?? up.json?.gate?.failure ?? up.stderr)).toBe(0);
      expect(up.json.render.neutralised).toEqual(
        expect.arrayContaining([
          { kind: 'subnet', network: 'fixed', value: '172.29.77.0/24' },
          { kind: 'gateway', network: 'fixed', value: '172.29.77.1' },
          { kind: 'ipv4_address', network: 'fixed', service: 'app', value: '172.29.77.10' },
        ]),
      );
      for (const id of ids) {
        const [c] = await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${id}`], status: ['running'] } });
        expect(c, `${id} running`).toBeDefined();
        const nets = (await docker.getContainer(c!.Id).inspect()).NetworkSettings.Networks;
        const fixed = Object.entries(nets).find(([n]) => n.endsWith('_fixed'))![1];
        expect(fixed.IPAddress).not.toBe('172.29.77.10');
        expect(fixed.Aliases ?? []).toContain('app-alias');
      }
    }, 180_000);
  });
}

describe('IPv6 network with a fixed subnet on Compose v2', () => {
  let p: Project;
  const ids = ['rt-v6-a', 'rt-v6-b'];
  beforeAll(async () => {
    p = await makeProject(
      'roundtrip-v6',
      `services:
  app:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
    stop_grace_period: 1s
    networks:
      v6:
        ipv6_address: fd00:dead:beef::10
networks:
  v6:
    enable_ipv6: true
    ipam:
      config:
        - subnet: fd00:dead:beef::/64
`,
    );
  });
  afterAll(async () => {
    for (const id of ids) await p.run(['destroy', '--instance', id, '--json']);
    await rm(p.base, { recursive: true, force: true });
  });

  it('each instance gets an IPv6 subnet of its own and both run', async () => {
    const subnets: string[] = [];
    for (const id of ids) {
      const up = await p.run(['up', '--no-gate', '--json', '--instance', id]);
      expect(up.exitCode, JSON.stringify(up.json?.error ?? up.json?.gate?.failure ?? up.stderr)).toBe(0);
      const v6 = up.json.render.neutralised.find((n: any) => n.kind === 'subnet');
      expect(v6).toMatchObject({ network: 'v6', value: 'fd00:dead:beef::/64', replacement: expect.stringMatching(/^fd/) });
      subnets.push(v6.replacement);
      const [n] = await docker.listNetworks({ filters: { label: [`dev.sandstack.instance=${id}`], name: [`${id}_v6`] } });
      const info = await docker.getNetwork(n!.Id).inspect();
      expect(info.EnableIPv6).toBe(true);
      expect(info.IPAM.Config.map((c: { Subnet: string }) => c.Subnet)).toContain(v6.replacement);
    }
    expect(subnets[0]).not.toBe(subnets[1]);
  }, 180_000);
});

describe('a failing BuildKit build on Compose v2', () => {
  let p: Project;
  beforeAll(async () => {
    p = await makeProject(
      'buildfail',
      `services:
  web:
    build: ./web
    command: ["sleep", "infinity"]
  other:
    image: debian:bookworm-slim
    command: ["sleep", "infinity"]
`,
    );
    await mkdir(path.join(p.repo, 'web'));
    await writeFile(path.join(p.repo, 'web', 'Dockerfile'), 'FROM debian:bookworm-slim\nRUN echo building\nRUN exit 7\n');
  });
  afterAll(async () => {
    await rm(p.base, { recursive: true, force: true });
  });

  it('fails the gate build stage naming the service, the step and the exit code', async () => {
    const r = await p.run(['gate', '--fresh', '--json']);
    expect(r.exitCode).toBe(1);
    const report = r.json;
    expect(report.failure).toMatchObject({ stage: 'build', code: 'SANDSTACK_BUILD_FAILED', service: 'web', exitCode: 7 });
    expect(report.failure.message).toContain('RUN exit 7');
    // BuildKit, not the classic builder, ran the build (the base image is local: no registry needed).
    expect(report.failure.logTail.join('\n')).toMatch(/^#\d+ \[web 3\/3\] RUN exit 7/m);
  }, 300_000);
});
