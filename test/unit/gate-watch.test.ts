import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServicePolicies } from '../../src/engine/readiness.js';
import { StackWatch } from '../../src/engine/watch.js';
import { isSandstackError, SandstackError } from '../../src/errors.js';
import { containerView } from './fixtures.js';

const INSTANCE = 'feat-a';
const TIME = 1_735_732_800; // 2025-01-01T12:00:00Z, in seconds

interface FakeContainer {
  id: string;
  service: string;
  status?: string;
  exitCode?: number;
  oomKilled?: boolean;
  restartCount?: number;
  logs?: string[];
}

/** A dockerode stand-in: an event stream we write into, and containers to list, inspect and read logs of. */
function fakeDocker(containers: FakeContainer[] = []) {
  const events = new PassThrough();
  const calls: { getEvents: unknown[] } = { getEvents: [] };
  const byId = new Map(containers.map((c) => [c.id, c]));
  const inspect = (c: FakeContainer) => ({
    Id: c.id,
    Name: `/${INSTANCE}-${c.service}-1`,
    RestartCount: c.restartCount ?? 0,
    Image: 'sha256:1',
    State: {
      Status: c.status ?? 'running',
      ExitCode: c.exitCode ?? 0,
      OOMKilled: c.oomKilled ?? false,
      StartedAt: '2025-01-01T12:00:01Z',
      FinishedAt: '0001-01-01T00:00:00Z',
    },
    Config: { Labels: { 'com.docker.compose.service': c.service, 'dev.sandstack.instance': INSTANCE }, Image: 'demo', Tty: true },
    NetworkSettings: { Ports: {} },
  });
  const docker = {
    getEvents: async (opts: unknown) => {
      calls.getEvents.push(opts);
      return events;
    },
    listContainers: async () => [...byId.values()].map((c) => ({ Id: c.id })),
    getContainer: (id: string) => ({
      inspect: async () => {
        const c = byId.get(id);
        if (!c) throw Object.assign(new Error('no such container'), { statusCode: 404 });
        return inspect(c);
      },
      logs: async () => Buffer.from((byId.get(id)?.logs ?? []).map((l) => `${l}\n`).join(''), 'utf8'),
    }),
  } as unknown as Docker;
  return { docker, events, calls, byId };
}

let eventSeq = 0;
/** A Docker event line, shaped as the engine sends it. */
function event(action: string, service: string, attrs: Record<string, string> = {}, opts: { id?: string; timeNano?: number } = {}) {
  const id = opts.id ?? `id-${service}`;
  const timeNano = opts.timeNano ?? (TIME + eventSeq++) * 1e9;
  return `${JSON.stringify({
    status: action,
    id,
    from: 'demo',
    Type: 'container',
    Action: action,
    Actor: {
      ID: id,
      Attributes: { 'com.docker.compose.project': INSTANCE, 'com.docker.compose.service': service, image: 'demo', name: `${INSTANCE}-${service}-1`, ...attrs },
    },
    scope: 'local',
    time: Math.floor(timeNano / 1e9),
    timeNano,
  })}\n`;
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

/** Settles with the failure, or 'none' if there is none within `ms`. */
async function failureWithin(w: StackWatch, ms = 150): Promise<SandstackError | 'none'> {
  return Promise.race([w.failed.catch((e: unknown) => e as SandstackError), tick(ms).then(() => 'none' as const)]);
}

const watches: StackWatch[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.stop();
});

async function start(expected: string[], policies: ServicePolicies = {}, containers: FakeContainer[] = []) {
  const fake = fakeDocker(containers);
  const w = await StackWatch.start(fake.docker, INSTANCE, expected, policies);
  watches.push(w);
  return { ...fake, w };
}

type Failure = { service: string; container: string; reason: string; exitCode?: number; eventAt?: number; logTail: string[]; message: string };
const failureOf = (e: SandstackError) => e.details?.failure as Failure;

