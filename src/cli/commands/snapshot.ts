/** `sandstack snapshot save|ls|rm`: captured volumes (and data root) to seed new instances from. */
import { listSnapshots, removeSnapshot, saveSnapshot } from '../../data/snapshot.js';
import { assertDockerAvailable } from '../../engine/docker.js';
import { table } from '../output.js';
import type { Action } from '../register.js';

export const save: Action = async (ctx, out, cmd) => {
  await assertDockerAvailable(ctx.engine.docker);
  const r = await saveSnapshot(ctx, String(cmd.args[0]), { force: cmd.opts<{ force?: boolean }>().force });
  out.notices(r.notices);
  const m = r.snapshot;
  const total = m.volumes.reduce((n, v) => n + v.bytes, m.dataRoot?.bytes ?? 0);
  out.result(r, () =>
    [
      `snapshot ${m.name} of ${m.source.instance}${m.source.commit ? ` at ${m.source.commit.slice(0, 12)}${m.source.dirty ? ' (uncommitted changes)' : ''}` : ''}: ${m.volumes.map((v) => `${v.key} ${(v.bytes / 1e6).toFixed(1)} MB`).join(', ')}${m.dataRoot ? `, data root ${(m.dataRoot.bytes / 1e6).toFixed(1)} MB` : ''} (${(total / 1e6).toFixed(1)} MB) in ${(m.durationMs / 1000).toFixed(1)} s`,
      m.stopped.length ? `stopped ${m.stopped.join(', ')} for the copy; started again` : '',
      m.secrets.length ? `kept the secrets the data was written with: ${m.secrets.join(', ')} (owner-only, never printed)` : '',
      `stored in ${r.dir}`,
    ]
      .filter(Boolean)
      .join('\n'),
  );
};

export const list: Action = async (ctx, out) => {
  const snapshots = await listSnapshots(ctx.home);
  out.result({ snapshots }, () =>
    snapshots.length === 0
      ? 'no snapshots'
      : table(
          ['NAME', 'FROM', 'COMMIT', 'VOLUMES', 'SIZE', 'TAKEN'],
          snapshots.map((x) => [
            x.name,
            x.manifest?.source.instance ?? '-',
            x.manifest?.source.commit?.slice(0, 12) ?? '-',
            x.manifest ? x.manifest.volumes.map((v) => v.key).join(', ') + (x.manifest.dataRoot ? ' +data root' : '') : `unusable: ${x.problem}`,
            `${(x.bytes / 1e6).toFixed(1)} MB`,
            x.manifest?.createdAt ?? '-',
          ]),
        ),
  );
};

export const remove: Action = async (ctx, out, cmd) => {
  const r = await removeSnapshot(ctx.home, String(cmd.args[0]));
  out.result(r, () => `removed snapshot ${r.name} (${(r.bytes / 1e6).toFixed(1)} MB)`);
};
