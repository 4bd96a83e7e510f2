import { describe, expect, it } from 'vitest';
import type { ContainerView } from '../../src/engine/docker.js';
import { checkIsolation, type MountPolicy } from '../../src/gate/isolation.js';
import { LABELS } from '../../src/identity/identity.js';
import { containerView } from './fixtures.js';

const ID = 'feat-a';

function container(service: string, over: Partial<ContainerView> = {}): ContainerView {
  return containerView(service, { name: `${ID}-${service}-1`, labels: { [LABELS.instance]: ID }, ...over });
}

function port(hostIp: string, hostPort = 20001, containerPort = 80, protocol = 'tcp') {
  return { containerPort, protocol, hostIp, hostPort };
}

describe('checkIsolation', () => {
  it('passes containers on loopback (127.0.0.1 and ::1) with Compose names and the instance label', () => {
    const r = checkIsolation(ID, [
      container('web', { ports: [port('127.0.0.1', 20001, 80), port('::1', 20001, 80)] }),
      container('db', { name: `${ID}_db_1` }),
    ]);
    expect(r.problems).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.containers).toEqual([`${ID}-web-1`, `${ID}_db_1`]);
    expect(r.published).toEqual([
      { service: 'web', container: `${ID}-web-1`, containerPort: 80, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 20001 },
      { service: 'web', container: `${ID}-web-1`, containerPort: 80, protocol: 'tcp', hostIp: '::1', hostPort: 20001 },
    ]);
  });

  it('passes an instance with no containers', () => {
    expect(checkIsolation(ID, [])).toEqual({ passed: true, problems: [], published: [], containers: [] });
  });

  it('flags a port published on 0.0.0.0', () => {
    const r = checkIsolation(ID, [container('web', { ports: [port('0.0.0.0', 8080, 80)] })]);
    expect(r.passed).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toBe(`${ID}-web-1: port 80/tcp is published on 0.0.0.0:8080, not on 127.0.0.1`);
    expect(r.published[0]).toMatchObject({ hostIp: '0.0.0.0', hostPort: 8080 });
  });

  it("flags a port published on '' as all addresses", () => {
    const r = checkIsolation(ID, [container('db', { ports: [port('', 5432, 5432)] })]);
    expect(r.passed).toBe(false);
    expect(r.problems).toEqual([`${ID}-db-1: port 5432/tcp is published on all addresses:5432, not on 127.0.0.1`]);
  });

  it('flags :: and a LAN address, and names the udp protocol', () => {
    const r = checkIsolation(ID, [container('dns', { ports: [port('::', 5353, 53, 'udp'), port('192.168.1.5', 5354, 53, 'udp')] })]);
    expect(r.passed).toBe(false);
    expect(r.problems).toHaveLength(2);
    expect(r.problems[0]).toContain('port 53/udp is published on :::5353');
    expect(r.problems[1]).toContain('192.168.1.5:5354');
  });

  it('flags only the non-loopback binding when a port has both', () => {
    const r = checkIsolation(ID, [container('web', { ports: [port('127.0.0.1', 20001), port('0.0.0.0', 20001)] })]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toContain('0.0.0.0:20001');
    expect(r.published).toHaveLength(2);
  });

  it('flags a fixed container name', () => {
    const r = checkIsolation(ID, [container('db', { name: 'postgres' })]);
    expect(r.passed).toBe(false);
    expect(r.problems).toEqual([`postgres: container has a fixed name (Compose would name it ${ID}_db_1 or ${ID}-db-1)`]);
  });

  it('flags a name that only starts with the id, without a separator', () => {
    const r = checkIsolation(ID, [container('db', { name: `${ID}db` })]);
    expect(r.passed).toBe(false);
    expect(r.problems[0]).toContain('fixed name');
  });

  it('flags a missing instance label', () => {
    const r = checkIsolation(ID, [container('web', { labels: {} })]);
    expect(r.passed).toBe(false);
    expect(r.problems).toEqual([`${ID}-web-1: missing label ${LABELS.instance}=${ID}`]);
  });

  it("flags an instance label naming another instance", () => {
    const r = checkIsolation(ID, [container('web', { labels: { [LABELS.instance]: 'other' } })]);
    expect(r.passed).toBe(false);
    expect(r.problems).toEqual([`${ID}-web-1: missing label ${LABELS.instance}=${ID}`]);
  });

  it('collects every problem of every container', () => {
    const r = checkIsolation(ID, [
      container('web', { name: 'web', labels: {}, ports: [port('0.0.0.0', 80)] }),
      container('db'),
      container('cache', { ports: [port('', 6379, 6379)] }),
    ]);
    expect(r.passed).toBe(false);
    expect(r.problems).toHaveLength(4);
    expect(r.problems.filter((p) => p.startsWith('web:'))).toHaveLength(3);
    expect(r.problems.filter((p) => p.startsWith(`${ID}-cache-1:`))).toHaveLength(1);
  });
});

