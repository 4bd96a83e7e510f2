import { describe, expect, it } from 'vitest';
import { LABELS } from '../../src/identity/identity.js';
import { OBS_IMAGES, OTLP_ALIAS, prometheusDockerfile } from '../../src/observability/assets.js';
import { localEngine, type Engine } from '../../src/engine/engine.js';
import { DEFAULT_OBS_PORTS, hubAliases, mountedPaths, obsComposeModel, obsLabels, obsPaths, obsProjectName } from '../../src/observability/stack.js';
import { telemetryInput } from '../../src/observability/wiring.js';
import { sandstackHome } from '../../src/state/paths.js';

type AnyObj = Record<string, any>;

describe('obsComposeModel', () => {
  const paths = obsPaths('/home/dev/.local/share/sandstack');
  const ports = { prometheus: 29090, grafana: 23000, jaeger: 26686, otlp: 24318 };
  const model = obsComposeModel({ project: 'sandstack-obs', paths, ports }) as AnyObj;
  const services = model.services as Record<string, AnyObj>;

  it('declares Prometheus, Grafana and Jaeger with pinned images', () => {
    expect(Object.keys(services).sort()).toEqual(['grafana', 'jaeger', 'prometheus']);
    expect(services.prometheus!.image).toBe(OBS_IMAGES.prometheus);
    for (const s of Object.values(services)) expect(s.image).toMatch(/:\d+\.\d+\.\d+$/);
  });

  it('publishes every port on 127.0.0.1 only, on the chosen host ports', () => {
    const all = Object.values(services).flatMap((s) => s.ports as string[]);
    expect(all).toEqual(['127.0.0.1:29090:9090', '127.0.0.1:23000:3000', '127.0.0.1:26686:16686', '127.0.0.1:24318:4318']);
  });

  it('gives Grafana no anonymous access and its password only by interpolation from the environment', () => {
    const env = services.grafana!.environment as Record<string, string>;
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(env.GF_USERS_ALLOW_SIGN_UP).toBe('false');
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toBe('${GRAFANA_ADMIN_PASSWORD}');
  });

  it('mounts configuration read-only and keeps data in named volumes', () => {
    for (const s of Object.values(services)) {
      for (const v of (s.volumes ?? []) as string[]) {
        if (v.startsWith('/')) expect(v).toMatch(/:ro$/);
        else expect(v.split(':')[0]).toMatch(/^(prometheus|grafana)-data$/);
      }
    }
    expect(Object.keys(model.volumes)).toEqual(['prometheus-data', 'grafana-data']);
  });

  it('labels every service, volume, network and the build with the obs label and never the instance label', () => {
    const labelled = [...Object.values(services).map((s) => s.labels), services.prometheus!.build.labels, ...Object.values(model.volumes as AnyObj).map((v) => v.labels), model.networks.default.labels];
    for (const l of labelled) {
      expect(l).toEqual(obsLabels('sandstack-obs'));
      expect(l[LABELS.instance]).toBeUndefined();
    }
  });

  it('builds Prometheus from Debian with the pinned upstream version, unprivileged', () => {
    const df = prometheusDockerfile();
    expect(df).toMatch(/^FROM debian:bookworm-slim$/m);
    expect(df).toContain("'prometheus=2.42.0+ds-*'");
    expect(df).toMatch(/^USER prometheus$/m);
    expect(services.prometheus!.build.context).toBe(paths.buildDir);
  });
});

describe('a remote engine\'s stack', () => {
  const home = '/home/dev/.local/share/sandstack';
  const remote: Engine = { ...localEngine(), name: 'build-1', endpoint: 'ssh://dev@build-1', remote: true, filesRoot: (dir) => `/home/dev/.sandstack-remote/abc/fs${dir}` };

  it('keeps its files apart from the local stack and from other engines', () => {
    const p = obsPaths(home, 'build-1');
    expect(p.dir).toBe(`${home}/obs/engines/build-1`);
    expect(obsPaths(home, 'ssh://dev@host:22').dir).toBe(`${home}/obs/engines/ssh___dev_host_22`);
    expect(obsPaths(home, 'local').dir).toBe(`${home}/obs`);
  });

  it('mounts the copies on the engine\'s host and lets Docker pick the host ports there, on 127.0.0.1', () => {
    const p = obsPaths(home, 'build-1');
    const mounted = mountedPaths(remote, p);
    expect(mounted.targetsDir).toBe(`/home/dev/.sandstack-remote/abc/fs${home}/obs/engines/build-1/targets`);
    expect(mounted.buildDir).toBe(p.buildDir); // the build context is sent by Compose from here
    expect(mountedPaths(localEngine(), p)).toEqual(p);
    const model = obsComposeModel({ project: 'sandstack-obs-x', paths: mounted, ports: DEFAULT_OBS_PORTS, remote: true }) as AnyObj;
    const all = Object.values(model.services as Record<string, AnyObj>).flatMap((s) => s.ports as string[]);
    expect(all).toEqual(['127.0.0.1::9090', '127.0.0.1::3000', '127.0.0.1::16686', '127.0.0.1::4318']);
    expect(model.services.prometheus.volumes).toContain(`${mounted.targetsDir}:/etc/sandstack-targets:ro`);
    expect(model.services.prometheus.build.context).toBe(p.buildDir);
  });

  it('has a project name of its own, never the local stack\'s', () => {
    const env = { HOME: '/home/dev', XDG_DATA_HOME: '/home/dev/.local/share' };
    const name = obsProjectName(home, env, remote);
    expect(name).toMatch(/^sandstack-obs-[0-9a-f]{8}$/);
    expect(name).not.toBe(obsProjectName(home, env));
    expect(obsProjectName(sandstackHome(env), env, localEngine())).toBe('sandstack-obs');
  });
});

describe('obsProjectName', () => {
  it('is sandstack-obs for the default state home and a stable, distinct name for any other', () => {
    const env = { HOME: '/home/dev', XDG_DATA_HOME: '/home/dev/.local/share' };
    expect(obsProjectName(sandstackHome(env), env)).toBe('sandstack-obs');
    const a = obsProjectName('/tmp/sandbox-a', env);
    expect(a).toMatch(/^sandstack-obs-[0-9a-f]{8}$/);
    expect(obsProjectName('/tmp/sandbox-a/', env)).toBe(a);
    expect(obsProjectName('/tmp/sandbox-b', env)).not.toBe(a);
  });
});

describe('telemetryInput', () => {
  const base = { enabled: true, metrics: [{ service: 'worker', port: 9464, path: '/metrics' }] };
  it('is undefined when observability is off', () => {
    expect(telemetryInput({ ...base, enabled: false }, 'sandstack-obs', true)).toBeUndefined();
  });
  it('points at the OTLP alias and adds metrics services to an explicit service list', () => {
    const t = telemetryInput({ ...base, services: ['api'] }, obsProjectName('/tmp/h', {}), false)!;
    expect(t.tracesReceiver).toBe(false);
    expect(t.otlpEndpoint).toBe(`http://${OTLP_ALIAS}:4318`);
    expect(t.services).toEqual(['api', 'worker']);
    expect(t.obsProject).toBe(obsProjectName('/tmp/h', {}));
    expect(telemetryInput(base, 'sandstack-obs', true)!.services).toBeUndefined();
  });
});

describe('hub aliases', () => {
  it('gives Jaeger the OTLP alias on instance networks and Prometheus none', () => {
    expect(hubAliases('jaeger')).toEqual([OTLP_ALIAS]);
    expect(hubAliases('prometheus')).toEqual([]);
    expect(DEFAULT_OBS_PORTS.otlp).toBe(4318);
  });
});
