import { describe, expect, it } from 'vitest';
import { SandstackError } from '../../src/errors.js';
import { LABELS, type InstanceIdentity } from '../../src/identity/identity.js';
import { interpolationEnv, renderIsolated, type RenderInput } from '../../src/compose/render.js';
import { parseResolvedModel } from '../../src/compose/resolve.js';
import { toRecord, type ComposeModel } from '../../src/compose/model.js';
import { decodeLeases } from '../../src/ports/leases.js';
import type { Lease } from '../../src/state/registry.js';

/** What `docker-compose config` (Compose v1) prints: `version`, environment maps, mixed port forms. */
const V1_OUTPUT = `networks:
  backend: {}
services:
  api:
    build:
      context: /home/dev/shop/api
    container_name: shop-api
    depends_on:
    - db
    environment:
      DATABASE_URL: postgres://db/shop
      OTEL_RESOURCE_ATTRIBUTES: service.name=api,deployment.environment=dev
    image: shop/api:dev
    networks:
      backend: null
      default: null
    ports:
    - published: 8000
      target: 8000
    - 127.0.0.1:9229:9229/tcp
  db:
    container_name: shop-db
    environment:
      POSTGRES_PASSWORD: example
    image: postgres:16
    labels:
      com.example.team: data
    networks:
      backend: null
    ports:
    - 0.0.0.0:5432:5432/tcp
    volumes:
    - pgdata:/var/lib/postgresql/data:rw
  dns:
    image: coredns/coredns
    ports:
    - 53:53/udp
    - 53:53/tcp
  migrate:
    command: migrate
    image: shop/api:dev
    networks:
      backend: null
version: '3.9'
volumes:
  pgdata:
    name: shop_pgdata_fixed
  uploads: {}
`;

/** What `docker compose config` (Compose v2) prints: top-level name, long-syntax ports. */
const V2_OUTPUT = `name: shop
services:
  web:
    build:
      context: /home/dev/shop/web
      dockerfile: Dockerfile
    container_name: shop-web
    environment:
      LOG_LEVEL: debug
    image: shop/web:latest
    networks:
      default: null
    ports:
      - mode: ingress
        host_ip: 0.0.0.0
        target: 3000
        published: "3000"
        protocol: tcp
      - mode: ingress
        target: 9229
        published: "9229"
        protocol: tcp
  worker:
    command:
      - worker
    image: shop/web:latest
    networks:
      default: null
  cache:
    image: redis:7
    networks:
      default: null
    ports:
      - mode: ingress
        host_ip: 0.0.0.0
        target: 6379
        published: "6379"
        protocol: tcp
    volumes:
      - type: volume
        source: cachedata
        target: /data
        volume: {}
networks:
  default:
    name: shop_default
volumes:
  cachedata:
    name: shop_cachedata
`;

const idA: InstanceIdentity = { id: 'feat-a', worktree: '/home/dev/shop-feat-a', kind: 'sandbox' };
const idB: InstanceIdentity = { id: 'feat-b', worktree: '/home/dev/shop-feat-b', kind: 'local' };

const v1Leases: Lease[] = [
  { service: 'api', containerPort: 8000, protocol: 'tcp', hostPort: 21000, scheme: 'http' },
  { service: 'db', containerPort: 5432, protocol: 'tcp', hostPort: 21001, scheme: 'tcp' },
  { service: 'dns', containerPort: 53, protocol: 'udp', hostPort: 21002, scheme: 'udp' },
];
const v2Leases: Lease[] = [{ service: 'web', containerPort: 3000, protocol: 'tcp', hostPort: 22000, scheme: 'http' }];

const noExternal = { volumes: [], networks: [] };

function render(model: ComposeModel, identity: InstanceIdentity, leases: Lease[], allowExternal: RenderInput['allowExternal'] = noExternal) {
  return renderIsolated({ model, identity, leases, allowExternal });
}

function errorOf(fn: () => unknown): SandstackError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SandstackError);
    return e as SandstackError;
  }
  throw new Error('expected a SandstackError');
}

function resourceLabels(def: unknown): Record<string, string | null> {
  return toRecord((def as { labels?: Record<string, string> }).labels);
}

/** Volumes and networks carry the labels that never change for an instance, and not the leases. */
function expectResourceLabels(labels: Record<string, string | null>, identity: InstanceIdentity) {
  expect(labels[LABELS.instance]).toBe(identity.id);
  expect(labels[LABELS.worktree]).toBe(identity.worktree);
  expect(labels[LABELS.kind]).toBe(identity.kind);
  expect(labels).not.toHaveProperty(LABELS.leases);
}

function expectInstanceLabels(labels: Record<string, string | null>, identity: InstanceIdentity, leases: Lease[]) {
  expect(labels[LABELS.instance]).toBe(identity.id);
  expect(labels[LABELS.worktree]).toBe(identity.worktree);
  expect(labels[LABELS.kind]).toBe(identity.kind);
  expect(decodeLeases(labels[LABELS.leases] ?? undefined).map((l) => [l.service, l.containerPort, l.protocol, l.hostPort])).toEqual(
    leases.map((l) => [l.service, l.containerPort, l.protocol, l.hostPort]),
  );
}

