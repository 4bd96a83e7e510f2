import { describe, expect, it } from 'vitest';
import { SandstackError } from '../../src/errors.js';
import { parseUserConfig } from '../../src/config/user.js';
import { configuredEngines, engineSpec, nameFromUrl, placeOn, type EngineStatus } from '../../src/engine/select.js';
import { connectionDir, parseProcNet, parseSshUrl, remoteRoot } from '../../src/engine/ssh.js';

const FILE = '/home/u/.config/sandstack/config.yaml';

describe('engines in the user config', () => {
  it('accepts named ssh engines with capacity and root, a capacity for local, and a pool of them', () => {
    const c = parseUserConfig(
      'engines:\n  local: { capacity: 2 }\n  build-1: { url: "ssh://ci@10.0.0.5", capacity: 4 }\n  b2: { url: "ssh://h2:2222", root: /srv/ss }\npool: [local, build-1, b2]\n',
      FILE,
    );
    expect(configuredEngines(c)).toEqual([
      { name: 'local', capacity: 2 },
      { name: 'build-1', url: 'ssh://ci@10.0.0.5', capacity: 4 },
      { name: 'b2', url: 'ssh://h2:2222', root: '/srv/ss' },
    ]);
    expect(c.pool).toEqual(['local', 'build-1', 'b2']);
  });

  it('rejects a remote engine without url, a url that is not ssh, a url on local, a pool naming an unknown engine, a zero capacity', () => {
    const bad = (text: string, message: RegExp) => {
      try {
        parseUserConfig(text, FILE);
      } catch (e) {
        expect(e).toBeInstanceOf(SandstackError);
        expect((e as SandstackError).message).toMatch(message);
        return;
      }
      throw new Error(`accepted: ${text}`);
    };
    bad('engines:\n  b1: { capacity: 2 }\n', /engines\.b1\.url.*a remote engine needs url/s);
    bad('engines:\n  b1: { url: "tcp://h:2375" }\n', /an ssh URL/);
    bad('engines:\n  local: { url: "ssh://h" }\n', /only `capacity` can be set/);
    bad('engines:\n  b1: { url: "ssh://h" }\npool: [b1, b9]\n', /"b9" is not an engine listed under engines/);
    bad('engines:\n  b1: { url: "ssh://h", capacity: 0 }\n', /capacity/);
    bad('engines:\n  "bad name": { url: "ssh://h" }\n', /engines\.bad name: Invalid key/);
  });
});

describe('engine names and specs', () => {
  it('parses ssh URLs and refuses what is not one', () => {
    expect(parseSshUrl('ssh://root@10.0.0.5')).toEqual({ user: 'root', host: '10.0.0.5' });
    expect(parseSshUrl('ssh://h.example:2222/')).toEqual({ host: 'h.example', port: 2222 });
    for (const u of ['ssh://', 'ssh://a@b@c', 'http://h', 'ssh://h:99999', 'ssh://h/path']) expect(parseSshUrl(u), u).toBeUndefined();
    expect(nameFromUrl('ssh://ci@build.example:2222')).toBe('build.example-2222');
    expect(nameFromUrl('ssh://ci@build.example:22')).toBe('build.example');
  });

  it('resolves local, configured names, URLs (to the configured name when listed) and refuses the unknown', async () => {
    const user = parseUserConfig('engines:\n  b1: { url: "ssh://ci@h1", root: /srv }\n', FILE);
    const env = { PATH: '/nonexistent' };
    expect(await engineSpec('local', user, env, '--engine')).toEqual({ name: 'local' });
    expect(await engineSpec('b1', user, env, '--engine')).toEqual({ name: 'b1', url: 'ssh://ci@h1', root: '/srv' });
    expect(await engineSpec('ssh://ci@h1', user, env, 'SANDSTACK_ENGINE')).toEqual({ name: 'b1', url: 'ssh://ci@h1', root: '/srv' });
    expect(await engineSpec('ssh://x@h9:2200', user, env, 'SANDSTACK_ENGINE')).toEqual({ name: 'h9-2200', url: 'ssh://x@h9:2200' });
    await expect(engineSpec('b9', user, env, 'sandstack.yaml')).rejects.toMatchObject({ code: 'SANDSTACK_ENGINE_UNKNOWN', message: expect.stringContaining('Engine "b9" (from sandstack.yaml) is not known') });
    await expect(engineSpec('ssh://a@b@c', user, env, '--engine')).rejects.toMatchObject({ code: 'SANDSTACK_ENGINE_UNKNOWN' });
  });

  it('keeps connection sockets short and apart per state home and engine; remote folders apart per state home', () => {
    const a = connectionDir('/home/u/.local/share/sandstack-with-a-very-long-name/and/deeper/still', 'build-1');
    expect(`${a}/docker.sock`.length).toBeLessThan(100);
    expect(connectionDir('/h1', 'e')).not.toBe(connectionDir('/h2', 'e'));
    expect(connectionDir('/h1', 'e')).not.toBe(connectionDir('/h1', 'f'));
    const r1 = remoteRoot({ name: 'e', url: 'ssh://h' }, { home: '/home/ci' }, '/h1');
    expect(r1).toMatch(/^\/home\/ci\/\.sandstack-remote\/[0-9a-f]{12}$/);
    expect(remoteRoot({ name: 'e', url: 'ssh://h', root: '/srv/ss' }, { home: '/home/ci' }, '/h1')).toMatch(/^\/srv\/ss\/[0-9a-f]{12}$/);
    expect(remoteRoot({ name: 'e', url: 'ssh://h' }, { home: '/home/ci' }, '/h2')).not.toBe(r1);
  });
});