describe('StackWatch: failures from events', () => {
  it('subscribes to the instance container state events', async () => {
    const { calls } = await start(['api']);
    expect(calls.getEvents).toHaveLength(1);
    const filters = JSON.parse((calls.getEvents[0] as { filters: string }).filters) as { type: string[]; event: string[]; label: string[] };
    expect(filters.type).toEqual(['container']);
    expect(filters.event).toEqual(expect.arrayContaining(['die', 'oom', 'health_status', 'kill', 'start']));
    expect(filters.label).toEqual([`dev.sandstack.instance=${INSTANCE}`]);
  });

  it('fails a non-zero exit of an expected service with SANDSTACK_SERVICE_FAILED and the event time', async () => {
    const { w, events } = await start(['api', 'db'], {}, [{ id: 'id-api', service: 'api', status: 'exited', exitCode: 3, logs: ['starting', 'panic: no config'] }]);
    const timeNano = (TIME + 7) * 1e9 + 123_456_789;
    events.write(event('die', 'api', { exitCode: '3' }, { timeNano }));
    const e = await w.failed.catch((x: unknown) => x);
    expect(isSandstackError(e)).toBe(true);
    const err = e as SandstackError;
    expect(err.code).toBe('SANDSTACK_SERVICE_FAILED');
    expect(err.message).toBe('service api exited with code 3');
    expect(failureOf(err)).toMatchObject({ service: 'api', container: 'feat-a-api-1', reason: 'exited', exitCode: 3, logTail: ['starting', 'panic: no config'] });
    expect(failureOf(err).eventAt).toBe((TIME + 7) * 1000 + 123);
    expect(w.failure).toBe(err);
  });

  it('names the restart policy of a crashing service', async () => {
    const { w, events } = await start(['api'], { api: { stableMs: 3000, restart: 'always', mustStayUp: 'restart: always' } });
    events.write(event('die', 'api', { exitCode: '1' }));
    const e = (await failureWithin(w)) as SandstackError;
    expect(e.message).toContain('exited with code 1');
    expect(e.message).toContain('restart: always');
    expect(e.message).toContain('crash loop');
  });

  it('does not fail the exit 0 of a one-shot, and still fails a later failure', async () => {
    const { w, events } = await start(['migrate', 'api'], { migrate: { stableMs: 3000, job: true }, api: { stableMs: 3000 } });
    events.write(event('die', 'migrate', { exitCode: '0' }));
    expect(await failureWithin(w)).toBe('none');
    expect(w.failure).toBeUndefined();
    events.write(event('die', 'api', { exitCode: '2' }));
    const e = (await failureWithin(w)) as SandstackError;
    expect(failureOf(e)).toMatchObject({ service: 'api', exitCode: 2 });
  });

  it('does not fail the exit 0 of a service without a policy', async () => {
    const { w, events } = await start(['seed']);
    events.write(event('die', 'seed', { exitCode: '0' }));
    expect(await failureWithin(w)).toBe('none');
  });

  it('fails the exit 0 of a service that must stay up, naming why', async () => {
    const { w, events } = await start(['api'], { api: { stableMs: 3000, mustStayUp: 'it publishes port 8080' } });
    events.write(event('die', 'api', { exitCode: '0' }));
    const e = (await failureWithin(w)) as SandstackError;
    expect(e).not.toBe('none');
    expect(failureOf(e)).toMatchObject({ service: 'api', reason: 'exited', exitCode: 0 });
    expect(e.message).toContain('must stay up (it publishes port 8080)');
    expect(e.message).toContain('gate.services.api.job: true');
  });

  it('ignores a kill then die while compose up runs (Compose replacing a container)', async () => {
    const { w, events } = await start(['api'], { api: { stableMs: 3000, mustStayUp: 'restart: always' } });
    w.composeRunning = true;
    events.write(event('kill', 'api', { signal: '15' }));
    events.write(event('die', 'api', { exitCode: '143' }));
    expect(await failureWithin(w)).toBe('none');
  });

  it('fails a kill then die after compose up returned, as a stop or kill from outside', async () => {
    const { w, events } = await start(['api']);
    w.composeRunning = false;
    events.write(event('kill', 'api', { signal: '15' }));
    events.write(event('die', 'api', { exitCode: '0' }));
    const e = (await failureWithin(w)) as SandstackError;
    expect(e).not.toBe('none');
    expect(failureOf(e)).toMatchObject({ service: 'api', reason: 'exited', exitCode: 0 });
    expect(e.message).toContain('stop or kill from outside');
  });

  it('forgets a kill once the container starts again', async () => {
    const { w, events } = await start(['api']);
    w.composeRunning = true;
    events.write(event('kill', 'api', { signal: '15' }));
    events.write(event('start', 'api'));
    events.write(event('die', 'api', { exitCode: '1' }));
    const e = (await failureWithin(w)) as SandstackError;
    expect(e).not.toBe('none');
    expect(failureOf(e)).toMatchObject({ reason: 'exited', exitCode: 1 });
    expect(e.message).not.toContain('from outside');
  });

  it("fails an oom event followed by the container's die as 'oom-killed' with the die's exit code", async () => {
    const { w, events } = await start(['api']);
    events.write(event('oom', 'api'));
    events.write(event('die', 'api', { exitCode: '137' }));
    const e = (await failureWithin(w)) as SandstackError;
    expect(e).not.toBe('none');
    expect(failureOf(e)).toMatchObject({ service: 'api', reason: 'oom-killed', exitCode: 137 });
    expect(e.hint).toContain('more memory');
  });

  it("fails an oom event with no die (a child process was killed) as 'oom-killed' after a short grace", async () => {
    const { w, events } = await start(['api']);
    events.write(event('oom', 'api'));
    expect(await failureWithin(w, 100)).toBe('none');
    const e = (await failureWithin(w, 1500)) as SandstackError;
    expect(e).not.toBe('none');
    expect(failureOf(e)).toMatchObject({ service: 'api', reason: 'oom-killed' });
    expect(e.message).toContain('a process of service api');
  });

  it('does not wait for a diagnosis the engine holds back: the failure comes first, its log tail later', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { w, events, docker } = await start(['api'], {}, [{ id: 'id-api', service: 'api', status: 'exited', exitCode: 1, logs: ['boom'] }]);
    const fake = docker as unknown as { getContainer: (id: string) => { inspect: () => Promise<unknown>; logs: (o?: unknown) => Promise<unknown> } };
    const original = fake.getContainer;
    // The engine answers nothing about the container until it is released (as during a policy restart).
    fake.getContainer = (id: string) => {
      const c = original(id);
      return { inspect: async () => (await held, c.inspect()), logs: async (o?: unknown) => (await held, c.logs(o)) };
    };
    events.write(event('die', 'api', { exitCode: '1' }));
    const e = (await failureWithin(w, 1000)) as SandstackError;
    expect(e).not.toBe('none');
    expect(failureOf(e)).toMatchObject({ reason: 'exited', exitCode: 1 });
    const tail = failureOf(e).logTail as string[];
    expect(tail).toEqual([]);
    release();
    await w.settle();
    expect(tail).toEqual(['boom']);
  });

  it("turns an exit of a container the engine reports as OOM-killed into 'oom-killed'", async () => {
    const { w, events } = await start(['api'], {}, [{ id: 'id-api', service: 'api', status: 'exited', exitCode: 137, oomKilled: true }]);
    events.write(event('die', 'api', { exitCode: '137' }));
    const e = (await failureWithin(w)) as SandstackError;
    expect(failureOf(e)).toMatchObject({ reason: 'oom-killed', exitCode: 137 });
    expect(e.message).toContain('out of memory');
  });

  it("fails 'health_status: unhealthy' as 'unhealthy', not a healthy status", async () => {
    const { w, events } = await start(['db']);
    events.write(event('health_status: healthy', 'db'));
    expect(await failureWithin(w, 80)).toBe('none');
    events.write(event('health_status: unhealthy', 'db'));
    const e = (await failureWithin(w)) as SandstackError;
    expect(e).not.toBe('none');
    expect(failureOf(e)).toMatchObject({ service: 'db', reason: 'unhealthy' });
  });

  it('ignores events of services it does not expect', async () => {
    const { w, events } = await start(['api']);
    events.write(event('die', 'other', { exitCode: '1' }));
    events.write(event('oom', 'other'));
    events.write(event('health_status: unhealthy', 'other'));
    events.write(event('die', 'api', { exitCode: '1' }, { id: 'x' }).replace('"com.docker.compose.service":"api"', '"com.docker.compose.service":"apix"'));
    events.write(event('die', '', { exitCode: '1' }));
    expect(await failureWithin(w)).toBe('none');
    expect(w.failure).toBeUndefined();
  });

  it('ignores exec_* events (healthcheck runs)', async () => {
    const { w, events } = await start(['db']);
    events.write(event('exec_die', 'db', { exitCode: '1', execID: 'e1' }));
    events.write(event('exec_start: pg_isready', 'db'));
    expect(await failureWithin(w)).toBe('none');
  });

  it('lets the first failure win', async () => {
    const { w, events } = await start(['api', 'db']);
    events.write(event('die', 'db', { exitCode: '5' }));
    events.write(event('oom', 'api'));
    events.write(event('die', 'api', { exitCode: '1' }));
    const e = (await failureWithin(w)) as SandstackError;
    expect(failureOf(e)).toMatchObject({ service: 'db', reason: 'exited', exitCode: 5 });
    await tick();
    expect(w.failure).toBe(e);
    expect(failureOf(w.failure!).service).toBe('db');
  });

  it('reads events split across chunks', async () => {
    const { w, events } = await start(['api']);
    const line = event('die', 'api', { exitCode: '9' });
    events.write(line.slice(0, 40));
    await tick(10);
    events.write(line.slice(40));
    const e = (await failureWithin(w)) as SandstackError;
    expect(failureOf(e)).toMatchObject({ exitCode: 9 });
  });
});