describe('renderIsolated with Compose v1 output', () => {
  const source = parseResolvedModel(V1_OUTPUT);
  const { model, report } = render(source, idA, v1Leases);

  it('parses the fixture as expected', () => {
    expect(source.version).toBe('3.9');
    expect(Object.keys(source.services).sort()).toEqual(['api', 'db', 'dns', 'migrate']);
  });

  it('removes container_name and reports it', () => {
    for (const svc of Object.values(model.services)) expect(svc).not.toHaveProperty('container_name');
    expect(report.removedContainerNames).toEqual(
      expect.arrayContaining([
        { service: 'api', name: 'shop-api' },
        { service: 'db', name: 'shop-db' },
      ]),
    );
    expect(report.removedContainerNames).toHaveLength(2);
  });

  it('publishes only leased ports, on loopback', () => {
    expect(model.services.api?.ports).toEqual(['127.0.0.1:21000:8000/tcp']);
    expect(model.services.db?.ports).toEqual(['127.0.0.1:21001:5432/tcp']);
    expect(model.services.dns?.ports).toEqual(['127.0.0.1:21002:53/udp']);
    expect(report.published).toEqual([
      { service: 'api', containerPort: 8000, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 21000 },
      { service: 'db', containerPort: 5432, protocol: 'tcp', hostIp: '127.0.0.1', hostPort: 21001 },
      { service: 'dns', containerPort: 53, protocol: 'udp', hostIp: '127.0.0.1', hostPort: 21002 },
    ]);
  });

  it('drops and reports every other published port', () => {
    expect(report.droppedPorts).toHaveLength(2);
    expect(report.droppedPorts).toEqual(
      expect.arrayContaining([
        { service: 'api', port: '127.0.0.1:9229:9229/tcp' },
        { service: 'dns', port: '53:53/tcp' },
      ]),
    );
    const allPorts = Object.values(model.services).flatMap((s) => (s.ports ?? []) as string[]);
    for (const p of allPorts) expect(p).toMatch(/^127\.0\.0\.1:2\d{4}:\d+\/(tcp|udp)$/);
  });

  it('leaves no ports key on a service without leases', () => {
    expect(model.services.migrate).not.toHaveProperty('ports');
  });

  it('labels every service, keeping its own labels', () => {
    for (const svc of Object.values(model.services)) expectInstanceLabels(toRecord(svc.labels), idA, v1Leases);
    expect(toRecord(model.services.db?.labels)['com.example.team']).toBe('data');
  });

  it('injects the instance environment, merging OTEL attributes', () => {
    for (const svc of Object.values(model.services)) {
      const env = toRecord(svc.environment);
      expect(env.SANDSTACK_INSTANCE_ID).toBe('feat-a');
      const otel = (env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',');
      expect(otel).toContain('sandstack.instance.id=feat-a');
      expect(otel).toContain('deployment.environment=sandbox');
      expect(otel).not.toContain('deployment.environment=dev');
    }
    const api = toRecord(model.services.api?.environment);
    expect(api.OTEL_RESOURCE_ATTRIBUTES).toBe('service.name=api,sandstack.instance.id=feat-a,deployment.environment=sandbox');
    expect(api.DATABASE_URL).toBe('postgres://db/shop');
    expect(toRecord(model.services.db?.environment).POSTGRES_PASSWORD).toBe('example');
  });

  it('scopes every volume by instance id, even one with a fixed name', () => {
    expect(Object.keys(model.volumes ?? {}).sort()).toEqual(['pgdata', 'uploads']);
    expect(model.volumes?.pgdata?.name).toBe('feat-a_pgdata');
    expect(model.volumes?.uploads?.name).toBe('feat-a_uploads');
    for (const v of Object.values(model.volumes ?? {})) expectResourceLabels(resourceLabels(v), idA);
    expect(report.scopedVolumes.sort()).toEqual(['feat-a_pgdata', 'feat-a_uploads']);
  });

  it('scopes every network and adds a labelled default network', () => {
    expect(Object.keys(model.networks ?? {}).sort()).toEqual(['backend', 'default']);
    expect(model.networks?.backend?.name).toBe('feat-a_backend');
    expect(model.networks?.default?.name).toBe('feat-a_default');
    for (const n of Object.values(model.networks ?? {})) expectResourceLabels(resourceLabels(n), idA);
    expect(report.scopedNetworks.sort()).toEqual(['feat-a_backend', 'feat-a_default']);
  });

  it('gives the built image a per-instance name and rewrites other users of that image', () => {
    expect(model.services.api?.image).toBe('feat-a-api:sandstack');
    expect(model.services.migrate?.image).toBe('feat-a-api:sandstack');
    expect(model.services.db?.image).toBe('postgres:16');
    expect(report.renamedImages).toEqual([{ from: 'shop/api:dev', to: 'feat-a-api:sandstack' }]);
  });

  it('labels the build with the instance only (one image layer per build label)', () => {
    const build = model.services.api?.build as { context: string; labels: Record<string, string> };
    expect(build.context).toBe('/home/dev/shop/api');
    expect(build.labels).toEqual({ [LABELS.instance]: 'feat-a' });
  });

  it('keeps keys it does not manage', () => {
    expect(model.version).toBe('3.9');
    expect((model.services.api as Record<string, unknown>).depends_on).toEqual(['db']);
    expect((model.services.db as Record<string, unknown>).volumes).toEqual(['pgdata:/var/lib/postgresql/data:rw']);
  });

  it('does not mutate its input', () => {
    expect(source).toEqual(parseResolvedModel(V1_OUTPUT));
  });
});

