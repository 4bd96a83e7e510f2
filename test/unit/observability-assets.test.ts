import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  OBS_VERSIONS,
  fileSdTargets,
  grafanaDashboardProvider,
  grafanaDatasources,
  instanceDashboard,
  instanceLinks,
  prometheusConfig,
} from '../../src/observability/assets.js';

type AnyObj = Record<string, any>;

function collectDatasourceUids(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) collectDatasourceUids(v, out);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'datasource' && v && typeof v === 'object' && typeof (v as AnyObj).uid === 'string') {
        out.add((v as AnyObj).uid as string);
      }
      collectDatasourceUids(v, out);
    }
  }
  return out;
}

describe('OBS_VERSIONS', () => {
  it('pins exact versions', () => {
    expect(OBS_VERSIONS).toEqual({ prometheus: '2.42.0', grafana: '10.4.2', jaeger: '1.57.0' });
  });
});

describe('prometheusConfig', () => {
  it('parses as YAML with one job: the instances found through file_sd (no unlabelled self-scrape)', () => {
    const cfg = parse(prometheusConfig({ targetsDir: '/etc/prometheus/targets' })) as AnyObj;
    expect(cfg.global.scrape_interval).toBe('5s');
    const jobs = (cfg.scrape_configs as AnyObj[]).map((j) => j.job_name);
    expect(jobs).toEqual(['sandstack-instances']);
    const inst = (cfg.scrape_configs as AnyObj[])[0]!;
    expect(inst.honor_labels).toBe(false);
    expect(inst.file_sd_configs).toEqual([{ files: ['/etc/prometheus/targets/*.json'], refresh_interval: '5s' }]);
    expect(inst.static_configs).toBeUndefined();
  });

  it('honours the scrape interval and trims a trailing slash on targetsDir', () => {
    const cfg = parse(prometheusConfig({ targetsDir: '/t/', scrapeIntervalSeconds: 15 })) as AnyObj;
    expect(cfg.global.scrape_interval).toBe('15s');
    expect(cfg.scrape_configs[0].file_sd_configs[0].files).toEqual(['/t/*.json']);
  });

  it('rejects a non-positive interval', () => {
    expect(() => prometheusConfig({ targetsDir: '/t', scrapeIntervalSeconds: 0 })).toThrow(RangeError);
  });
});

describe('fileSdTargets', () => {
  it('emits one JSON-serialisable group per endpoint with instance labels and default path', () => {
    const groups = fileSdTargets({ id: 'demo--feat-a', kind: 'sandbox' }, [
      { service: 'api', host: 'demo--feat-a-api', port: 8080 },
      { service: 'worker', host: '10.0.0.5', port: 9100, path: '/internal/metrics' },
    ]);
    const roundTripped = JSON.parse(JSON.stringify(groups)) as unknown;
    expect(roundTripped).toEqual([
      {
        targets: ['demo--feat-a-api:8080'],
        labels: { instance_id: 'demo--feat-a', environment: 'sandbox', service: 'api', __metrics_path__: '/metrics' },
      },
      {
        targets: ['10.0.0.5:9100'],
        labels: {
          instance_id: 'demo--feat-a',
          environment: 'sandbox',
          service: 'worker',
          __metrics_path__: '/internal/metrics',
        },
      },
    ]);
  });

  it('returns an empty list for no endpoints', () => {
    expect(fileSdTargets({ id: 'x', kind: 'local' }, [])).toEqual([]);
  });
});