describe('StackWatch: wake-ups and guard', () => {
  it('wakes its listeners on every event, and not after unsubscribing', async () => {
    const { w, events } = await start(['api']);
    let a = 0;
    let b = 0;
    const offA = w.onWake(() => a++);
    w.onWake(() => b++);
    events.write(event('start', 'api'));
    events.write(event('create', 'other'));
    await tick();
    expect(a).toBe(2);
    expect(b).toBe(2);
    offA();
    events.write(event('start', 'api'));
    await tick();
    expect(a).toBe(2);
    expect(b).toBe(3);
  });

  it('wakes its listeners again once a failure is diagnosed', async () => {
    const { w, events } = await start(['api']);
    let wakes = 0;
    w.onWake(() => wakes++);
    events.write(event('die', 'api', { exitCode: '1' }));
    await w.failed.catch(() => undefined);
    await tick();
    expect(wakes).toBe(2); // the event, then the diagnosed failure
  });

  it('guard() rejects a pending promise as soon as a failure arrives', async () => {
    const { w, events } = await start(['api']);
    const never = new Promise<string>(() => undefined);
    const guarded = w.guard(never);
    setTimeout(() => events.write(event('die', 'api', { exitCode: '4' })), 20);
    const e = await guarded.catch((x: unknown) => x);
    expect(isSandstackError(e)).toBe(true);
    expect(failureOf(e as SandstackError)).toMatchObject({ service: 'api', exitCode: 4 });
  });

  it('guard() passes through the result of work that ends first', async () => {
    const { w } = await start(['api']);
    await expect(w.guard(Promise.resolve(42))).resolves.toBe(42);
    await expect(w.guard(Promise.reject(new Error('own')))).rejects.toThrow('own');
  });
});