describe('renderIsolated with Compose v2 output', () => {
  const source = parseResolvedModel(V2_OUTPUT);
  const before = structuredClone(source);
  const { model, report } = render(source, idA, v2Leases);

  it('removes the top-level name', () => {
    expect(source.name).toBe('shop');
    expect(model).not.toHaveProperty('name');
  });

  it('publishes the lease and drops long-syntax ports on 0.0.0.0', () => {
    expect(model.services.web?.ports).toEqual(['127.0.0.1:22000:3000/tcp']);
    expect(model.services.cache).not.toHaveProperty('ports');
    expect(model.services.worker).not.toHaveProperty('ports');
    expect(report.droppedPorts.map((d) => [d.service, JSON.parse(d.port).target, JSON.parse(d.port).published])).toEqual(
      expect.arrayContaining([
        ['web', 9229, '9229'],
        ['cache', 6379, '6379'],
      ]),
    );
    expect(report.droppedPorts).toHaveLength(2);
  });

  it('removes container_name', () => {
    expect(model.services.web).not.toHaveProperty('container_name');
    expect(report.removedContainerNames).toEqual([{ service: 'web', name: 'shop-web' }]);
  });

  it('replaces the fixed names of volumes and of the default network', () => {
    expect(model.volumes?.cachedata?.name).toBe('feat-a_cachedata');
    expect(model.networks?.default?.name).toBe('feat-a_default');
    expectResourceLabels(resourceLabels(model.volumes?.cachedata), idA);
    expectResourceLabels(resourceLabels(model.networks?.default), idA);
  });

  it('renames the built image for every service using it', () => {
    expect(model.services.web?.image).toBe('feat-a-web:sandstack');
    expect(model.services.worker?.image).toBe('feat-a-web:sandstack');
    expect(model.services.cache?.image).toBe('redis:7');
  });

  it('labels services and sets the environment', () => {
    for (const svc of Object.values(model.services)) {
      expectInstanceLabels(toRecord(svc.labels), idA, v2Leases);
      const env = toRecord(svc.environment);
      expect(env.SANDSTACK_INSTANCE_ID).toBe('feat-a');
      expect(env.OTEL_RESOURCE_ATTRIBUTES).toBe('sandstack.instance.id=feat-a,deployment.environment=sandbox');
    }
    expect(toRecord(model.services.web?.environment).LOG_LEVEL).toBe('debug');
  });

  it('does not mutate its input', () => {
    expect(source).toEqual(before);
  });
});

describe('renderIsolated: instances do not share names', () => {
  function names(model: ComposeModel): string[] {
    const out: string[] = [];
    for (const v of Object.values(model.volumes ?? {})) if (v?.name) out.push(`volume:${v.name}`);
    for (const n of Object.values(model.networks ?? {})) if (n?.name) out.push(`network:${n.name}`);
    for (const s of Object.values(model.services)) {
      if (s.container_name) out.push(`container:${s.container_name}`);
      if (s.build !== undefined && s.image) out.push(`image:${s.image}`);
    }
    return out;
  }

  it.each([
    ['v1', V1_OUTPUT, v1Leases],
    ['v2', V2_OUTPUT, v2Leases],
  ])('%s model', (_name, text, leases) => {
    const model = parseResolvedModel(text);
    const a = names(render(model, idA, leases).model);
    const b = names(render(model, idB, leases).model);
    expect(a.length).toBeGreaterThan(0);
    expect(a.length).toBe(b.length);
    expect(a.filter((n) => b.includes(n))).toEqual([]);
  });
});

