/** `sandstack sync`: the instance's files on its remote engine brought up to date, its forwards reopened. */
import { syncInstance } from '../../lifecycle/operations.js';
import type { Action } from '../register.js';

export const sync: Action = async (ctx, out) => {
  const r = await syncInstance(ctx);
  out.result(r, () =>
    r.engine === 'local'
      ? `instance ${r.instance} runs on the local engine, which uses the worktree in place: nothing to sync`
      : `synced ${r.synced.length} folder(s) of ${r.instance} to engine ${r.engine} in ${(r.durationMs / 1000).toFixed(1)} s: ${r.synced.join(', ')}; port forwards open`,
  );
};
