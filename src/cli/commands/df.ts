/** `sandstack df`: disk used by this state home's instances, the build cache and the disk budget. */
import { formatSize, loadUserConfig } from '../../config/user.js';
import { assertDockerAvailable } from '../../engine/docker.js';
import { SandstackError } from '../../errors.js';
import { budgetStatus, diskUsage, type BudgetCheck, type DfResult } from '../../lifecycle/df.js';
import { table } from '../output.js';
import type { Action } from '../register.js';

function dfText(r: DfResult, budget: BudgetCheck): string {
  const n = (count: number, size: number) => (count === 0 ? '-' : `${formatSize(size)} (${count})`);
  const rows = r.instances.map((i) => [
    i.id + (i.registered ? '' : ' (unregistered)'),
    n(i.containers.count, i.containers.size),
    i.volumes.count === 0 ? '-' : `${formatSize(i.volumes.size)}${i.volumes.unknown.length ? '+?' : ''} (${i.volumes.count})`,
    n(i.images.count, i.images.disk),
    i.stateDir.exists ? formatSize(i.stateDir.size) : '-',
    formatSize(i.total),
  ]);
  const u = r.unattributed;
  if (u.images.count > 0) rows.push([`(unattributed${u.instances.length ? `: ${u.instances.join(', ')}` : ''})`, '-', '-', n(u.images.count, u.images.disk), '-', formatSize(u.total)]);
  const t = r.total;
  const bc = r.buildCache;
  const lines = [
    rows.length ? table(['INSTANCE', 'CONTAINERS', 'VOLUMES', 'IMAGES', 'STATE DIR', 'TOTAL'], rows) : 'no instances in this state home',
    `total: ${formatSize(t.size)} (containers ${formatSize(t.containers.size)}, volumes ${formatSize(t.volumes.size)}, images ${formatSize(t.images.disk)} (${formatSize(t.images.size)} as docker image ls lists them; shared layers counted once), state dirs ${formatSize(t.stateDirs)}, snapshots ${formatSize(t.snapshots.size)} (${t.snapshots.count}))`,
    `build cache (engine-wide, every build on this engine, not only sandstack's; not in the total): ${formatSize(bc.size)}, ${formatSize(bc.reclaimable)} reclaimable, ${bc.records} records`,
  ];
  if (bc.untaggedImages.count > 0) lines.push(`untagged images of this state home (build layers, superseded builds; counted under IMAGES): ${formatSize(bc.untaggedImages.size)} (${bc.untaggedImages.count})`);
  if (budget.budgetBytes !== undefined && budget.usedBytes !== undefined) {
    lines.push(
      budget.exceeded
        ? `budget ${formatSize(budget.budgetBytes)}: over budget by ${formatSize(budget.usedBytes - budget.budgetBytes)} (${formatSize(budget.usedBytes)} used, ${budget.percent}%)`
        : `budget ${formatSize(budget.budgetBytes)}: ${formatSize(budget.usedBytes)} used (${budget.percent}%)`,
    );
  }
  return lines.join('\n');
}

export const df: Action = async (ctx, out) => {
  // The user config first: an invalid one fails before the engine is asked.
  const user = await loadUserConfig(ctx.env);
  await assertDockerAvailable(ctx.engine.docker);
  const usage = await diskUsage(ctx);
  const budget = budgetStatus(user, usage);
  const only = ctx.instanceFlag;
  if (only && !usage.instances.some((i) => i.id === only)) {
    throw new SandstackError('SANDSTACK_INSTANCE_NOT_FOUND', `No instance ${only} in this state home (${ctx.home}).`, { hint: 'See them all with `sandstack df` or `sandstack ls`.' });
  }
  const r = { ...usage, ...(only ? { instances: usage.instances.filter((i) => i.id === only), filter: only } : {}), budget };
  out.notices(r.notices);
  out.result(r, () => dfText(r, budget));
};
