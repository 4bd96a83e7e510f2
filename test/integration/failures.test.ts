/**
 * Bad input and failures on the real engine: each gets a clear error, the documented exit code,
 * and leaves nothing behind (no labelled resource, no registry entry).
 */
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, docker, labelled, makeSandbox, type Sandbox } from './helpers.js';

let sb: Sandbox | undefined;
afterEach(async () => {
  await sb?.cleanup();
  sb = undefined;
});

async function expectNothingLeft(s: Sandbox, id: string): Promise<void> {
  expect(await labelled(id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
  const ls = await s.run(s.repo, ['ls', '--json']);
  expect(ls.json.instances.map((i: any) => i.id)).not.toContain(id);
}

async function replaceInFile(file: string, from: string | RegExp, to: string): Promise<void> {
  const text = await readFile(file, 'utf8');
  const next = text.replace(from, () => to);
  if (next === text) throw new Error(`pattern ${from} not found in ${file}`);
  await writeFile(file, next);
}

describe('up fails fast and rolls back', () => {
  it('a backend that exits 1 at start: exit 1, names the service, exit code and its log, leaves nothing', async () => {
    sb = await makeSandbox((repo) =>
      replaceInFile(path.join(repo, 'compose.yaml'), 'command: ["python3", "/app/backend.py"]', 'command: ["sh", "-c", "echo backend boom: cannot load settings; exit 1"]'),
    );
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', 'crashy']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.json.error.code).toBe('SANDSTACK_SERVICE_FAILED');
    expect(r.json.error.message).toContain('backend');
    expect(r.json.error.details.failure.exitCode).toBe(1);
    expect(r.json.error.details.failure.logTail.join('\n')).toContain('backend boom');
    expect(r.stderr).toContain('backend boom');
    await expectNothingLeft(sb, 'crashy');
  }, 300_000);

  it('Ctrl-C during up: exit 130 and everything it started is removed', async () => {
    sb = await makeSandbox();
    const child = execa('node', [CLI, 'up', '--instance', 'interrupted'], { cwd: sb.repo, env: { SANDSTACK_HOME: sb.home }, reject: false, stdin: 'ignore' });
    // Interrupt once the first container exists (mid-start).
    for (let i = 0; i < 600; i++) {
      const c = await docker.listContainers({ all: true, filters: { label: ['dev.sandstack.instance=interrupted'] } });
      if (c.length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(130);
    expect(String(r.stderr)).toContain('SANDSTACK_INTERRUPTED');
    await expectNothingLeft(sb, 'interrupted');
  }, 300_000);

  it('a leased port held by a foreign process: exit 1, names the process, starts nothing', async () => {
    sb = await makeSandbox();
    const created = await sb.run(sb.repo, ['new', 'feat/busy', '--json']);
    expect(created.exitCode, created.stderr).toBe(0);
    const port = created.json.ports[0].host as number;
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const r = await sb.run(created.json.instance.projectDir, ['up', '--json']);
      expect(r.exitCode).toBe(1);
      expect(r.json.error.code).toBe('SANDSTACK_PORT_IN_USE');
      expect(r.json.error.message).toContain(String(port));
      expect(r.json.error.details.holder.pid).toBe(process.pid);
      expect(await labelled(created.json.instance.id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
      // The images this first up built went with the rollback.
      expect(await docker.listImages({ filters: { label: [`dev.sandstack.instance=${created.json.instance.id}`] } })).toEqual([]);
    } finally {
      server.close();
    }
  }, 300_000);
});

describe('bad input is refused before anything starts', () => {
  it('an invalid compose file: exit 2 with Compose\'s message', async () => {
    sb = await makeSandbox((repo) => replaceInFile(path.join(repo, 'compose.yaml'), 'build: ./db', 'build: ./db\n    helthcheck: {test: ["CMD", "true"]}'));
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', 'badcompose']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_COMPOSE_INVALID');
    expect(r.json.error.message).toContain('helthcheck');
    await expectNothingLeft(sb, 'badcompose');
  });

  it('a missing compose file: exit 2', async () => {
    sb = await makeSandbox((repo) => writeFile(path.join(repo, 'sandstack.yaml'), 'compose:\n  files: [missing.yaml]\n'));
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', 'nocompose']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_COMPOSE_NOT_FOUND');
    await expectNothingLeft(sb, 'nocompose');
  });

  it('an invalid sandstack.yaml: exit 2, says which key and where', async () => {
    sb = await makeSandbox((repo) => writeFile(path.join(repo, 'sandstack.yaml'), 'version: 1\nports:\n  publish:\n    - service: backend\n      port: "eight thousand"\n  colour: blue\n'));
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', 'badconfig']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(r.json.error.message).toContain('sandstack.yaml:5:');
    expect(r.json.error.message).toContain('ports.publish[0].port');
    expect(r.json.error.message).toContain('sandstack.yaml:6:3: ports.colour: unknown key "colour"');
    await expectNothingLeft(sb, 'badconfig');
  });

  it('a publish entry naming an unknown service: exit 2, nothing registered', async () => {
    sb = await makeSandbox((repo) => writeFile(path.join(repo, 'sandstack.yaml'), 'secrets: [{ name: DB_PASSWORD }]\nports:\n  publish:\n    - service: frontend\n      port: 3000\n'));
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', 'unknownsvc']);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_UNKNOWN_SERVICE');
    await expectNothingLeft(sb, 'unknownsvc');
  });

  it('Docker not reachable: exit 3', async () => {
    sb = await makeSandbox();
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', 'nodocker'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    expect(r.exitCode).toBe(3);
    expect(r.json.error.code).toBe('SANDSTACK_DOCKER_UNAVAILABLE');
  });

  it('Compose missing: exit 3', async () => {
    sb = await makeSandbox();
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', 'nocomposecli'], { env: { SANDSTACK_COMPOSE: '/nonexistent/docker-compose' } });
    expect(r.exitCode).toBe(3);
    expect(r.json.error.code).toBe('SANDSTACK_COMPOSE_UNAVAILABLE');
    await expectNothingLeft(sb, 'nocomposecli');
  });

  it('an instance id already owned by another worktree: exit 2', async () => {
    sb = await makeSandbox();
    const created = await sb.run(sb.repo, ['new', 'feat/owner', '--json']);
    expect(created.exitCode, created.stderr).toBe(0);
    const r = await sb.run(sb.repo, ['up', '--json', '--instance', created.json.instance.id]);
    expect(r.exitCode).toBe(2);
    expect(r.json.error.code).toBe('SANDSTACK_INSTANCE_CLASH');
    expect(await labelled(created.json.instance.id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
  });

  it('init writes a config that sandstack accepts, and refuses to overwrite it', async () => {
    sb = await makeSandbox(async (repo) => {
      const { rm } = await import('node:fs/promises');
      await rm(path.join(repo, 'sandstack.yaml'));
    });
    const r = await sb.run(sb.repo, ['init', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.publish).toEqual(expect.arrayContaining([{ service: 'backend', port: 8000, protocol: 'http' }, { service: 'db', port: 5432, protocol: 'tcp' }]));
    expect(r.json.composeFindings.containerNames.join()).toContain('ktrdr-backend');
    expect(r.json.secrets).toEqual(['DB_PASSWORD']);
    const rendered = await sb.run(sb.repo, ['render', '--json', '--instance', 'initcheck']);
    expect(rendered.exitCode, rendered.stderr).toBe(0);
    expect(rendered.json.report.published).toHaveLength(2);
    const again = await sb.run(sb.repo, ['init', '--json']);
    expect(again.exitCode).toBe(2);
    expect(again.json.error.code).toBe('SANDSTACK_CONFIG_EXISTS');
    await expectNothingLeft(sb, 'initcheck');
  });
});