describe('grafana provisioning', () => {
  const ds = parse(grafanaDatasources({ prometheusUrl: 'http://prometheus:9090', jaegerUrl: 'http://jaeger:16686' })) as AnyObj;

  it('datasources YAML parses with unique stable uids', () => {
    expect(ds.apiVersion).toBe(1);
    const list = ds.datasources as AnyObj[];
    const uids = list.map((d) => d.uid);
    expect(new Set(uids).size).toBe(uids.length);
    const prom = list.find((d) => d.uid === 'sandstack-prometheus')!;
    const jaeger = list.find((d) => d.uid === 'sandstack-jaeger')!;
    expect(prom).toMatchObject({ type: 'prometheus', isDefault: true, access: 'proxy', url: 'http://prometheus:9090' });
    expect(jaeger).toMatchObject({ type: 'jaeger', access: 'proxy', url: 'http://jaeger:16686' });
    expect(list.filter((d) => d.isDefault === true)).toHaveLength(1);
  });

  it('every datasource uid referenced by the dashboard is provisioned, with matching type', () => {
    const provisioned = new Map((ds.datasources as AnyObj[]).map((d) => [d.uid as string, d.type as string]));
    const dash = instanceDashboard() as AnyObj;
    const used = collectDatasourceUids(dash);
    expect(used.size).toBeGreaterThan(0);
    for (const uid of used) expect(provisioned.has(uid)).toBe(true);
    for (const panel of dash.panels as AnyObj[]) {
      expect(provisioned.get(panel.datasource.uid)).toBe(panel.datasource.type);
    }
    // Both datasources are actually used (metrics panels and a traces panel).
    expect(used).toEqual(new Set(['sandstack-prometheus', 'sandstack-jaeger']));
  });

  it('dashboard provider YAML parses with the path', () => {
    const p = parse(grafanaDashboardProvider('/var/lib/grafana/dashboards')) as AnyObj;
    expect(p.apiVersion).toBe(1);
    expect(p.providers).toHaveLength(1);
    expect(p.providers[0]).toMatchObject({
      name: 'sandstack',
      folder: 'sandstack',
      type: 'file',
      allowUiUpdates: false,
      disableDeletion: true,
      options: { path: '/var/lib/grafana/dashboards' },
    });
  });
});