describe('StackWatch: assertSteady', () => {
  it('passes when every ready container kept its RestartCount', async () => {
    const { w } = await start(['api'], {}, [{ id: 'id-api', service: 'api', restartCount: 1 }]);
    w.markReady(containerView('api', { name: 'feat-a-api-1', restartCount: 1 }));
    await expect(w.assertSteady()).resolves.toBeUndefined();
    expect(w.failure).toBeUndefined();
  });

  it("fails 'restarted' naming the counts when RestartCount went up after readiness", async () => {
    const { w } = await start(['api'], {}, [{ id: 'id-api', service: 'api', restartCount: 3, exitCode: 1 }]);
    w.markReady(containerView('api', { name: 'feat-a-api-1', restartCount: 1 }));
    const e = await w.assertSteady().catch((x: unknown) => x);
    expect(isSandstackError(e)).toBe(true);
    const err = e as SandstackError;
    expect(err.code).toBe('SANDSTACK_SERVICE_FAILED');
    expect(failureOf(err)).toMatchObject({ service: 'api', container: 'feat-a-api-1', reason: 'restarted', exitCode: 1 });
    expect(err.message).toContain('restarted 2 times during the gate');
    expect(err.message).toContain('RestartCount 1 when ready, 3 at the verdict');
    expect(err.hint).toContain('restart policy');
  });

  it('keeps the count of the first markReady', async () => {
    const { w } = await start(['api'], {}, [{ id: 'id-api', service: 'api', restartCount: 1 }]);
    w.markReady(containerView('api', { restartCount: 0 }));
    w.markReady(containerView('api', { restartCount: 1 }));
    const e = (await w.assertSteady().catch((x: unknown) => x)) as SandstackError;
    expect(e.message).toContain('restarted 1 time during the gate (RestartCount 0 when ready, 1 at the verdict');
  });

  it("fails 'missing' when a ready container was removed", async () => {
    const { w, byId } = await start(['api'], {}, [{ id: 'id-api', service: 'api' }]);
    w.markReady(containerView('api'));
    byId.clear();
    const e = (await w.assertSteady().catch((x: unknown) => x)) as SandstackError;
    expect(failureOf(e)).toMatchObject({ service: 'api', reason: 'missing' });
    expect(e.message).toContain('was removed during the gate');
  });

  it('throws the failure seen before, without looking again', async () => {
    const { w, events } = await start(['api'], {}, [{ id: 'id-api', service: 'api', restartCount: 0 }]);
    events.write(event('die', 'api', { exitCode: '6' }));
    const first = await w.failed.catch((x: unknown) => x);
    await expect(w.assertSteady()).rejects.toBe(first);
  });
});
