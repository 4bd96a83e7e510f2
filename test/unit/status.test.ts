import { describe, expect, it } from 'vitest';
import type { ContainerView } from '../../src/engine/docker.js';
import { COMPOSE_SERVICE_LABEL, LABELS } from '../../src/identity/identity.js';
import { exitCodeOf, listedState, servicePorts, summarizeState, urlFor, type ListedContainer } from '../../src/lifecycle/status.js';
import type { InstanceRecord } from '../../src/state/registry.js';
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
    [['restarting', 'running'], 'partial'],
    [['paused'], 'stopped'],
    [['dead', 'running'], 'partial'],
  ])('%j -> %s', (states, expected) => {
    expect(summarizeState(states.map((state) => ({ state })))).toBe(expected);
  });

  it('a service that may finish and exited 0 is done, not down; exited non-zero it is down', () => {
    const svc = (name: string, state: string, exitCode: number | null = null) => ({ name, state, exitCode });
    expect(summarizeState([svc('api', 'running'), svc('migrate', 'exited', 0)], ['migrate'])).toBe('running');
    expect(summarizeState([svc('api', 'running'), svc('migrate', 'exited', 1)], ['migrate'])).toBe('partial');
    expect(summarizeState([svc('api', 'running'), svc('migrate', 'exited', 0)])).toBe('partial');
    // Only finished jobs and nothing running: not running.
    expect(summarizeState([svc('api', 'exited', 0), svc('migrate', 'exited', 0)], ['migrate'])).toBe('stopped');
  });
});

describe('listedState', () => {
  const c = (service: string, state: string, over: Partial<ListedContainer> = {}): ListedContainer => ({
    labels: { [LABELS.instance]: 'feat-a', [COMPOSE_SERVICE_LABEL]: service, [LABELS.worktree]: '/w/feat-a' },
    state,
    status: state === 'running' ? 'Up 5 seconds' : 'Exited (0) 3 seconds ago',
    created: 100,
    ports: [],
    ...over,
  });
  const rec = (over: Partial<InstanceRecord> = {}): InstanceRecord => ({
    id: 'feat-a', worktree: '/w/feat-a', projectDir: '/w/feat-a', kind: 'local', createdAt: '2026-01-01T00:00:00Z', createdBy: 'up', leases: [], services: ['api', 'db', 'migrate'], mayFinish: ['migrate'], ...over,
  });

  it('running when every service the last start ran is up (a finished job counts), with no drift', () => {
    const r = listedState('feat-a', [c('api', 'running'), c('db', 'running'), c('migrate', 'exited')], rec());
    expect(r).toEqual({ state: 'running', containers: { running: 2, total: 3 }, drift: [] });
  });

  it('a service whose container was removed outside sandstack makes it partial, and says so', () => {
    const r = listedState('feat-a', [c('api', 'running'), c('migrate', 'exited')], rec());
    expect(r.state).toBe('partial');
    expect(r.drift).toEqual(['no container for db (removed outside sandstack?)']);
  });

  it('judges each service by its newest container', () => {
    const r = listedState('feat-a', [c('api', 'exited', { created: 50, status: 'Exited (137) 1 minute ago' }), c('api', 'running', { created: 90 }), c('db', 'running'), c('migrate', 'exited')], rec());
    expect(r.state).toBe('running');
  });

  it('a crashed job is not done', () => {
    const r = listedState('feat-a', [c('api', 'running'), c('db', 'running'), c('migrate', 'exited', { status: 'Exited (2) 1 second ago' })], rec());
    expect(r.state).toBe('partial');
  });

  it('names a worktree that differs between registry and labels, and a port published off its lease', () => {
    const leases = [{ service: 'api', containerPort: 8000, protocol: 'tcp' as const, hostPort: 21000, scheme: 'http' as const }];
    const r = listedState('feat-a', [c('api', 'running', { ports: [{ containerPort: 8000, protocol: 'tcp', hostPort: 21005 }] }), c('db', 'running'), c('migrate', 'exited')], rec({ worktree: '/w/elsewhere', leases }));
    expect(r.drift).toEqual([
      'registry says worktree /w/elsewhere, Docker\'s labels say /w/feat-a',
      'api:8000/tcp is published on 21005, but its lease is 21000 (sandstack down && sandstack up re-publishes it on the lease)',
    ]);
  });

  it('without a record (or one from before services were recorded) it goes by the containers alone', () => {
    expect(listedState('feat-a', [c('api', 'running')], undefined).state).toBe('running');
    expect(listedState('feat-a', [], rec()).state).toBe('down');
    expect(listedState('feat-a', [], rec()).drift).toEqual([]);
  });
});

describe('exitCodeOf', () => {
  it('reads the exit code from Docker status text', () => {
    expect(exitCodeOf('Exited (0) 3 minutes ago')).toBe(0);
    expect(exitCodeOf('Exited (137) 2 seconds ago')).toBe(137);
    expect(exitCodeOf('Up 5 minutes (healthy)')).toBeNull();
    expect(exitCodeOf('Created')).toBeNull();
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
