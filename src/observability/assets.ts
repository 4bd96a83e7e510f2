/**
 * Pure generators for the shared observability stack (Prometheus, Grafana,
 * Jaeger) that serves every sandstack instance.
 *
 * Nothing here touches Docker or the filesystem: each function returns the
 * text/object that a later change writes to disk or mounts into containers.
 *
 * Invariants:
 * - every metric target carries `instance_id` and `environment` labels
 *   (attached by file_sd, see {@link fileSdTargets});
 * - the default dashboard view shows exactly one `local` instance; sandbox
 *   instances appear only when the `environment` variable is switched.
 */
import { stringify } from 'yaml';

/** Pinned image versions for the shared stack. */
export const OBS_VERSIONS = { prometheus: '2.42.0', grafana: '10.4.2', jaeger: '1.57.0' } as const;

export const PROMETHEUS_DS_UID = 'sandstack-prometheus';
export const JAEGER_DS_UID = 'sandstack-jaeger';
export const DASHBOARD_UID = 'sandstack-instance';
export const DASHBOARD_SLUG = 'sandstack-instance';
/** Span/resource attribute carrying the instance id on traces. */
export const TRACE_INSTANCE_TAG = 'sandstack.instance.id';

export type InstanceKind = 'local' | 'sandbox';

export interface MetricsEndpoint {
  service: string;
  host: string;
  port: number;
  path?: string;
}

export interface FileSdGroup {
  targets: string[];
  labels: {
    instance_id: string;
    environment: InstanceKind;
    service: string;
    __metrics_path__: string;
  };
}

/** prometheus.yml for the shared Prometheus. */
export function prometheusConfig(opts: { scrapeIntervalSeconds?: number; targetsDir: string }): string {
  const interval = opts.scrapeIntervalSeconds ?? 5;
  if (!Number.isInteger(interval) || interval <= 0) {
    throw new RangeError(`scrapeIntervalSeconds must be a positive integer, got ${String(interval)}`);
  }
  const dir = opts.targetsDir.replace(/\/+$/, '');
  const config = {
    global: {
      scrape_interval: `${interval}s`,
      evaluation_interval: `${interval}s`,
    },
    scrape_configs: [
      {
        job_name: 'sandstack-instances',
        // Target labels (instance_id, environment, service) come from file_sd and win
        // over same-named labels exposed by the app (those become exported_*).
        honor_labels: false,
        file_sd_configs: [{ files: [`${dir}/*.json`], refresh_interval: '5s' }],
        // Keeps every series (regex matches any value, including empty): a
        // placeholder hook for later filtering; drops nothing today.
        metric_relabel_configs: [{ source_labels: ['instance_id'], regex: '.*', action: 'keep' }],
      },
      {
        job_name: 'sandstack-self',
        static_configs: [{ targets: ['localhost:9090'] }],
      },
    ],
  };
  return stringify(config);
}

/** Prometheus file_sd JSON content (serialise with JSON.stringify) for one instance. */
export function fileSdTargets(instance: { id: string; kind: InstanceKind }, endpoints: MetricsEndpoint[]): FileSdGroup[] {
  return endpoints.map((ep) => ({
    targets: [`${ep.host}:${ep.port}`],
    labels: {
      instance_id: instance.id,
      environment: instance.kind,
      service: ep.service,
      __metrics_path__: ep.path ?? '/metrics',
    },
  }));
}

/** Grafana datasource provisioning YAML. */
export function grafanaDatasources(opts: { prometheusUrl: string; jaegerUrl: string }): string {
  return stringify({
    apiVersion: 1,
    datasources: [
      {
        name: 'Prometheus',
        type: 'prometheus',
        uid: PROMETHEUS_DS_UID,
        access: 'proxy',
        url: opts.prometheusUrl,
        isDefault: true,
        editable: false,
      },
      {
        name: 'Jaeger',
        type: 'jaeger',
        uid: JAEGER_DS_UID,
        access: 'proxy',
        url: opts.jaegerUrl,
        isDefault: false,
        editable: false,
      },
    ],
  });
}

/** Grafana dashboard-provider provisioning YAML (file provider). */
export function grafanaDashboardProvider(dashboardsDir: string): string {
  return stringify({
    apiVersion: 1,
    providers: [
      {
        name: 'sandstack',
        folder: 'sandstack',
        type: 'file',
        disableDeletion: true,
        allowUiUpdates: false,
        options: { path: dashboardsDir },
      },
    ],
  });
}