describe('placement on the pool', () => {
  const e = (name: string, over: Partial<EngineStatus> = {}): EngineStatus => ({ name, endpoint: name, reachable: true, instances: 0, inPool: true, ...over });

  it('takes the least-loaded reachable engine with room; ties go to more free memory, then pool order', () => {
    expect(placeOn([e('local', { instances: 1 }), e('r1'), e('r2')])?.name).toBe('r1');
    expect(placeOn([e('local', { instances: 1 }), e('r1', { instances: 1, memAvailable: 1e9 }), e('r2', { instances: 1, memAvailable: 4e9 })])?.name).toBe('r2');
    // Load is per capacity slot: 2 of 8 is lighter than 1 of 2.
    expect(placeOn([e('a', { instances: 1, capacity: 2 }), e('b', { instances: 2, capacity: 8 })])?.name).toBe('b');
    expect(placeOn([e('a', { reachable: false }), e('b', { instances: 3 })])?.name).toBe('b');
  });

  it('skips full and unreachable engines, and finds none when all are', () => {
    expect(placeOn([e('a', { instances: 2, capacity: 2 }), e('b', { instances: 5, capacity: 9 })])?.name).toBe('b');
    expect(placeOn([e('a', { instances: 2, capacity: 2 }), e('b', { reachable: false })])).toBeUndefined();
    expect(placeOn([])).toBeUndefined();
  });

  it('spreads three new instances over three empty engines', () => {
    const pool = [e('local'), e('r1'), e('r2')];
    const placed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const p = placeOn(pool)!;
      placed.push(p.name);
      p.instances++;
    }
    expect(placed.sort()).toEqual(['local', 'r1', 'r2']);
  });
});

describe('ports bound on a remote host (/proc/net)', () => {
  const text = [
    '# tcp',
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:0016 0100007F:D431 01 00000000:00000000 02:000AFC7E 00000000     0        0 2 4 0000000000000000 20 4 30 10 -1',
    '# tcp6',
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0',
    '# udp',
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops',
    '  12: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4 2 0000000000000000 0',
    '# udp6',
  ].join('\n');

  it('takes listening tcp sockets (v4 and v6) and bound udp sockets, not connections', () => {
    const p = parseProcNet(text);
    expect([...p.tcp].sort((a, b) => a - b)).toEqual([8080, 20000]);
    expect([...p.udp]).toEqual([5353]);
  });

  it('knows nothing from an empty or unreadable answer', () => {
    expect(parseProcNet('')).toEqual({ tcp: new Set(), udp: new Set() });
  });
});
