import { describe, expect, it } from 'vitest';
import type { ContainerView } from '../../src/engine/docker.js';
import { checkIsolation } from '../../src/gate/isolation.js';
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