describe('renderIsolated: default network', () => {
  it('is not added when every service uses network_mode or other networks', () => {
    const model: ComposeModel = {
      services: {
        app: { image: 'app', networks: ['back'] },
        sidecar: { image: 'side', network_mode: 'service:app' },
        host: { image: 'h', network_mode: 'host' },
      },
      networks: { back: {} },
    };
    const out = render(model, idA, []).model;
    expect(Object.keys(out.networks ?? {})).toEqual(['back']);
    expect(out.networks?.back?.name).toBe('feat-a_back');
  });

  it('leaves no networks key when nothing needs a network', () => {
    const out = render({ services: { host: { image: 'h', network_mode: 'host' } } }, idA, []).model;
    expect(out).not.toHaveProperty('networks');
    expect(out).not.toHaveProperty('volumes');
  });

  it('is added, scoped and labelled when one service uses it implicitly', () => {
    const out = render({ services: { app: { image: 'app' } } }, idA, []).model;
    expect(out.networks?.default?.name).toBe('feat-a_default');
    expect(resourceLabels(out.networks?.default)[LABELS.instance]).toBe('feat-a');
    // No leases: the label is left out rather than set to an empty string.
    expect(resourceLabels(out.networks?.default)).not.toHaveProperty(LABELS.leases);
  });

  it('accepts a null network definition', () => {
    const out = render({ services: { app: { image: 'app' } }, networks: { default: null } }, idA, []).model;
    expect(out.networks?.default?.name).toBe('feat-a_default');
  });
});

describe('renderIsolated: external resources', () => {
  const model: ComposeModel = {
    services: { app: { image: 'app', networks: ['shared', 'default'] } },
    volumes: { cache: { external: true, name: 'team-cache' }, legacy: { external: { name: 'old-style' } }, own: {} },
    networks: { shared: { external: true } },
  };

  it('rejects an external volume that is not allowed', () => {
    const e = errorOf(() => render(model, idA, [], { volumes: ['old-style'], networks: ['shared'] }));
    expect(e.code).toBe('SANDSTACK_EXTERNAL_NOT_ALLOWED');
    expect(e.details).toMatchObject({ kind: 'volume', key: 'cache', name: 'team-cache' });
    expect(e.hint).toContain('team-cache');
  });

  it('checks the external v1-style `external: {name}` against the allow-list', () => {
    const e = errorOf(() => render(model, idA, [], { volumes: ['team-cache'], networks: ['shared'] }));
    expect(e.details).toMatchObject({ kind: 'volume', key: 'legacy', name: 'old-style' });
  });

  it('rejects an external network that is not allowed', () => {
    const e = errorOf(() => render(model, idA, [], { volumes: ['team-cache', 'old-style'], networks: [] }));
    expect(e.code).toBe('SANDSTACK_EXTERNAL_NOT_ALLOWED');
    expect(e.details).toMatchObject({ kind: 'network', key: 'shared', name: 'shared' });
  });

  it('matches the allow-list by resource name, not by key', () => {
    const e = errorOf(() => render(model, idA, [], { volumes: ['cache', 'legacy'], networks: ['shared'] }));
    expect(e.code).toBe('SANDSTACK_EXTERNAL_NOT_ALLOWED');
  });

  it('keeps allowed externals unchanged and reports them', () => {
    const { model: out, report } = render(model, idA, [], { volumes: ['team-cache', 'old-style'], networks: ['shared'] });
    expect(out.volumes?.cache).toEqual({ external: true, name: 'team-cache' });
    expect(out.volumes?.legacy).toEqual({ external: { name: 'old-style' } });
    expect(out.networks?.shared).toEqual({ external: true });
    expect(out.volumes?.own?.name).toBe('feat-a_own');
    expect(out.networks?.default?.name).toBe('feat-a_default');
    expect(report.keptExternal).toEqual(
      expect.arrayContaining([
        { kind: 'volume', key: 'cache', name: 'team-cache' },
        { kind: 'volume', key: 'legacy', name: 'old-style' },
        { kind: 'network', key: 'shared', name: 'shared' },
      ]),
    );
    expect(report.keptExternal).toHaveLength(3);
    expect(report.scopedVolumes).toEqual(['feat-a_own']);
  });

  it('scopes a resource with external: false', () => {
    const out = render({ services: { app: { image: 'a' } }, volumes: { data: { external: false } } }, idA, []).model;
    expect(out.volumes?.data?.name).toBe('feat-a_data');
  });
});

