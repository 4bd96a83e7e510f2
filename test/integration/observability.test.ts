/**
 * Shared observability on the real engine with a real Prometheus (built from Debian's package):
 * two demo instances side by side (one local, one sandbox) are scraped through file_sd and their
 * series come back separately per instance_id; spans exported by the demo backend carry the
 * instance id and environment (received by an OTLP test receiver standing where Jaeger would, as
 * Jaeger's image cannot be obtained here); logs carry the identity; the stack's volumes survive
 * `obs down`; after destroy the instance's targets are gone and nothing of it is up.
 */
import { readFile, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execInContainer } from '../../src/engine/docker.js';
import { apiUrl, CLI, docker, http, makeSandbox, ROOT, until, type Sandbox } from './helpers.js';

const A = 'obs-a';
const B = 'obs-b';
const OBS_LABEL = 'dev.sandstack.obs';

/** A sandbox per describe block; afterwards its shared stack (with volumes) and instances are removed. */
function useObsSandbox(set: (s: Sandbox) => void): void {
  let sb: Sandbox | undefined;
  beforeAll(async () => {
    sb = await makeSandbox();
    set(sb);
  });
  afterAll(async () => {
    if (sb) {
      await sb.run(sb.repo, ['obs', 'down', '--volumes', '--json']);
      await sb.cleanup();
    }
  });
}

