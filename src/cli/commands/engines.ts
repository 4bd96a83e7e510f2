/** `sandstack engines`: the Docker engines this state home may use, reachable or not, with their load. */
import { formatSize } from '../../config/user.js';
import { listEngines, type EnginesResult } from '../../lifecycle/engines.js';
import { table } from '../output.js';
import type { Action } from '../register.js';

function enginesText(r: EnginesResult): string {
  const rows = r.engines.map((e) => [
    e.name,
    e.endpoint,
    e.reachable ? 'yes' : 'no',
    e.dockerVersion ? `${e.dockerVersion} (API ${e.apiVersion})` : '-',
    `${e.instances}${e.capacity ? `/${e.capacity}` : ''}`,
    e.memAvailable ? formatSize(e.memAvailable) : '-',
    e.inPool ? 'yes' : '-',
  ]);
  const lines = [table(['ENGINE', 'ENDPOINT', 'REACHABLE', 'DOCKER', 'INSTANCES', 'FREE MEMORY', 'POOL'], rows)];
  for (const e of r.engines) if (!e.reachable) lines.push(`${e.name}: ${e.error}`);
  if (r.pool.length === 0) lines.push(`no pool in ${r.userConfig}: new instances run on the local engine unless --engine, SANDSTACK_ENGINE or engine: in sandstack.yaml says otherwise`);
  return lines.join('\n');
}

export const engines: Action = async (ctx, out) => {
  const r = await listEngines(ctx);
  out.notices(r.notices);
  out.result(r, () => enginesText(r));
};