describe('renderIsolated: other cases', () => {
  it('throws SANDSTACK_UNKNOWN_SERVICE for a lease on an unknown service', () => {
    const e = errorOf(() =>
      render({ services: { web: { image: 'w' } } }, idA, [{ service: 'api', containerPort: 80, protocol: 'tcp', hostPort: 20000, scheme: 'http' }]),
    );
    expect(e.code).toBe('SANDSTACK_UNKNOWN_SERVICE');
    expect(e.message).toContain('"api"');
    expect(e.hint).toContain('web');
  });

  it('turns a string build into {context, labels}', () => {
    const out = render({ services: { app: { build: './app' } } }, idA, []).model;
    expect(out.services.app?.build).toEqual({
      context: './app',
      labels: { [LABELS.instance]: 'feat-a' },
    });
    // Without a fixed image name Compose names the image after the project (the instance id).
    expect(out.services.app).not.toHaveProperty('image');
  });

  it('gives a content-addressed service the shared tag and home labels, and the other users of its image name that tag', () => {
    const model: ComposeModel = {
      services: {
        api: { build: { context: './app', labels: { team: 'web' } }, image: 'acme/app' },
        job: { image: 'acme/app', command: ['run-job'] },
        remote: { build: { context: 'https://example.com/x.git' } },
      },
    };
    const { model: out, report } = renderIsolated({
      model,
      identity: { ...idA, home: 'h1' },
      leases: [],
      allowExternal: noExternal,
      images: { api: { service: 'api', hash: 'abc123', tag: 'sandstack/demo-api:abc123' }, remote: { service: 'remote', reason: 'a remote build context' } },
    });
    expect(out.services.api?.image).toBe('sandstack/demo-api:abc123');
    expect(out.services.job?.image).toBe('sandstack/demo-api:abc123');
    // Shared by instances: the home and the hash, never the instance.
    expect((out.services.api?.build as { labels: Record<string, string> }).labels).toEqual({ team: 'web', [LABELS.home]: 'h1', [LABELS.content]: 'abc123' });
    expect((out.services.remote?.build as { labels: Record<string, string> }).labels[LABELS.instance]).toBe('feat-a');
    expect(out.services.remote).not.toHaveProperty('image');
    expect(report.builtImages).toEqual([
      { service: 'api', image: 'sandstack/demo-api:abc123', hash: 'abc123' },
      { service: 'remote', image: 'feat-a-remote', reason: 'a remote build context' },
    ]);
  });

  it('keeps build labels given as a list', () => {
    const out = render({ services: { app: { build: { context: '.', labels: ['team=web'] } } } }, idA, []).model;
    const labels = (out.services.app?.build as { labels: Record<string, string> }).labels;
    expect(labels.team).toBe('web');
    expect(labels[LABELS.instance]).toBe('feat-a');
  });

  it('reads environment and labels given as lists', () => {
    const out = render(
      {
        services: {
          app: { image: 'a', environment: ['A=1', 'PASSTHROUGH', 'OTEL_RESOURCE_ATTRIBUTES=service.name=app'], labels: ['x=y'] },
        },
      },
      idA,
      [],
    ).model;
    expect(out.services.app?.environment).toMatchObject({
      A: '1',
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=app,sandstack.instance.id=feat-a,deployment.environment=sandbox',
    });
    expect(out.services.app?.labels).toMatchObject({ x: 'y', [LABELS.instance]: 'feat-a' });
  });

  it('drops pass-through entries of host variables that are not allowed, and keeps allowed ones', () => {
    const model: ComposeModel = { services: { app: { image: 'a', environment: ['A=1', 'HOST_TOKEN', 'CI_FLAG'] } } };
    const denied = renderIsolated({ model, identity: idA, leases: [], allowExternal: noExternal });
    expect(denied.model.services.app?.environment).not.toHaveProperty('HOST_TOKEN');
    expect(denied.model.services.app?.environment).not.toHaveProperty('CI_FLAG');
    expect(denied.report.droppedEnv).toEqual([
      { service: 'app', name: 'HOST_TOKEN' },
      { service: 'app', name: 'CI_FLAG' },
    ]);
    const allowed = renderIsolated({ model, identity: idA, leases: [], allowExternal: noExternal, allowEnv: ['CI_FLAG'] });
    expect(allowed.model.services.app?.environment).toMatchObject({ A: '1', CI_FLAG: null });
    expect(allowed.report.droppedEnv).toEqual([{ service: 'app', name: 'HOST_TOKEN' }]);
  });

  it('puts egress: none services on the internal network only, and their peers on both', () => {
    const model: ComposeModel = { services: { api: { image: 'a' }, worker: { image: 'w', networks: ['default'] }, db: { image: 'd' } } };
    const out = renderIsolated({ model, identity: idA, leases: [], allowExternal: noExternal, egressNone: ['worker'] });
    expect(out.model.services.worker?.networks).toEqual({ sandstack_internal: null });
    expect(out.model.services.api?.networks).toEqual({ default: null, sandstack_internal: null });
    expect(out.model.services.db?.networks).toEqual({ default: null, sandstack_internal: null });
    expect(out.model.networks?.sandstack_internal).toMatchObject({ internal: true, name: 'feat-a_sandstack_internal' });
    expect(out.report.egressNone).toEqual(['worker']);
  });

  it('refuses egress: none on a service with a published port, or an unknown service', () => {
    const model: ComposeModel = { services: { api: { image: 'a' } } };
    const lease: Lease = { service: 'api', containerPort: 80, protocol: 'tcp', hostPort: 20001, scheme: 'http' };
    expect(() => renderIsolated({ model, identity: idA, leases: [lease], allowExternal: noExternal, egressNone: ['api'] })).toThrow(/egress: none and a published port/);
    expect(() => renderIsolated({ model, identity: idA, leases: [], allowExternal: noExternal, egressNone: ['nope'] })).toThrow(SandstackError);
  });

  it('overrides user labels that clash with sandstack labels', () => {
    const out = render({ services: { app: { image: 'a', labels: { [LABELS.instance]: 'spoofed' } } } }, idA, []).model;
    expect(toRecord(out.services.app?.labels)[LABELS.instance]).toBe('feat-a');
  });

  it('publishes a lease for a port the compose file does not list', () => {
    const out = render({ services: { app: { image: 'a' } } }, idA, [{ service: 'app', containerPort: 80, protocol: 'tcp', hostPort: 20080, scheme: 'http' }]);
    expect(out.model.services.app?.ports).toEqual(['127.0.0.1:20080:80/tcp']);
    expect(out.report.droppedPorts).toEqual([]);
  });

  it('drops only the unleased half of a port range', () => {
    const out = render(
      { services: { app: { image: 'a', ports: ['8000-8001:9000-9001'] } } },
      idA,
      [{ service: 'app', containerPort: 9001, protocol: 'tcp', hostPort: 20001, scheme: 'tcp' }],
    );
    expect(out.model.services.app?.ports).toEqual(['127.0.0.1:20001:9001/tcp']);
    expect(out.report.droppedPorts).toEqual([{ service: 'app', port: '8000-8001:9000-9001' }]);
  });

  it('does not treat a tcp lease as covering the udp port of the same number', () => {
    const out = render(
      { services: { dns: { image: 'd', ports: ['53:53/udp'] } } },
      idA,
      [{ service: 'dns', containerPort: 53, protocol: 'tcp', hostPort: 20053, scheme: 'tcp' }],
    );
    expect(out.report.droppedPorts).toEqual([{ service: 'dns', port: '53:53/udp' }]);
  });
});

