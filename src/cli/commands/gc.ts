/** `sandstack gc`: remove what sandstack left behind in this state home. */
import { assertDockerAvailable } from '../../engine/docker.js';
import { gc as collect, type GcResult } from '../../lifecycle/gc.js';
import { parseDuration } from '../durations.js';
import { table } from '../output.js';
import type { Action } from '../register.js';

export const gc: Action = async (ctx, out, cmd) => {
  const o = cmd.opts<{ dryRun?: boolean; worktreeGone?: boolean; evidenceOlderThan?: string; images?: boolean }>();
  const evidenceOlderThanMs = o.evidenceOlderThan === undefined ? undefined : parseDuration('--evidence-older-than', o.evidenceOlderThan);
  await assertDockerAvailable(ctx.engine.docker);
  const r: GcResult = await collect(ctx, { dryRun: o.dryRun, worktreeGone: o.worktreeGone, evidenceOlderThanMs, images: o.images, named: ctx.instanceFlag ? [ctx.instanceFlag] : [] });
  out.result(r, () => {
    if (r.items.length === 0) return 'nothing to collect';
    const rows = r.items.map((i) => [i.kind, i.id + (i.engine && i.engine !== 'local' ? ` (on ${i.engine})` : ''), i.removed ? 'removed' : r.dryRun ? 'would remove' : 'kept', i.why + (i.hint ? ` (${i.hint})` : '')]);
    return `${table(['KIND', 'INSTANCE', 'ACTION', 'WHY'], rows)}\n${r.items.filter((i) => i.removed).length} removed${r.dryRun ? ' (dry run: nothing removed)' : ''}`;
  });
};
