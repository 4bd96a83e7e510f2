import { describe, expect, it } from 'vitest';
import type { ContainerView } from '../../src/engine/docker.js';
import { servicePorts, summarizeState, urlFor } from '../../src/lifecycle/status.js';
import type { Lease } from '../../src/state/registry.js';
import { containerView } from './fixtures.js';

const leases: Lease[] = [
  { service: 'web', containerPort: 3000, protocol: 'tcp', hostPort: 21000, scheme: 'http' },
  { service: 'web', containerPort: 3443, protocol: 'tcp', hostPort: 21001, scheme: 'https' },
  { service: 'db', containerPort: 5432, protocol: 'tcp', hostPort: 21002, scheme: 'tcp' },
];

function view(over: Partial<ContainerView>): ContainerView {
  return containerView('web', { id: 'c1', ...over });
}

describe('summarizeState', () => {
  it.each([
    [[], 'down'],
    [['not created', 'not created'], 'down'],
    [['running', 'running'], 'running'],
    [['running', 'exited'], 'partial'],
    [['running', 'not created'], 'partial'],
    [['exited', 'exited'], 'stopped'],
    [['exited', 'not created'], 'stopped'],
    [['created'], 'stopped'],
  ])('%j -> %s', (states, expected) => {
    expect(summarizeState(states.map((state) => ({ state })))).toBe(expected);
  });
});

describe('urlFor', () => {
  it('builds URLs for http and https leases', () => {
    expect(urlFor({ scheme: 'http', hostPort: 21000 }, '127.0.0.1', 21000)).toBe('http://127.0.0.1:21000');
    expect(urlFor({ scheme: 'https', hostPort: 21001 }, '127.0.0.1', 21001)).toBe('https://127.0.0.1:21001');
  });

  it('uses the given host port and maps the wildcard address to loopback', () => {
    expect(urlFor({ scheme: 'http', hostPort: 1 }, '0.0.0.0', 21005)).toBe('http://127.0.0.1:21005');
    expect(urlFor({ scheme: 'http', hostPort: 1 }, '', 21005)).toBe('http://127.0.0.1:21005');
  });

  it('gives no URL for tcp/udp leases or without a lease', () => {
    expect(urlFor({ scheme: 'tcp', hostPort: 21002 }, '127.0.0.1', 21002)).toBeNull();
    expect(urlFor({ scheme: 'udp', hostPort: 21003 }, '127.0.0.1', 21003)).toBeNull();
    expect(urlFor(undefined, '127.0.0.1', 21000)).toBeNull();
  });

  // BUG (src/lifecycle/status.ts, urlFor): an IPv6 host address is put in the URL without
  // brackets, giving "http://::1:21000", which is not a URL.
  it('gives a parseable URL for an IPv6 host address', () => {
    const url = urlFor({ scheme: 'http', hostPort: 21000 }, '::1', 21000);
    expect(new URL(url!).port).toBe('21000');
  });
});

describe('servicePorts', () => {
  it("uses Docker's ports for a running container, with URLs from matching leases", () => {
    const c = view({
      ports: [
        { containerPort: 3000, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 21000 },
        { containerPort: 9000, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 32768 },
      ],
    });
    expect(servicePorts('web', c, leases)).toEqual([
      { container: 3000, protocol: 'tcp', host: 21000, hostIp: '127.0.0.1', url: 'http://127.0.0.1:21000' },
      { container: 9000, protocol: 'tcp', host: 32768, hostIp: '127.0.0.1', url: null },
    ]);
  });

  it('does not match a lease of another protocol', () => {
    const c = view({ ports: [{ containerPort: 3000, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 21000 }] });
    expect(servicePorts('web', c, leases)[0]!.url).toBeNull();
  });

  it('falls back to the leases when the container is not running', () => {
    const c = view({ state: 'exited', ports: [{ containerPort: 3000, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 99 }] });
    expect(servicePorts('web', c, leases)).toEqual([
      { container: 3000, protocol: 'tcp', host: 21000, hostIp: '127.0.0.1', url: 'http://127.0.0.1:21000' },
      { container: 3443, protocol: 'tcp', host: 21001, hostIp: '127.0.0.1', url: 'https://127.0.0.1:21001' },
    ]);
  });

  it('falls back to the leases without a container or without reported ports', () => {
    expect(servicePorts('db', undefined, leases)).toEqual([{ container: 5432, protocol: 'tcp', host: 21002, hostIp: '127.0.0.1', url: null }]);
    expect(servicePorts('db', view({ service: 'db', ports: [] }), leases)).toHaveLength(1);
  });

  it('returns nothing for a service without leases or ports', () => {
    expect(servicePorts('worker', undefined, leases)).toEqual([]);
  });
});