const PROM_DS = { type: 'prometheus', uid: PROMETHEUS_DS_UID } as const;
const JAEGER_DS = { type: 'jaeger', uid: JAEGER_DS_UID } as const;
const SEL = 'instance_id="$instance"';

function timeseries(id: number, title: string, expr: string, legendFormat: string, x: number, y: number): object {
  return {
    id,
    type: 'timeseries',
    title,
    datasource: { ...PROM_DS },
    gridPos: { h: 8, w: 12, x, y },
    targets: [{ refId: 'A', datasource: { ...PROM_DS }, expr, legendFormat }],
    fieldConfig: { defaults: {}, overrides: [] },
    options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
  };
}

/** Grafana dashboard JSON model: one instance at a time, local by default. */
export function instanceDashboard(): object {
  return {
    uid: DASHBOARD_UID,
    title: 'sandstack instance',
    tags: ['sandstack'],
    schemaVersion: 39,
    version: 1,
    editable: false,
    timezone: 'browser',
    refresh: '10s',
    time: { from: 'now-30m', to: 'now' },
    templating: {
      list: [
        {
          name: 'environment',
          label: 'Environment',
          type: 'custom',
          query: 'local,sandbox',
          options: [
            { text: 'local', value: 'local', selected: true },
            { text: 'sandbox', value: 'sandbox', selected: false },
          ],
          current: { text: 'local', value: 'local', selected: true },
          includeAll: false,
          multi: false,
          hide: 0,
        },
        {
          name: 'instance',
          label: 'Instance',
          type: 'query',
          datasource: { ...PROM_DS },
          definition: 'label_values(up{environment="$environment"}, instance_id)',
          query: {
            query: 'label_values(up{environment="$environment"}, instance_id)',
            refId: 'sandstack-instance-var',
          },
          // 2 = refresh on time-range change, so new instances appear without reload.
          refresh: 2,
          sort: 1,
          regex: '',
          // Empty: Grafana selects the first single value. Never "All".
          current: {},
          options: [],
          includeAll: false,
          multi: false,
          hide: 0,
        },
      ],
    },
    panels: [
      timeseries(1, 'Targets up', `up{${SEL}}`, '{{service}}', 0, 0),
      timeseries(2, 'HTTP request rate', `rate(http_requests_total{${SEL}}[1m])`, '{{service}}', 12, 0),
      timeseries(
        3,
        'Worker jobs rate by service',
        `sum by (service) (rate(worker_jobs_total{${SEL}}[1m]))`,
        '{{service}}',
        0,
        8,
      ),
      {
        id: 4,
        type: 'table',
        title: 'Traces (this instance)',
        datasource: { ...JAEGER_DS },
        gridPos: { h: 8, w: 12, x: 12, y: 8 },
        // Jaeger search filtered by the instance tag (logfmt syntax).
        targets: [
          {
            refId: 'A',
            datasource: { ...JAEGER_DS },
            queryType: 'search',
            tags: `${TRACE_INSTANCE_TAG}=$instance`,
            limit: 20,
          },
        ],
        fieldConfig: { defaults: {}, overrides: [] },
        options: {},
      },
    ],
    links: [],
  };
}

/** URLs pre-filtered to one instance. */
export function instanceLinks(opts: {
  grafanaUrl: string;
  jaegerUrl: string;
  instanceId: string;
  kind: InstanceKind;
}): { dashboard: string; traces: string } {
  const grafana = opts.grafanaUrl.replace(/\/+$/, '');
  const jaeger = opts.jaegerUrl.replace(/\/+$/, '');
  const dashboard =
    `${grafana}/d/${DASHBOARD_UID}/${DASHBOARD_SLUG}` +
    `?var-environment=${encodeURIComponent(opts.kind)}&var-instance=${encodeURIComponent(opts.instanceId)}`;
  const traces =
    `${jaeger}/search?tags=` +
    encodeURIComponent(JSON.stringify({ [TRACE_INSTANCE_TAG]: opts.instanceId })) +
    '&limit=20&lookback=1h';
  return { dashboard, traces };
}
