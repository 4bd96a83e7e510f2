/** The commands on one instance's stack: up, status, render, down, destroy. */
import { destroy as destroyInstance, down as downInstance, renderInstance, status as instanceStatus, up as upInstance, type DestroyResult, type StatusData, type StatusResult, type UpResult } from '../../lifecycle/operations.js';
import { runtimeVersions, type RuntimeVersions, type ServiceStatus } from '../../lifecycle/status.js';
import type { InstanceObservability } from '../../observability/wiring.js';
import { expiryText, parseDuration } from '../durations.js';
import { gateText, table } from '../output.js';
import type { Action } from '../register.js';

function serviceTable(services: ServiceStatus[]): string {
  return table(
    ['SERVICE', 'STATE', 'HEALTH', 'PORTS'],
    services.map((s) => [
      s.name,
      s.state + (s.exitCode !== null && s.state !== 'not created' ? ` (${s.exitCode})` : ''),
      s.health ?? '-',
      s.ports.map((p) => `${p.url ?? `${p.hostIp}:${p.host}`} -> ${p.container}/${p.protocol}`).join(', ') || '-',
    ]),
  );
}

function observabilityText(o: InstanceObservability): string[] {
  if (!o.enabled) return [];
  const lines = ['', `observability: shared stack ${o.sharedStack} ${o.stack}; ${o.targets.length} scrape target(s)`];
  if (o.links) lines.push(`  dashboard ${o.links.dashboard}`, `  traces    ${o.links.traces}`, `  metrics   ${o.links.metrics}`);
  else lines.push('  no links yet: start the shared stack with `sandstack obs up`');
  if (o.notRunning.length) lines.push(`  not running: ${o.notRunning.join('; ')}`);
  return lines;
}

function statusText(r: StatusResult | UpResult): string {
  const i = r.instance;
  const allowances = 'policy' in r ? r.policy.allowances : [];
  return [
    `instance ${i.id} (${i.kind}) ${i.state}${i.expiresInMs !== undefined ? `, expires: ${expiryText(i)} (${i.expiresAt})` : ''}`,
    `worktree ${i.worktree}${i.branch ? ` [${i.branch}]` : ''}`,
    ...(i.engineEndpoint ? [`engine ${i.engine} (${i.engineEndpoint}); ports are forwarded to this machine`] : []),
    '',
    serviceTable(r.services),
    ...(allowances.length ? ['', 'allowed guardrail exceptions:', ...allowances.map((a) => `  ${a.ruleId} ${a.rule} on ${a.service}: ${a.reason}`)] : []),
    ...('observability' in r ? observabilityText(r.observability) : []),
    ...('data' in r ? dataText(r.data) : []),
  ].join('\n');
}

/** The data section of `status`: the data root and each shared dataset, with where Docker shows it mounted. */
function dataText(d: StatusData): string[] {
  if (d.shared.length === 0 && d.root.template === null) return [];
  const lines = ['', 'data:', `  root ${d.root.path}${d.root.template ? ` (seeded from ${d.root.template})` : ''}${d.root.exists ? '' : ' (not created yet)'}`];
  for (const x of d.shared) {
    const unmounted = x.services.filter((s) => !x.mountedIn.includes(s));
    lines.push(`  shared ${x.name}: ${x.host} -> ${x.target} (${x.mode}) for ${x.services.join(', ')}${x.mountedIn.length ? `; mounted in ${x.mountedIn.join(', ')}` : ''}${x.mountedIn.length && unmounted.length ? `; not in ${unmounted.join(', ')}` : ''}`);
  }
  return lines;
}

function versionsLine(v: RuntimeVersions): string {
  const compose = v.compose ? `Compose ${v.compose.variant} ${v.compose.version}` : 'Compose not found';
  const engine = v.engine ? `engine ${v.engine.version} (API ${v.engine.apiVersion})` : 'engine not reachable';
  return `versions: sandstack ${v.sandstack}, ${compose}, ${engine}`;
}

export const up: Action = async (ctx, out, cmd) => {
  const opts = cmd.opts<{ build: boolean; gate: boolean; ttl?: string; from?: string }>();
  if (opts.ttl !== undefined) ctx.ttlMs = parseDuration('--ttl', opts.ttl);
  const r = await upInstance(ctx, { build: opts.build, gate: opts.gate, from: opts.from });
  out.notices(r.notices);
  out.result(r, () => `${statusText(r)}\n\n${gateText(r.gate)}\nready in ${(r.timings.totalMs / 1000).toFixed(1)} s`);
};

export const status: Action = async (ctx, out) => {
  const [base, versions] = await Promise.all([instanceStatus(ctx), runtimeVersions(ctx)]);
  const r = { ...base, versions };
  out.notices(r.notices);
  out.result(r, () => `${statusText(r)}\n\n${versionsLine(versions)}`);
};

export const render: Action = async (ctx, out) => {
  const r = await renderInstance(ctx);
  out.result({ instance: r.instance, file: r.file, report: r.report, model: r.model, redacted: r.redacted }, () => r.yaml);
};

export const down: Action = async (ctx, out) => {
  const r = await downInstance(ctx);
  out.notices(r.notices);
  out.result(r, () => (r.stopped.length ? `stopped ${r.instance.id}: ${r.stopped.join(', ')} (volumes and ports kept)` : `instance ${r.instance.id} was not running`));
};

export const destroy: Action = async (ctx, out, cmd) => {
  const o = cmd.opts<{ keepWorktree?: boolean; keepImages?: boolean }>();
  const r: DestroyResult = await destroyInstance(ctx, { keepWorktree: o.keepWorktree, keepImages: o.keepImages });
  out.notices(r.notices);
  out.result(r, () =>
    [
      `destroyed ${r.instance.id}: ${r.removed.containers.length} containers, ${r.removed.volumes.length} volumes, ${r.removed.networks.length} networks, ${r.removed.images.length} image tags removed`,
      `verified: 0 labelled containers, volumes and networks remain`,
      r.releasedPorts.length ? `released ports ${r.releasedPorts.join(', ')}` : '',
      r.worktree ? `worktree ${r.worktree.path}: ${r.worktree.removed ? 'removed' : r.worktree.reason}` : '',
    ]
      .filter(Boolean)
      .join('\n'),
  );
};
