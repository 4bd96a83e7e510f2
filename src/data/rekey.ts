/**
 * The re-key hook (`snapshot.rekey`): a seeded instance that runs with its own values of secrets its
 * data was written with starts the data's service alone on the seeded volumes, runs the hook in it
 * (each re-keyed secret as NAME = this instance's value and NAME_PREVIOUS = the snapshot's), and
 * leaves it running for the start stage, which starts the rest. A hook that fails, or a service
 * that dies before it is ready, fails with the secret named, before any other service starts.
 */
import { runCompose } from '../compose/cli.js';
import { containerLogTail, execInContainer, instanceContainers, type ContainerView } from '../engine/docker.js';
import { SandstackError } from '../errors.js';
import { redactText } from '../evidence/redact.js';
import type { Context } from '../lifecycle/context.js';
import type { PreparedInstance } from '../lifecycle/instance.js';
import { snapshotSecrets, type SeedPlan } from './snapshot.js';

export interface RekeyResult {
  service: string;
  secrets: string[];
  exitCode: number;
  durationMs: number;
}

const POLL_MS = 200;

function failed(message: string, secrets: string[], details: Record<string, unknown> = {}): SandstackError {
  return new SandstackError('SANDSTACK_REKEY_FAILED', message, {
    hint: `Fix the hook in sandstack.yaml (snapshot.rekey); it must give the seeded data this instance's ${secrets.join(', ')}. Nothing else was started.`,
    details: { secrets, ...details },
  });
}

/** Waits until the service's container is healthy (or running, without a healthcheck); fails when it stops. */
async function ready(ctx: Context, prepared: PreparedInstance, service: string, deadlineAt: number, secrets: string[]): Promise<ContainerView> {
  for (;;) {
    if (ctx.signal?.aborted) throw new SandstackError('SANDSTACK_INTERRUPTED', `Interrupted while ${service} started for the re-key hook.`);
    const c = (await instanceContainers(ctx.engine.docker, prepared.identity.id)).find((x) => x.service === service);
    if (c && c.state === 'running' && (c.health === undefined || c.health === 'healthy')) return c;
    if (c && (c.state === 'exited' || c.state === 'dead' || c.health === 'unhealthy')) {
      const tail = await containerLogTail(ctx.engine.docker, c.id, 20, c.tty).catch(() => []);
      const text = redactText(tail.join('\n'), prepared.secrets).text;
      throw failed(`${service} ${c.health === 'unhealthy' ? 'turned unhealthy' : `exited ${c.exitCode}`} on the seeded data before the re-key hook could run:\n${text}`, secrets, { service, logTail: text.split('\n') });
    }
    if (Date.now() > deadlineAt) throw failed(`${service} was not ready within the gate deadline, so the re-key hook (for ${secrets.join(', ')}) did not run.`, secrets, { service, state: c?.state ?? 'not created', health: c?.health });
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export async function rekeyData(ctx: Context, prepared: PreparedInstance, plan: SeedPlan, deadlineAt: number): Promise<RekeyResult> {
  const t0 = Date.now();
  const hook = prepared.loaded.config.snapshot.rekey;
  if (!hook) throw new Error('rekeyData without snapshot.rekey');
  const secrets = plan.rekey;
  const r = await runCompose(prepared.project, ['up', '-d', '--no-build', '--no-deps', hook.service], {
    signal: ctx.signal,
    timeoutMs: Math.max(1000, deadlineAt - Date.now()),
    onLine: (line) => ctx.onProgress({ type: 'log', source: 'compose', line }),
  });
  if (r.exitCode !== 0) throw failed(`compose up of ${hook.service} (for the re-key hook) failed:\n${r.tail.slice(-15).join('\n')}`, secrets, { service: hook.service });
  const c = await ready(ctx, prepared, hook.service, deadlineAt, secrets);
  const previous = await snapshotSecrets(plan.dir, plan.manifest);
  const env: Record<string, string> = {};
  for (const name of secrets) {
    env[name] = prepared.secrets.find((s) => s.name === name)!.value;
    env[`${name}_PREVIOUS`] = previous.find((s) => s.name === name)!.value;
  }
  ctx.onProgress({ type: 'step', message: `snapshot.rekey in ${hook.service} for ${secrets.join(', ')}` });
  const timeoutMs = Math.min(hook.timeoutSeconds * 1000, Math.max(1000, deadlineAt - Date.now()));
  const out = await execInContainer(ctx.engine.docker, c.id, hook.command, timeoutMs, env).catch((e: Error) => {
    throw failed(`The re-key hook in ${hook.service} (for ${secrets.join(', ')}) ${e.message}.`, secrets, { service: hook.service });
  });
  if (out.exitCode !== 0) {
    const text = redactText(out.output, [...prepared.secrets, ...previous.map((p) => ({ name: `${p.name}_PREVIOUS`, value: p.value }))]).text;
    throw failed(`The re-key hook in ${hook.service} exited ${out.exitCode}, so the seeded data still expects the snapshot's ${secrets.join(', ')}:\n${text.split('\n').slice(-10).join('\n')}`, secrets, {
      service: hook.service,
      exitCode: out.exitCode,
      output: text.split('\n').slice(-30),
    });
  }
  return { service: hook.service, secrets, exitCode: out.exitCode, durationMs: Date.now() - t0 };
}
