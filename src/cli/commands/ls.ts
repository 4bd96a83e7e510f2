/** `sandstack ls`: every instance of this state home, from the registry and one engine listing. */
import { listInstances } from '../../lifecycle/status.js';
import { expiryText } from '../durations.js';
import { table } from '../output.js';
import type { Action } from '../register.js';

export const ls: Action = async (ctx, out) => {
  const r = await listInstances(ctx);
  out.notices(r.notices);
  out.result(r, () =>
    r.instances.length === 0
      ? 'no instances'
      : table(
          ['INSTANCE', 'STATE', 'ENGINE', 'CONTAINERS', 'PORTS', 'EXPIRES', 'WORKTREE'],
          r.instances.map((i) => [i.id, i.state + (i.registered ? '' : ' (unregistered)') + (i.drift.length ? ' (drift)' : ''), i.engine ?? 'local', `${i.containers.running}/${i.containers.total}`, i.ports.map((p) => p.url ?? String(p.host)).join(', ') || '-', expiryText(i), i.worktree]),
        ) + r.instances.flatMap((i) => i.drift.map((d) => `\ndrift ${i.id}: ${d}`)).join(''),
  );
};