describe('instanceDashboard', () => {
  const dash = instanceDashboard() as AnyObj;
  const vars = dash.templating.list as AnyObj[];
  const byName = (n: string): AnyObj => {
    const v = vars.find((x) => x.name === n);
    expect(v, `variable ${n}`).toBeDefined();
    return v!;
  };

  it('round-trips through JSON and has the identity fields', () => {
    expect(JSON.parse(JSON.stringify(dash))).toEqual(dash);
    expect(dash).toMatchObject({ uid: 'sandstack-instance', title: 'sandstack instance', schemaVersion: 39 });
  });

  it('environment variable defaults to local and is single-valued', () => {
    const env = byName('environment');
    expect(env.type).toBe('custom');
    expect(env.includeAll).toBe(false);
    expect(env.multi).toBe(false);
    expect(env.current.value).toBe('local');
    expect((env.options as AnyObj[]).map((o) => o.value)).toEqual(['local', 'sandbox']);
    expect((env.options as AnyObj[]).filter((o) => o.selected).map((o) => o.value)).toEqual(['local']);
    // environment must be declared before instance so $environment resolves in its query
    expect(vars.indexOf(env)).toBeLessThan(vars.indexOf(byName('instance')));
  });

  it('instance variable is a single-value query filtered by environment, never All', () => {
    const inst = byName('instance');
    expect(inst.type).toBe('query');
    expect(inst.includeAll).toBe(false);
    expect(inst.multi).toBe(false);
    expect(inst.datasource.uid).toBe('sandstack-prometheus');
    expect(inst.query.query).toBe('label_values(up{environment="$environment"}, instance_id)');
    const cur = JSON.stringify(inst.current ?? {});
    expect(cur).not.toMatch(/All/);
    expect(cur).not.toContain('$__all');
    expect(inst.allValue).toBeUndefined();
  });

  it('every Prometheus panel target expr filters by the selected instance', () => {
    const panels = dash.panels as AnyObj[];
    const promTargets = panels
      .filter((p) => p.datasource.type === 'prometheus')
      .flatMap((p) => p.targets as AnyObj[]);
    expect(promTargets.length).toBeGreaterThanOrEqual(3);
    for (const t of promTargets) expect(t.expr).toContain('instance_id="$instance"');
    // and no target anywhere carries an unfiltered expr
    for (const t of panels.flatMap((p) => p.targets as AnyObj[])) {
      if ('expr' in t) expect(t.expr).toContain('instance_id="$instance"');
    }
    expect(panels.every((p) => p.type === 'timeseries' || p.datasource.type === 'jaeger')).toBe(true);
  });

  it('has a traces panel on the Jaeger datasource filtered by the instance tag', () => {
    const traces = (dash.panels as AnyObj[]).filter((p) => p.datasource.uid === 'sandstack-jaeger');
    expect(traces).toHaveLength(1);
    for (const t of traces[0]!.targets as AnyObj[]) {
      expect(t.datasource.uid).toBe('sandstack-jaeger');
      expect(t.tags).toContain('sandstack.instance.id=$instance');
      expect(t.service).toBe('$service');
    }
    // Jaeger's search needs a service: the variable lists the instance's services, one at a time.
    const service = (dash.templating.list as AnyObj[]).find((v) => v.name === 'service')!;
    expect(service.query.query).toBe('label_values(up{instance_id="$instance"}, service)');
    expect(service.includeAll).toBe(false);
    expect(service.multi).toBe(false);
  });

  it('panel ids are unique', () => {
    const ids = (dash.panels as AnyObj[]).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('instanceLinks', () => {
  it('builds a dashboard URL with encoded variables', () => {
    const { dashboard } = instanceLinks({
      grafanaUrl: 'http://localhost:3000/',
      jaegerUrl: 'http://localhost:16686',
      prometheusUrl: 'http://localhost:9090',
      instanceId: 'demo--feat-a',
      kind: 'local',
      traceService: 'backend',
    });
    expect(dashboard).toBe(
      'http://localhost:3000/d/sandstack-instance/sandstack-instance?var-environment=local&var-instance=demo--feat-a',
    );
  });

  it('encodes reserved characters in the instance id', () => {
    const id = 'demo--feat a&b=c/#';
    const { dashboard } = instanceLinks({ grafanaUrl: 'http://g', jaegerUrl: 'http://j', prometheusUrl: 'http://p', instanceId: id, kind: 'sandbox', traceService: 'api' });
    const u = new URL(dashboard);
    expect(u.pathname).toBe('/d/sandstack-instance/sandstack-instance');
    expect(u.hash).toBe('');
    expect(u.searchParams.get('var-instance')).toBe(id);
    expect(u.searchParams.get('var-environment')).toBe('sandbox');
    expect([...u.searchParams.keys()]).toEqual(['var-environment', 'var-instance']);
  });

  it('builds a Jaeger search URL (service + instance tag) whose tags JSON decodes back to the id', () => {
    const id = 'demo--feat-a"x';
    const { traces } = instanceLinks({ grafanaUrl: 'http://g', jaegerUrl: 'http://localhost:16686', prometheusUrl: 'http://p', instanceId: id, kind: 'local', traceService: 'back end' });
    expect(traces.startsWith('http://localhost:16686/search?service=back%20end&tags=')).toBe(true);
    expect(traces).not.toContain('{'); // JSON is percent-encoded
    const u = new URL(traces);
    expect(u.searchParams.get('service')).toBe('back end');
    expect(JSON.parse(u.searchParams.get('tags')!)).toEqual({ 'sandstack.instance.id': id });
    expect(u.searchParams.get('limit')).toBe('20');
    expect(u.searchParams.get('lookback')).toBe('1h');
  });

  it('builds a Prometheus query of the instance\'s targets', () => {
    const { metrics } = instanceLinks({ grafanaUrl: 'http://g', jaegerUrl: 'http://j', prometheusUrl: 'http://127.0.0.1:9090/', instanceId: 'demo-a', kind: 'local', traceService: 'api' });
    const u = new URL(metrics);
    expect(u.origin + u.pathname).toBe('http://127.0.0.1:9090/graph');
    expect(u.searchParams.get('g0.expr')).toBe('up{instance_id="demo-a"}');
  });
});