describe('interpolationEnv', () => {
  it('describes the instance and its leased ports', () => {
    const env = interpolationEnv(idA, [
      { service: 'web', containerPort: 3000, protocol: 'tcp', hostPort: 22000, scheme: 'http' },
      { service: 'my-api.v2', containerPort: 8080, protocol: 'tcp', hostPort: 22001, scheme: 'http' },
    ], '/state/instances/feat-a/data');
    expect(env).toEqual({
      SANDSTACK_INSTANCE_ID: 'feat-a',
      SANDSTACK_ENVIRONMENT: 'sandbox',
      SANDSTACK_DATA_ROOT: '/state/instances/feat-a/data',
      SANDSTACK_PORT_WEB_3000: '22000',
      SANDSTACK_PORT_MY_API_V2_8080: '22001',
    });
  });
});

describe('renderIsolated: shared observability wiring', () => {
  const telemetry = { otlpEndpoint: 'http://sandstack-otlp:4318', obsProject: 'sandstack-obs', tracesReceiver: true };
  const model = (): ComposeModel => ({
    services: {
      api: { image: 'a', environment: { OTEL_SERVICE_NAME: 'shop-api', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://old:4318' } },
      worker: { image: 'w', networks: ['default'] },
      tool: { image: 't', network_mode: 'host' },
    },
  });

  it('puts every service on an internal, labelled telemetry network and sets the OTLP endpoint everywhere', () => {
    const out = renderIsolated({ model: model(), identity: idA, leases: [], allowExternal: noExternal, telemetry });
    expect(out.model.services.api?.networks).toEqual({ default: null, sandstack_telemetry: null });
    expect(out.model.services.worker?.networks).toEqual({ default: null, sandstack_telemetry: null });
    expect(out.model.services.tool?.networks).toBeUndefined();
    const net = out.model.networks?.sandstack_telemetry as { internal: boolean; name: string; labels: Record<string, string>; driver_opts: Record<string, string> };
    expect(net).toMatchObject({ internal: true, name: 'feat-a_sandstack_telemetry', driver_opts: { 'com.docker.network.bridge.inhibit_ipv4': 'true' } });
    expect(net.labels).toMatchObject({ [LABELS.role]: 'telemetry', [LABELS.obs]: 'sandstack-obs', [LABELS.instance]: 'feat-a' });
    const env = (s: string) => toRecord(out.model.services[s]?.environment);
    expect(env('api')).toMatchObject({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://sandstack-otlp:4318', OTEL_SERVICE_NAME: 'shop-api' });
    expect(env('worker')).toMatchObject({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://sandstack-otlp:4318', OTEL_SERVICE_NAME: 'worker' });
    expect(env('worker').OTEL_RESOURCE_ATTRIBUTES).toBe(`sandstack.instance.id=feat-a,deployment.environment=${idA.kind}`);
    expect(env('api').OTEL_TRACES_EXPORTER).toBeUndefined();
    expect(out.report.telemetry).toEqual({ network: 'feat-a_sandstack_telemetry', services: ['api', 'worker'], otlpEndpoint: telemetry.otlpEndpoint, tracesExported: true, skipped: [{ service: 'tool', reason: 'network_mode host' }] });
  });

  it('turns trace export off (OTEL_TRACES_EXPORTER=none) when no trace receiver runs, keeping the endpoint', () => {
    const out = renderIsolated({ model: model(), identity: idA, leases: [], allowExternal: noExternal, telemetry: { ...telemetry, tracesReceiver: false } });
    for (const s of ['api', 'worker', 'tool']) {
      expect(toRecord(out.model.services[s]?.environment)).toMatchObject({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: telemetry.otlpEndpoint });
    }
    expect(out.report.telemetry?.tracesExported).toBe(false);
  });

  it('joins only the listed services, keeps egress: none services off every routed network, and rejects unknown names', () => {
    const out = renderIsolated({ model: model(), identity: idA, leases: [], allowExternal: noExternal, egressNone: ['worker'], telemetry: { ...telemetry, services: ['worker'] } });
    expect(out.model.services.worker?.networks).toEqual({ sandstack_internal: null, sandstack_telemetry: null });
    expect(out.model.services.api?.networks).toEqual({ default: null, sandstack_internal: null });
    expect(() => renderIsolated({ model: model(), identity: idA, leases: [], allowExternal: noExternal, telemetry: { ...telemetry, services: ['nope'] } })).toThrow(/observability.services/);
  });

  it('adds nothing when observability is off', () => {
    const out = renderIsolated({ model: model(), identity: idA, leases: [], allowExternal: noExternal });
    expect(out.model.networks?.sandstack_telemetry).toBeUndefined();
    expect(toRecord(out.model.services.worker?.environment).OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    expect(out.report.telemetry).toBeUndefined();
  });

  it('makes json-file and journald logs carry the instance labels, and leaves other drivers alone', () => {
    const m: ComposeModel = {
      services: {
        a: { image: 'a' },
        b: { image: 'b', logging: { driver: 'journald', options: { labels: 'team' } } },
        c: { image: 'c', logging: { driver: 'local' } },
      },
    };
    const out = renderIsolated({ model: m, identity: idA, leases: [], allowExternal: noExternal, defaultLogDriver: 'json-file' });
    expect(out.model.services.a?.logging).toEqual({ options: { labels: `${LABELS.instance},${LABELS.kind}` } });
    expect(out.model.services.b?.logging).toEqual({ driver: 'journald', options: { labels: `team,${LABELS.instance},${LABELS.kind}` } });
    expect(out.model.services.c?.logging).toEqual({ driver: 'local' });
    expect(out.report.logIdentity).toEqual(['a', 'b']);
    const unknown = renderIsolated({ model: { services: { a: { image: 'a' } } }, identity: idA, leases: [], allowExternal: noExternal });
    expect(unknown.model.services.a?.logging).toBeUndefined();
  });
});

describe('renderIsolated: fixed network addresses are neutralised', () => {
  const model = parseResolvedModel(`services:
  app:
    image: x
    networks:
      front:
        ipv4_address: 172.31.250.10
        ipv6_address: fd00:dead:beef::10
        aliases: [api]
      back: null
  other:
    image: x
    networks: [front]
networks:
  front:
    enable_ipv6: true
    driver_opts:
      com.docker.network.bridge.name: br-front
    ipam:
      driver: default
      config:
        - subnet: 172.31.250.0/24
          ip_range: 172.31.250.128/25
          gateway: 172.31.250.1
          aux_addresses:
            host1: 172.31.250.5
        - subnet: fd00:dead:beef::/48
      options:
        foo: bar
  back:
    ipam:
      config:
        - subnet: 10.99.0.0/16
`);
  const { model: out, report } = render(model, idA, []);
  const nets = out.networks as Record<string, { ipam?: { driver?: string; config?: unknown[]; options?: unknown }; enable_ipv6?: boolean; driver_opts?: unknown }>;

  it('drops subnets, ranges, gateways and aux addresses, keeping the ipam driver and options', () => {
    expect(nets.back!.ipam).toBeUndefined();
    expect(nets.front!.ipam).toEqual({ driver: 'default', options: { foo: 'bar' }, config: [{ subnet: expect.stringMatching(/^fd[0-9a-f]{2}:[0-9a-f]{4}:[0-9a-f]{4}:[0-9a-f]{4}::\/64$/) }] });
  });

  it('gives an IPv6 network a subnet of its own per instance (the engine has no IPv6 pool to pick from)', () => {
    expect(nets.front!.enable_ipv6).toBe(true);
    const again = (render(model, idA, []).model.networks as typeof nets).front!.ipam!.config;
    const other = (render(model, idB, []).model.networks as typeof nets).front!.ipam!.config;
    expect(again).toEqual(nets.front!.ipam!.config);
    expect(other).not.toEqual(nets.front!.ipam!.config);
    const v6 = report.neutralised.find((n) => n.kind === 'subnet' && n.value.includes('fd00'));
    expect(v6?.replacement).toBe((nets.front!.ipam!.config![0] as { subnet: string }).subnet);
  });

  it('drops fixed container addresses and keeps aliases', () => {
    expect((out.services.app!.networks as Record<string, unknown>).front).toEqual({ aliases: ['api'] });
  });

  it('keeps other network options', () => {
    expect(nets.front!.driver_opts).toEqual({ 'com.docker.network.bridge.name': 'br-front' });
  });

  it('reports every neutralisation', () => {
    const n = report.neutralised.map((x) => `${x.kind} ${x.network}${x.service ? ` ${x.service}` : ''}: ${x.value}`);
    expect(n).toEqual(
      expect.arrayContaining([
        'subnet front: 172.31.250.0/24',
        'ip_range front: 172.31.250.128/25',
        'gateway front: 172.31.250.1',
        'aux_address front: host1=172.31.250.5',
        'subnet front: fd00:dead:beef::/48',
        'subnet back: 10.99.0.0/16',
        'ipv4_address front app: 172.31.250.10',
        'ipv6_address front app: fd00:dead:beef::10',
      ]),
    );
    expect(report.neutralised).toHaveLength(8);
  });

  it('reports nothing for a model without fixed addresses', () => {
    expect(render(parseResolvedModel(V2_OUTPUT), idA, v2Leases).report.neutralised).toEqual([]);
  });
});

describe('renderIsolated: state home label', () => {
  it('puts the state home label on containers, volumes and networks', () => {
    const { model } = render(parseResolvedModel(V2_OUTPUT), { ...idA, home: 'abcdef123456' }, v2Leases);
    expect(toRecord(model.services.web!.labels)[LABELS.home]).toBe('abcdef123456');
    expect(resourceLabels(model.volumes!.cachedata)[LABELS.home]).toBe('abcdef123456');
    expect(resourceLabels(model.networks!.default)[LABELS.home]).toBe('abcdef123456');
  });
});

describe('bind mounts on an engine with its own files (remote)', () => {
  // A service bind-mounting a project folder (long syntax, as Compose v2 resolves it) and a file
  // (short syntax, as v1 does), plus a file secret and a file config.
  const model = (): ComposeModel =>
    parseResolvedModel(`services:
  web:
    image: web:dev
    volumes:
      - type: bind
        source: /home/dev/shop/static
        target: /srv/static
        read_only: true
      - /home/dev/shop/nginx.conf:/etc/nginx/nginx.conf:ro
      - data:/var/lib/web
    secrets: [token]
    configs: [app]
secrets:
  token:
    file: /state/instances/feat-a/secrets/TOKEN
configs:
  app:
    file: /home/dev/shop/app.yaml
volumes:
  data: {}
`);
  const toEngine = (p: string) =>
    p.startsWith('/home/dev/shop/') ? `/r/src/${p.slice('/home/dev/shop/'.length)}` : p.startsWith('/state/instances/feat-a/') ? `/r/state/${p.slice('/state/instances/feat-a/'.length)}` : undefined;

  it('points every bind-mounted host path at its synced place on the engine', () => {
    const out = renderIsolated({ model: model(), identity: idA, leases: [], allowExternal: noExternal, engineFiles: { engine: 'build-1', toEngine } }).model as any;
    expect(out.services.web.volumes[0]).toMatchObject({ type: 'bind', source: '/r/src/static', target: '/srv/static', read_only: true });
    expect(out.services.web.volumes[1]).toBe('/r/src/nginx.conf:/etc/nginx/nginx.conf:ro');
    // A named volume is the engine's own: untouched (apart from being scoped).
    expect(JSON.stringify(out.services.web.volumes[2])).toContain('/var/lib/web');
    expect(out.secrets.token.file).toBe('/r/state/secrets/TOKEN');
    expect(out.configs.app.file).toBe('/r/src/app.yaml');
  });

  it('refuses a host path nothing syncs (outside the project), naming the service, the path and the engine', () => {
    const m = model();
    (m.services.web!.volumes as unknown[]).push('/var/run/docker.sock:/var/run/docker.sock');
    const e = errorOf(() => renderIsolated({ model: m, identity: idA, leases: [], allowExternal: noExternal, engineFiles: { engine: 'build-1', toEngine } }));
    expect(e.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(e.message).toBe('Service web mounts the host path /var/run/docker.sock, which is outside the project; the instance runs on engine "build-1", which only has the project folder, the instance\'s data root and secrets, and data.shared synced to it.');
    expect(e.hint).toContain('data.shared');
  });

  it('leaves bind mounts alone without engineFiles (the local engine)', () => {
    const out = renderIsolated({ model: model(), identity: idA, leases: [], allowExternal: noExternal }).model as any;
    expect(out.services.web.volumes[1]).toBe('/home/dev/shop/nginx.conf:/etc/nginx/nginx.conf:ro');
    expect(out.secrets.token.file).toBe('/state/instances/feat-a/secrets/TOKEN');
  });
});

describe('port variables of a forwarded lease', () => {
  it('SANDSTACK_PORT_* is the port on this machine (the forward), not the remote one', () => {
    const env = interpolationEnv(idA, [{ service: 'web', containerPort: 3000, protocol: 'tcp', hostPort: 22000, localPort: 23456, scheme: 'http' }], '/d');
    expect(env.SANDSTACK_PORT_WEB_3000).toBe('23456');
    expect(interpolationEnv(idA, v2Leases, '/d').SANDSTACK_PORT_WEB_3000).toBe('22000');
  });
});
