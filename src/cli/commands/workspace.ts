/** The commands on the project and its worktree: init, lint, new, ports, logs, shell, secrets. */
import { SandstackError } from '../../errors.js';
import { init as initProject, lint as lintFiles, logs as serviceLogs, newWorktree, ports as leasedPorts, secrets, shell as openShell } from '../../lifecycle/workspace.js';
import { lintTextLines } from '../../policy/check.js';
import { toSarif } from '../../policy/sarif.js';
import { sandstackVersion } from '../../version.js';
import { table } from '../output.js';
import type { Action } from '../register.js';

export const init: Action = async (ctx, out, cmd) => {
  const opts = cmd.opts<{ force?: boolean; file: string[] }>();
  const r = await initProject(ctx, { force: opts.force, files: opts.file });
  out.result(r, () =>
    [
      `wrote ${r.file}`,
      ...(r.composeFiles ? [`compose files: ${r.composeFiles.join(', ')}${r.composeFilesFrom === 'COMPOSE_FILE' ? ' (from COMPOSE_FILE)' : ''}`] : []),
      `published ports: ${r.publish.map((p) => `${p.service}:${p.port} (${p.protocol})`).join(', ') || 'none'}`,
      ...(r.secrets.length ? [`generated secrets: ${r.secrets.join(', ')}`] : []),
      ...(r.required.length ? [`required variables: ${r.required.join(', ')} (set them, they are passed to Compose)`] : []),
      ...r.composeFindings.containerNames.map((f) => `note: ${f} (sandstack removes it when it runs the stack)`),
      ...r.composeFindings.fixedPorts.map((f) => `note: fixed host port ${f} (sandstack replaces it with a leased 127.0.0.1 port)`),
    ].join('\n'),
  );
};

export const lint: Action = async (ctx, out, cmd) => {
  const o = cmd.opts<{ fix?: boolean; format: string }>();
  if (!['text', 'json', 'sarif'].includes(o.format)) throw new SandstackError('SANDSTACK_USAGE', `Unknown --format ${o.format}.`, { hint: 'Use text, json or sarif.' });
  const r = await lintFiles(ctx, { files: cmd.args, fix: o.fix });
  if (o.format === 'sarif') {
    const sarif = toSarif(r.findings, sandstackVersion(), { baseDir: r.root, cwd: ctx.cwd, ...(r.files[0] !== undefined ? { mergedModelFile: r.files[0] } : {}) });
    process.stdout.write(`${JSON.stringify(sarif, null, 2)}\n`);
  } else {
    const asJson = o.format === 'json' || out.opts.json;
    const data = { summary: r.summary, findings: r.findings, fixes: r.fixes, allowances: r.allowances, mergedError: r.mergedError, files: r.files };
    if (asJson) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    else process.stdout.write(`${lintTextLines(r).join('\n')}\n`);
  }
  return r.summary.errors > 0 ? 1 : 0;
};

export const newInstance: Action = async (ctx, out, cmd) => {
  const r = await newWorktree(ctx, cmd.args[0]!, { base: cmd.opts<{ base: string }>().base });
  out.notices(r.notices);
  out.result(r, () =>
    [`created instance ${r.instance.id}`, `worktree ${r.instance.worktree} [${r.instance.branch}]`, ...r.ports.map((p) => `port ${p.service}:${p.container} -> ${p.url ?? p.host}`), '', `next: cd ${r.instance.projectDir} && sandstack up`].join('\n'),
  );
};

export const ports: Action = async (ctx, out) => {
  const r = await leasedPorts(ctx);
  out.result(r, () =>
    r.ports.length === 0
      ? `instance ${r.instance.id}: no leased ports${r.instance.registered ? '' : ' (not registered yet; `sandstack up` leases them)'}`
      : table(['SERVICE', 'CONTAINER', 'HOST', 'URL'], r.ports.map((p) => [p.service, `${p.container}/${p.protocol}`, `${p.hostIp}:${p.host}`, p.url ?? '-'])),
  );
};

export const logs: Action = async (ctx, _out, cmd) => {
  const o = cmd.opts<{ follow?: boolean; tail?: number }>();
  return serviceLogs(ctx, { service: cmd.args[0], follow: o.follow, tail: o.tail });
};

export const shell: Action = async (ctx, _out, cmd) => {
  const [service, ...command] = cmd.args;
  return openShell(ctx, { service, tty: Boolean(process.stdin.isTTY && process.stdout.isTTY), command });
};

export const secretsList: Action = async (ctx, out) => {
  const r = await secrets(ctx);
  out.result(r, () => (r.secrets.length ? table(['SECRET', 'GENERATED', 'FILE'], r.secrets.map((s) => [s.name, s.generated ? 'yes' : 'no (on first up)', s.file])) : 'no secrets declared in sandstack.yaml'));
};

export const secretsRotate: Action = async (ctx, out, cmd) => {
  const names = cmd.args;
  const r = await secrets(ctx, { rotate: names.length ? names : true });
  out.result(r, () => `rotated ${r.rotated?.join(', ') || 'nothing'}; running containers keep the old values until \`sandstack down && sandstack up\``);
};