describe('shared observability stack', { timeout: 180_000 }, () => {
  let sb: Sandbox;
  let project = '';
  let prom = '';
  const urls: Record<string, string> = {};

  let receiverId = '';
  const received = async (): Promise<any[] | undefined> => {
    const r = await execInContainer(docker, receiverId, ['python3', '-c', "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:4318/received').read().decode())"]);
    return r.exitCode === 0 ? (JSON.parse(r.output).requests as any[]) : undefined;
  };
  const envOf = async (id: string, service: string): Promise<string[]> => {
    const c = (await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${id}`, `com.docker.compose.service=${service}`] } }))[0]!;
    return (await docker.getContainer(c.Id).inspect()).Config.Env;
  };

  const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const r = await http(`${prom}/api/v1/query?query=${encodeURIComponent(q)}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.data.result;
  };

  useObsSandbox((s) => (sb = s));

  it('starts an instance while the shared stack is not running: the gate warns, it does not fail', async () => {
    const r = await sb.run(sb.repo, ['up', '--instance', B, '--json'], { env: { SANDSTACK_ENVIRONMENT: 'sandbox' } });
    expect(r.exitCode, r.stderr).toBe(0);
    const stage = r.json.gate.stages.find((s: any) => s.name === 'observability');
    expect(stage.status).toBe('warning');
    expect(stage.details.warnings.join(' ')).toMatch(/not running.*sandstack obs up/);
    expect(stage.details.targets).toHaveLength(3);
    expect(r.json.gate.passed).toBe(true);
    urls[B] = apiUrl(r.json);
  });

  it('obs up starts Prometheus, says plainly what is missing, binds 127.0.0.1, and keeps the Grafana password owner-only', async () => {
    const r = await sb.run(sb.repo, ['obs', 'up', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    project = r.json.project;
    expect(project).toMatch(/^sandstack-obs-[0-9a-f]{8}$/);
    expect(r.json.started).toContain('prometheus');
    for (const name of ['grafana', 'jaeger']) {
      const missing = r.json.missing.find((m: any) => m.name === name);
      // Either it started (its image is on this machine) or the result says why not.
      if (!r.json.started.includes(name)) expect(missing.reason).toMatch(/not on this machine/);
    }
    const text = await sb.run(sb.repo, ['obs', 'status']);
    for (const m of r.json.missing) expect(text.stdout).toContain(`${m.name}`);
    expect(text.stdout).toMatch(/missing/);

    prom = `http://127.0.0.1:${r.json.ports.prometheus}`;
    expect((await http(`${prom}/-/ready`)).status).toBe(200);
    const containers = await docker.listContainers({ filters: { label: [`${OBS_LABEL}=${project}`] } });
    for (const c of containers) {
      const info = await docker.getContainer(c.Id).inspect();
      for (const bindings of Object.values(info.HostConfig.PortBindings ?? {}) as { HostIp: string }[][]) {
        for (const b of bindings) expect(b.HostIp).toBe('127.0.0.1');
      }
    }

    const file = r.json.grafana.passwordFile as string;
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const password = (await readFile(file, 'utf8')).trim();
    expect(password.length).toBeGreaterThanOrEqual(32);
    expect(r.stdout).not.toContain(password);
    expect(await readFile(path.join(sb.home, 'obs', 'compose.yaml'), 'utf8')).not.toContain(password);
    const shown = await sb.run(sb.repo, ['obs', 'status', '--show-password', '--json']);
    expect(shown.json.grafana.password).toBe(password);

    // The instance started before the stack was picked up by it.
    expect(r.json.attached).toEqual([B]);
    // No trace receiver ran when B started: its containers do not try to export traces.
    expect(await envOf(B, 'backend')).toContain('OTEL_TRACES_EXPORTER=none');
  });

  it('a stand-in for Jaeger (an OTLP receiver labelled as the stack\'s jaeger) is found as the trace receiver', async () => {
    // Jaeger's image cannot be obtained here: an OTLP/HTTP receiver takes its place in the stack, so
    // sandstack joins it to instance networks under the OTLP alias exactly as it would join Jaeger.
    const image = (await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${B}`, 'com.docker.compose.service=backend'] } }))[0]!.Image;
    const receiver = await docker.createContainer({
      Image: image,
      Cmd: ['python3', '/receiver/receiver.py'],
      // The image is B's and carries B's instance label: blank it, this container is the stack's.
      Labels: { [OBS_LABEL]: project, 'com.docker.compose.service': 'jaeger', 'dev.sandstack.instance': '', 'dev.sandstack.test': 'otlp-receiver' },
      HostConfig: { Binds: [`${path.join(ROOT, 'test/integration/otlp')}:/receiver:ro`], NetworkMode: `${project}_default` },
    });
    receiverId = receiver.id;
    await receiver.start();
    await until('receiver up', received, 30_000);
    const st = await sb.run(sb.repo, ['obs', 'status', '--json']);
    expect(st.json.components.find((c: any) => c.name === 'jaeger').state).toBe('running');
  });

  it('runs a second instance beside the first; Prometheus returns the series of each instance_id separately', async () => {
    const r = await sb.run(sb.repo, ['up', '--instance', A, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const stage = r.json.gate.stages.find((s: any) => s.name === 'observability');
    expect(stage.details.joined).toEqual(['jaeger', 'prometheus']);
    expect(stage.status).toBe('passed');
    expect(await envOf(A, 'backend')).not.toContain('OTEL_TRACES_EXPORTER=none');
    urls[A] = apiUrl(r.json);

    const up = await until('both instances scraped', async () => {
      const res = await query('up == 1');
      const byInstance = (id: string) => res.filter((s) => s.metric.instance_id === id);
      return byInstance(A).length === 3 && byInstance(B).length === 3 ? res : undefined;
    });
    for (const s of up) {
      expect(s.metric.environment).toBe(s.metric.instance_id === A ? 'local' : 'sandbox');
      expect(['backend', 'worker-ingest', 'worker-backtest']).toContain(s.metric.service);
    }

    // Three more requests to A only: its counter moves away from B's by exactly three.
    const q = 'sum by (instance_id) (http_requests_total{route="/api/v1/items", method="GET"})';
    const before = await until('request counters of both instances', async () => {
      const res = await query(q);
      return res.length === 2 ? res : undefined;
    });
    const value = (res: typeof before, id: string) => Number(res.find((s) => s.metric.instance_id === id)?.value[1]);
    for (let i = 0; i < 3; i++) expect((await http(`${urls[A]}/api/v1/items`)).status).toBe(200);
    await until('A counter +3', async () => {
      const res = await query(q);
      return value(res, A) === value(before, A) + 3 ? res : undefined;
    });
    expect(value(await query(q), B)).toBe(value(before, B));

    const st = await sb.run(sb.repo, ['status', '--instance', A, '--json']);
    expect(st.json.observability.enabled).toBe(true);
    expect(st.json.observability.targets.map((t: any) => t.service).sort()).toEqual(['backend', 'worker-backtest', 'worker-ingest']);
    const dash = new URL(st.json.observability.links.dashboard);
    expect(dash.searchParams.get('var-instance')).toBe(A);
    expect(dash.searchParams.get('var-environment')).toBe('local');
    const traces = new URL(st.json.observability.links.traces);
    expect(JSON.parse(traces.searchParams.get('tags')!)).toEqual({ 'sandstack.instance.id': A });
    const metrics = new URL(st.json.observability.links.metrics);
    const linked = await http(`${prom}/api/v1/query?query=${encodeURIComponent(metrics.searchParams.get('g0.expr')!)}`);
    expect(linked.body.data.result.map((s: any) => s.metric.instance_id)).toEqual([A, A, A]);
  });

  it('spans exported by the demo backend and workers carry the instance id and environment', async () => {
    {
      for (let i = 0; i < 2; i++) await http(`${urls[A]}/api/v1/items`);
      const spans = await until('backend and worker spans', async () => {
        const all = ((await received()) ?? []).flatMap((req) =>
          req.resourceSpans.flatMap((rs: any) => {
            const attrs = Object.fromEntries(rs.resource.attributes.map((a: any) => [a.key, a.value.stringValue]));
            return rs.scopeSpans.flatMap((ss: any) => ss.spans.map((sp: any) => ({ name: sp.name, traceId: sp.traceId, attrs })));
          }),
        );
        const services = new Set(all.map((s) => s.attrs['service.name']));
        return all.some((s) => s.name === 'GET /api/v1/items') && services.has('worker-ingest') ? all : undefined;
      });
      for (const s of spans) {
        expect(s.attrs['sandstack.instance.id']).toBe(A);
        expect(s.attrs['deployment.environment']).toBe('local');
        expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
      }
      expect(spans.find((s) => s.name === 'GET /api/v1/items')!.attrs['service.name']).toBe('backend');
    }
    // B, started before any receiver ran, is told so by its gate check.
    const check = await sb.run(sb.repo, ['gate', '--instance', B, '--json'], { env: { SANDSTACK_ENVIRONMENT: 'sandbox' } });
    expect(check.exitCode, check.stderr).toBe(0);
    const stage = check.json.stages.find((s: any) => s.name === 'observability');
    expect(stage.details.warnings.join(' ')).toMatch(/traces are not exported.*sandstack down && sandstack up/);
  });

  it('container logs carry the instance identity', async () => {
    const backend = (await docker.listContainers({ filters: { label: [`dev.sandstack.instance=${A}`, 'com.docker.compose.service=backend'] } }))[0]!;
    const buf = (await docker.getContainer(backend.Id).logs({ stdout: true, stderr: true, details: true, tail: 5 })) as unknown as Buffer;
    const text = buf.toString('utf8');
    expect(text).toContain(`dev.sandstack.instance=${A}`);
    expect(text).toContain('dev.sandstack.kind=local');
  });

  it('obs down keeps the volumes and leaves instances running; obs up joins them again with the history kept', async () => {
    const down = await sb.run(sb.repo, ['obs', 'down', '--json']);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.json.keptVolumes.sort()).toEqual([`${project}_grafana-data`, `${project}_prometheus-data`]);
    expect(await docker.listContainers({ all: true, filters: { label: [`${OBS_LABEL}=${project}`] } })).toEqual([]);
    expect((await http(`${urls[A]}/api/v1/health`)).status).toBe(200);
    const st = await sb.run(sb.repo, ['status', '--instance', A]);
    expect(st.stdout).toMatch(/observability: shared stack .* stopped/);

    const again = await sb.run(sb.repo, ['obs', 'up', '--json']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.json.attached).toEqual([A, B]);
    // Samples scraped before obs down are still there (the TSDB lives in the kept volume).
    const history = await query(`max_over_time(up{instance_id="${A}"}[30m])`);
    expect(history.length).toBe(3);
    // Scraped by the new Prometheus (its samples from before obs down stay visible for a while, so
    // the query alone would not tell).
    const restarted = Date.now();
    await until('A scraped again', async () => {
      const active = (await http(`${prom}/api/v1/targets`)).body.data.activeTargets as { labels: Record<string, string>; health: string; lastScrape: string }[];
      const fresh = active.filter((t) => t.labels.instance_id === A && t.health === 'up' && Date.parse(t.lastScrape) > restarted);
      return fresh.length === 3 ? true : undefined;
    });
  });

  it('after destroy, the instance has no targets and Prometheus marks nothing of it as up', async () => {
    const r = await sb.run(sb.repo, ['destroy', '--instance', A, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.json.verified).toEqual({ containers: 0, volumes: 0, networks: 0 });
    await expect(stat(path.join(sb.home, 'obs', 'targets', `${A}.json`))).rejects.toThrow();
    await until('targets of A gone', async () => {
      const t = await http(`${prom}/api/v1/targets`);
      const active = t.body.data.activeTargets as { labels: Record<string, string> }[];
      return active.some((x) => x.labels.instance_id === A) ? undefined : active;
    });
    await until('no up series of A', async () => ((await query(`up{instance_id="${A}"}`)).length === 0 ? true : undefined));
    expect((await query(`up{instance_id="${B}"} == 1`)).length).toBe(3);

    const rb = await sb.run(sb.repo, ['destroy', '--instance', B, '--json']);
    expect(rb.exitCode, rb.stderr).toBe(0);
    const st = await sb.run(sb.repo, ['obs', 'status', '--json']);
    expect(st.json.targets).toEqual([]);
    expect(st.json.attached).toEqual([]);
  });

  it('obs down --volumes removes everything of the stack', async () => {
    const r = await sb.run(sb.repo, ['obs', 'down', '--volumes', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const filters = { label: [`${OBS_LABEL}=${project}`] };
    expect(await docker.listContainers({ all: true, filters })).toEqual([]);
    expect((await docker.listVolumes({ filters })).Volumes ?? []).toEqual([]);
    expect(await docker.listNetworks({ filters })).toEqual([]);
  });
});

describe('obs up on bad days', { timeout: 180_000 }, () => {
  let sb: Sandbox;
  useObsSandbox((s) => (sb = s));

  it('Ctrl-C during obs up: exit 130 and no half-started stack is left', async () => {
    const project = (await sb.run(sb.repo, ['obs', 'status', '--json'])).json.project as string;
    const child = execa('node', [CLI, 'obs', 'up'], { cwd: sb.repo, env: { SANDSTACK_HOME: sb.home }, reject: false, stdin: 'ignore' });
    await until('the first container of the stack', async () => {
      const c = await docker.listContainers({ all: true, filters: { label: [`${OBS_LABEL}=${project}`] } });
      return c.length > 0 ? true : undefined;
    });
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(130);
    expect(String(r.stderr)).toContain('SANDSTACK_INTERRUPTED');
    const filters = { label: [`${OBS_LABEL}=${project}`] };
    expect(await docker.listContainers({ all: true, filters })).toEqual([]);
    expect(await docker.listNetworks({ filters })).toEqual([]);
  });

  it('a busy Prometheus port: obs up says who holds it and uses another one', async () => {
    const st = await sb.run(sb.repo, ['obs', 'status', '--json']);
    const wanted = st.json.ports?.prometheus ?? 9090;
    const holder = net.createServer();
    await new Promise<void>((resolve) => {
      holder.once('error', () => resolve()); // already busy: just as good
      holder.listen(wanted, '127.0.0.1', () => resolve());
    });
    try {
      const r = await sb.run(sb.repo, ['obs', 'up', '--json']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.json.notices.join('\n')).toMatch(new RegExp(`port ${wanted} for prometheus is in use.*using 127\\.0\\.0\\.1:\\d+`));
      expect(r.json.ports.prometheus).not.toBe(wanted);
      expect((await http(`http://127.0.0.1:${r.json.ports.prometheus}/-/ready`)).status).toBe(200);
      const again = await sb.run(sb.repo, ['obs', 'status', '--json']);
      expect(again.json.ports.prometheus).toBe(r.json.ports.prometheus);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });
});
