/**
 * Snapshots on the real engine with the demo stack: a snapshot of an instance with rows (taken while
 * the backend writes) seeds two new instances that pass the gate, each with its own password given
 * to the data by the demo's re-key hook (or the snapshot's without one), and see the rows, each
 * writing only its own; PostgreSQL starts from it without recovery. Missing,
 * corrupt and incompatible snapshots fail before anything starts; `snapshot rm` and destroy leave
 * nothing.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiUrl, docker, expectSandboxClean, http, labelled, makeSandbox, type Sandbox } from './helpers.js';

const SOURCE = 'snap-src';

async function dbLog(id: string): Promise<string> {
  const c = (await docker.listContainers({ all: true, filters: { label: [`dev.sandstack.instance=${id}`, 'com.docker.compose.service=db'] } }))[0]!;
  return ((await docker.getContainer(c.Id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer).toString('utf8');
}

async function secretOf(dir: string): Promise<string> {
  const file = path.join(dir, 'secrets', 'DB_PASSWORD');
  expect((await stat(file)).mode & 0o777).toBe(0o600);
  return (await readFile(file, 'utf8')).trim();
}

async function itemNames(url: string): Promise<string[]> {
  const r = await http(`${url}/api/v1/items`);
  expect(r.status).toBe(200);
  return (r.body.items as { name: string }[]).map((i) => i.name);
}

describe('snapshots', () => {
  let sb: Sandbox;
  let sourceUrl: string;

  beforeAll(async () => {
    sb = await makeSandbox();
    const up = await sb.run(sb.repo, ['up', '--no-gate', '--json', '--instance', SOURCE]);
    expect(up.exitCode, up.stderr).toBe(0);
    sourceUrl = apiUrl(up.json);
    for (const name of ['alpha', 'beta', 'gamma']) {
      const r = await http(`${sourceUrl}/api/v1/items`, { method: 'POST', body: JSON.stringify({ name }) });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
  }, 600_000);

  afterAll(async () => {
    await sb?.cleanup();
  });

  it('save while the backend writes: the hook runs, db is stopped and started again, the manifest names what is inside', async () => {
    // Writes keep coming while the snapshot is taken.
    let writing = true;
    let written = 0;
    const writer = (async () => {
      while (writing) {
        const r = await http(`${sourceUrl}/api/v1/items`, { method: 'POST', body: JSON.stringify({ name: `during-${written}` }) }).catch(() => undefined);
        if (r?.status === 201) written++;
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    const r = await sb.run(sb.repo, ['snapshot', 'save', 'rows', '--json', '--instance', SOURCE]);
    writing = false;
    await writer;
    expect(r.exitCode, r.stderr).toBe(0);
    const m = r.json.snapshot;
    expect(m.source.instance).toBe(SOURCE);
    expect(m.source.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(m.volumes.map((v: { key: string }) => v.key)).toEqual(['pgdata']);
    expect(m.volumes[0].mounts).toEqual([{ service: 'db', target: '/var/lib/postgresql/data' }]);
    expect(m.hook).toMatchObject({ service: 'db', exitCode: 0 });
    expect(m.stopped).toEqual(['db']);
    expect(m.secrets).toEqual(['DB_PASSWORD']);
    expect(written).toBeGreaterThan(0);
    // Stored owner-only; the value never appears in the output.
    const secretFile = path.join(r.json.dir, 'secrets', 'DB_PASSWORD');
    expect((await stat(secretFile)).mode & 0o777).toBe(0o600);
    const value = (await readFile(secretFile, 'utf8')).trim();
    expect(r.stdout + r.stderr).not.toContain(value);
    expect(await readFile(path.join(r.json.dir, 'compose.yaml'), 'utf8')).not.toContain(value);
    // The source is back: healthy and serving.
    const st = await sb.run(sb.repo, ['status', '--json', '--instance', SOURCE]);
    expect(st.json.instance.state).toBe('running');
    expect(await itemNames(sourceUrl)).toEqual(expect.arrayContaining(['alpha', 'beta', 'gamma']));

    const ls = await sb.run(sb.repo, ['snapshot', 'ls', '--json']);
    expect(ls.json.snapshots.map((s: { name: string }) => s.name)).toEqual(['rows']);
    expect(ls.json.snapshots[0].bytes).toBe(m.volumes[0].bytes);
  }, 300_000);

  it('seeds two new instances: the re-key hook gives each its own password, both pass the gate, see the rows, and write only their own', async () => {
    const [a, b] = await Promise.all(['seed-a', 'seed-b'].map((id) => sb.run(sb.repo, ['up', '--from', 'rows', '--json', '--instance', id])));
    for (const r of [a!, b!]) {
      expect(r.exitCode, r.stderr).toBe(0);
      const stages = r.json.gate.stages.map((s: { name: string; status: string }) => `${s.name}:${s.status}`);
      expect(stages).toEqual(expect.arrayContaining(['seed:passed', 'rekey:passed', 'probes:passed', 'isolation:passed']));
      expect(stages.indexOf('rekey:passed')).toBeLessThan(stages.indexOf('start:passed'));
    }
    const urlA = apiUrl(a!.json);
    const urlB = apiUrl(b!.json);
    for (const url of [urlA, urlB]) expect(await itemNames(url)).toEqual(expect.arrayContaining(['alpha', 'beta', 'gamma']));
    expect((await http(`${urlA}/api/v1/items`, { method: 'POST', body: JSON.stringify({ name: 'only-in-a' }) })).status).toBe(201);
    expect(await itemNames(urlA)).toContain('only-in-a');
    expect(await itemNames(urlB)).not.toContain('only-in-a');
    expect(await itemNames(sourceUrl)).not.toContain('only-in-a');
    // A clean shutdown was copied: no crash recovery on start.
    const log = await dbLog('seed-a');
    expect(log).toContain('database system was shut down');
    expect(log).not.toMatch(/not properly shut down|automatic recovery|interrupted/);
    // Each seeded instance has its own password (0600), neither the snapshot's nor the other's,
    // never printed; the backend logged in with it (the probes passed).
    const snapSecret = await secretOf(path.join(sb.home, 'snapshots', 'rows'));
    const secretA = await secretOf(path.join(sb.home, 'instances', 'seed-a'));
    const secretB = await secretOf(path.join(sb.home, 'instances', 'seed-b'));
    expect(new Set([snapSecret, secretA, secretB]).size).toBe(3);
    for (const [r, v] of [[a!, secretA], [b!, secretB]] as const) expect(r.stdout + r.stderr).not.toContain(v);
    expect(a!.stdout + a!.stderr).not.toContain(snapSecret);

    for (const id of ['seed-a', 'seed-b']) {
      const d = await sb.run(sb.repo, ['destroy', '--json', '--instance', id]);
      expect(d.exitCode, d.stderr).toBe(0);
      expect(await labelled(id)).toEqual({ containers: 0, volumes: 0, networks: 0 });
    }
  }, 600_000);

  it('without a re-key hook a seeded instance reuses the snapshot password; a failing hook stops before the rest starts', async () => {
    const config = path.join(sb.repo, 'sandstack.yaml');
    const text = await readFile(config, 'utf8');
    const hook = text.slice(text.indexOf('  rekey:'));
    expect(hook).toContain('secrets: [DB_PASSWORD]');
    try {
      await writeFile(config, text.replace(hook, ''));
      const reuse = await sb.run(sb.repo, ['up', '--from', 'rows', '--json', '--instance', 'seed-c']);
      expect(reuse.exitCode, reuse.stderr).toBe(0);
      expect(reuse.json.gate.stages.map((s: { name: string }) => s.name)).not.toContain('rekey');
      expect(await itemNames(apiUrl(reuse.json))).toEqual(expect.arrayContaining(['alpha', 'beta', 'gamma']));
      expect(await secretOf(path.join(sb.home, 'instances', 'seed-c'))).toBe(await secretOf(path.join(sb.home, 'snapshots', 'rows')));
      const d = await sb.run(sb.repo, ['destroy', '--json', '--instance', 'seed-c']);
      expect(d.exitCode, d.stderr).toBe(0);

      // A hook that fails: the error names the secret, only db was started, and nothing is left.
      await writeFile(config, text.replace(/^( {4}command: \["sh", "-c", ")echo .*$/m, '$1echo bad >&2; exit 3"]'));
      const bad = await sb.run(sb.repo, ['up', '--from', 'rows', '--json', '--instance', 'seed-x']);
      expect(bad.exitCode, bad.stdout).toBe(1);
      expect(bad.json.error.code).toBe('SANDSTACK_REKEY_FAILED');
      expect(bad.json.error.message).toContain('DB_PASSWORD');
      expect(bad.json.error.message).toContain('exited 3');
      const stages = bad.json.error.details.gate.stages.map((s: { name: string; status: string }) => `${s.name}:${s.status}`);
      expect(stages).toContain('rekey:failed');
      expect(stages.some((s: string) => s.startsWith('start:'))).toBe(false);
      expect(await labelled('seed-x')).toEqual({ containers: 0, volumes: 0, networks: 0 });
    } finally {
      await writeFile(config, text);
    }
  }, 600_000);

  it('a missing, corrupt or incompatible snapshot fails before anything starts; an instance with data refuses --from', async () => {
    const missing = await sb.run(sb.repo, ['up', '--from', 'nope', '--json', '--instance', 'seed-x']);
    expect(missing.exitCode).toBe(2);
    expect(missing.json.error.code).toBe('SANDSTACK_SNAPSHOT_NOT_FOUND');
    expect(await labelled('seed-x')).toEqual({ containers: 0, volumes: 0, networks: 0 });

    // Corrupt: one byte of the archive changed (same size).
    const dir = path.join(sb.home, 'snapshots', 'rows');
    const tar = path.join(dir, 'volumes', 'pgdata.tar');
    const original = await readFile(tar);
    const changed = Buffer.from(original);
    changed[Math.floor(changed.length / 2)] ^= 0xff;
    await writeFile(tar, changed);
    try {
      const corrupt = await sb.run(sb.repo, ['up', '--from', 'rows', '--json', '--instance', 'seed-x']);
      expect(corrupt.exitCode).toBe(2);
      expect(corrupt.json.error.code).toBe('SANDSTACK_SNAPSHOT_INVALID');
      expect(corrupt.json.error.message).toContain('checksum');
      expect(await labelled('seed-x')).toEqual({ containers: 0, volumes: 0, networks: 0 });
      // Truncated: caught from the manifest, before anything is made.
      await writeFile(tar, original.subarray(0, 1000));
      const truncated = await sb.run(sb.repo, ['up', '--from', 'rows', '--json', '--instance', 'seed-x']);
      expect(truncated.json.error.code).toBe('SANDSTACK_SNAPSHOT_INVALID');
      expect(truncated.json.error.message).toContain('truncated');
    } finally {
      await writeFile(tar, original);
    }

    // Incompatible: this version of the project keeps its database in another volume.
    const compose = path.join(sb.repo, 'compose.yaml');
    const text = await readFile(compose, 'utf8');
    await writeFile(compose, text.replace('- pgdata:/var/lib/postgresql/data', '- dbdata:/var/lib/postgresql/data').replace(/^volumes:\n {2}pgdata:/m, 'volumes:\n  dbdata:'));
    try {
      const incompatible = await sb.run(sb.repo, ['up', '--from', 'rows', '--json', '--instance', 'seed-x']);
      expect(incompatible.exitCode).toBe(2);
      expect(incompatible.json.error.code).toBe('SANDSTACK_SNAPSHOT_INCOMPATIBLE');
      expect(incompatible.json.error.message).toContain('volume pgdata is not in this compose model');
      expect(await labelled('seed-x')).toEqual({ containers: 0, volumes: 0, networks: 0 });
    } finally {
      await writeFile(compose, text);
    }

    const existing = await sb.run(sb.repo, ['up', '--from', 'rows', '--json', '--instance', SOURCE]);
    expect(existing.exitCode).toBe(2);
    expect(['SANDSTACK_ALREADY_RUNNING', 'SANDSTACK_SNAPSHOT_EXISTS']).toContain(existing.json.error.code);
  }, 600_000);

  it('snapshot rm removes it; destroy leaves nothing', async () => {
    const rm = await sb.run(sb.repo, ['snapshot', 'rm', 'rows', '--json']);
    expect(rm.exitCode, rm.stderr).toBe(0);
    expect((await sb.run(sb.repo, ['snapshot', 'ls', '--json'])).json.snapshots).toEqual([]);
    const again = await sb.run(sb.repo, ['snapshot', 'rm', 'rows', '--json']);
    expect(again.json.error.code).toBe('SANDSTACK_SNAPSHOT_NOT_FOUND');
    const d = await sb.run(sb.repo, ['destroy', '--json', '--instance', SOURCE]);
    expect(d.exitCode, d.stderr).toBe(0);
    await expectSandboxClean(sb);
  }, 300_000);
});