describe('checkIsolation: mounts (Docker\'s mount list)', () => {
  const PROJECT = '/work/shop';
  const STATE = '/home/dev/.local/share/sandstack/instances/feat-a';
  const prices = { name: 'prices', host: '/mnt/datasets/prices', services: ['backend'], target: '/datasets/prices', mode: 'ro' as const };
  const policy = (over: Partial<MountPolicy> = {}): MountPolicy => ({ datasets: [prices], projectRoots: [PROJECT], instanceRoots: [STATE], ...over });
  const bind = (source: string, destination: string, rw = false) => ({ type: 'bind', source, destination, rw });

  it('accepts a dataset mounted as declared, mounts inside the project and the instance state folder, and volumes', () => {
    const r = checkIsolation(ID, [
      container('backend', {
        mounts: [
          bind('/mnt/datasets/prices', '/datasets/prices'),
          bind(`${PROJECT}/config/app.toml`, '/etc/app.toml'),
          bind(`${STATE}/data/uploads`, '/uploads', true),
          { type: 'volume', source: '/var/lib/docker/volumes/feat-a_pg/_data', destination: '/var/lib/postgresql/data', rw: true, name: 'feat-a_pg' },
        ],
      }),
      container('db', { mounts: [bind(`${STATE}/secrets/DB_PASSWORD`, '/run/secrets/db')] }),
    ], policy());
    expect(r.problems).toEqual([]);
    expect(r.passed).toBe(true);
    expect(r.mounts?.map((m) => [m.service, m.target, m.kind, m.dataset])).toEqual([
      ['backend', '/datasets/prices', 'dataset', 'prices'],
      ['backend', '/etc/app.toml', 'project', undefined],
      ['backend', '/uploads', 'instance', undefined],
      ['db', '/run/secrets/db', 'instance', undefined],
    ]);
    expect(r.mountProblems).toEqual([]);
  });

  it('flags a declared dataset that is missing, mounted read-write, or mounted from elsewhere', () => {
    expect(checkIsolation(ID, [container('backend')], policy()).problems).toEqual([`${ID}-backend-1: the shared dataset prices (/mnt/datasets/prices) is not mounted at /datasets/prices`]);
    const rw = checkIsolation(ID, [container('backend', { mounts: [bind('/mnt/datasets/prices', '/datasets/prices', true)] })], policy());
    expect(rw.passed).toBe(false);
    expect(rw.problems).toEqual([`${ID}-backend-1: the shared dataset prices (/mnt/datasets/prices) is mounted read-write at /datasets/prices; data.shared declares it read-only`]);
    // A rw dataset may be mounted either way.
    const rwDeclared = checkIsolation(ID, [container('backend', { mounts: [bind('/mnt/datasets/prices', '/datasets/prices', true)] })], policy({ datasets: [{ ...prices, mode: 'rw' }] }));
    expect(rwDeclared.passed).toBe(true);
    const volume = checkIsolation(ID, [container('backend', { mounts: [{ type: 'volume', source: '/var/lib/docker/volumes/x/_data', destination: '/datasets/prices', rw: true, name: 'x' }] })], policy());
    expect(volume.problems).toEqual([`${ID}-backend-1: /datasets/prices is mounted from volume x, not from the shared dataset prices (/mnt/datasets/prices)`]);
    // Services the dataset is not declared for are not expected to have it.
    expect(checkIsolation(ID, [container('db')], policy()).passed).toBe(true);
  });

  it('accepts a dataset reported under its real path (symlinks resolved)', () => {
    const r = checkIsolation(ID, [container('backend', { mounts: [bind('/data/real/prices', '/datasets/prices')] })], policy({ datasets: [{ ...prices, realHost: '/data/real/prices' }] }));
    expect(r.passed).toBe(true);
  });

  it('flags an undeclared host mount outside the project and the state folder, naming the lint rule', () => {
    const r = checkIsolation(
      ID,
      [container('backend', { mounts: [bind('/mnt/datasets/prices', '/datasets/prices'), bind('/tmp/scratch', '/scratch', true), bind('/mnt/datasets/prices', '/other')] })],
      policy({ ruleFor: () => ({ ruleId: 'SS015' }) }),
    );
    expect(r.passed).toBe(false);
    expect(r.problems).toEqual([
      `${ID}-backend-1: bind-mounts the host path /tmp/scratch at /scratch, outside the project and the instance's state folder, not declared under data.shared (lint SS015; allow it under policy.allow for backend with a reason if it is meant)`,
      `${ID}-backend-1: bind-mounts the host path /mnt/datasets/prices at /other (read-only), outside the project and the instance's state folder, data.shared declares prices for backend at /datasets/prices, not at /other (lint SS015; allow it under policy.allow for backend with a reason if it is meant)`,
    ]);
    expect(r.mountProblems).toEqual(r.problems);
    expect(r.mounts?.filter((m) => m.kind === 'undeclared').map((m) => [m.source, m.ruleId])).toEqual([
      ['/tmp/scratch', 'SS015'],
      ['/mnt/datasets/prices', 'SS015'],
    ]);
    // The dataset of another service is not this one's.
    const other = checkIsolation(ID, [container('worker', { mounts: [bind('/mnt/datasets/prices', '/datasets/prices')] })], policy());
    expect(other.problems[0]).toContain('data.shared declares prices for backend at /datasets/prices, not for worker');
    // A folder beside the project, or another instance's state folder, is outside too.
    const beside = checkIsolation(ID, [container('backend', { mounts: [bind('/mnt/datasets/prices', '/datasets/prices'), bind('/work/shop-other/data', '/d'), bind('/home/dev/.local/share/sandstack/instances/feat-b/data', '/e')] })], policy());
    expect(beside.problems).toHaveLength(2);
  });

  it('accepts a host mount that policy.allow allows for that service (by the rule lint gives it)', () => {
    const ruleFor = (service: string, source: string) =>
      source === '/var/run/docker.sock' ? { ruleId: 'SS004', ...(service === 'agent' ? { allowedReason: 'the agent lists containers' } : {}) } : { ruleId: 'SS015' };
    const r = checkIsolation(ID, [container('agent', { mounts: [bind('/var/run/docker.sock', '/var/run/docker.sock')] }), container('web', { mounts: [bind('/var/run/docker.sock', '/sock')] })], policy({ datasets: [], ruleFor }));
    expect(r.mounts?.map((m) => [m.service, m.kind, m.ruleId, m.reason])).toEqual([
      ['agent', 'allowed', 'SS004', 'the agent lists containers'],
      ['web', 'undeclared', 'SS004', undefined],
    ]);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toContain(`${ID}-web-1: bind-mounts the host path /var/run/docker.sock at /sock (read-only), outside the project`);
  });

  it('checks no mounts without a mount policy', () => {
    const r = checkIsolation(ID, [container('backend', { mounts: [bind('/tmp/x', '/x', true)] })]);
    expect(r.passed).toBe(true);
    expect(r.mounts).toBeUndefined();
  });
});
