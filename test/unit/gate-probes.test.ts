import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ProbeSchema, type ProbeSpec } from '../../src/config/schema.js';
import { SandstackError } from '../../src/errors.js';
import { checkJson, jsonPath, runProbe, runProbes, validateProbes, type ProbeEnv, type ProbeResult } from '../../src/gate/probes.js';
import type { Lease } from '../../src/state/registry.js';

type Assertion = Parameters<typeof checkJson>[1][number];

function probe(input: Record<string, unknown>): ProbeSpec {
  return ProbeSchema.parse(input);
}

function lease(service: string, containerPort: number, hostPort: number, protocol: 'tcp' | 'udp' = 'tcp'): Lease {
  return { service, containerPort, protocol, hostPort, scheme: protocol === 'udp' ? 'udp' : 'http' };
}

describe('jsonPath', () => {
  const body = { a: { b: [{ c: 1 }, { c: 'two' }] }, n: null, list: [10, 20, 30], zero: 0 };

  it('reads nested keys and array indexes', () => {
    expect(jsonPath(body, 'a.b.0.c')).toBe(1);
    expect(jsonPath(body, 'a.b.1.c')).toBe('two');
    expect(jsonPath(body, 'list.2')).toBe(30);
    expect(jsonPath(body, 'zero')).toBe(0);
  });

  it('reads .length of an array', () => {
    expect(jsonPath(body, 'list.length')).toBe(3);
    expect(jsonPath(body, 'a.b.length')).toBe(2);
  });

  it('returns null for a null value and undefined below it or for missing keys', () => {
    expect(jsonPath(body, 'n')).toBeNull();
    expect(jsonPath(body, 'n.x')).toBeUndefined();
    expect(jsonPath(body, 'nope')).toBeUndefined();
    expect(jsonPath(body, 'list.7')).toBeUndefined();
    expect(jsonPath(body, 'zero.x')).toBeUndefined();
  });

  it('reads from a top-level array', () => {
    expect(jsonPath([{ id: 7 }], '0.id')).toBe(7);
    expect(jsonPath([1, 2], 'length')).toBe(2);
  });

  // BUG (src/gate/probes.ts, jsonPath): it indexes with `cur[part]` and no own-property check, so
  // keys inherited from Object.prototype / Array.prototype "exist" in every JSON body:
  // jsonPath({}, 'constructor') is the Object function, and checkJson({}, [{ path: 'constructor',
  // exists: false }]) fails with "constructor is undefined, expected it to be absent".
  it('does not see inherited properties as JSON values', () => {
    expect(jsonPath({ status: 'ok' }, 'constructor')).toBeUndefined();
    expect(jsonPath({ items: [] }, 'items.map')).toBeUndefined();
    expect(checkJson({}, [{ path: 'toString', exists: false }])).toEqual([]);
  });
});

describe('checkJson', () => {
  const body = { count: 2, status: 'ok', ready: true, off: false, nothing: null, items: [{ name: 'w1' }, { name: 'w2' }] };
  const check = (...a: Assertion[]) => checkJson(body, a);

  it('passes when every assertion holds', () => {
    expect(
      check(
        { path: 'count', gte: 2, lte: 2 },
        { path: 'status', equals: 'ok' },
        { path: 'ready', equals: true },
        { path: 'off', equals: false },
        { path: 'nothing', equals: null },
        { path: 'count', equals: 2 },
        { path: 'items.length', equals: 2 },
        { path: 'items.1.name', equals: 'w2' },
        { path: 'items.0', exists: true },
        { path: 'items.5', exists: false },
      ),
    ).toEqual([]);
  });

  it('reports a number below gte', () => {
    expect(check({ path: 'count', gte: 3 })).toEqual(['count is 2, expected >= 3']);
  });

  it('reports a number above lte', () => {
    expect(check({ path: 'items.length', lte: 1 })).toEqual(['items.length is 2, expected <= 1']);
  });

  it('reports a missing path for gte and equals', () => {
    expect(check({ path: 'workers', gte: 1 })).toEqual(['workers is missing, expected >= 1']);
    expect(check({ path: 'a.b.c', equals: 'x' })).toEqual(['a.b.c is missing, expected "x"']);
  });

  it('refuses a numeric string for gte/lte', () => {
    expect(checkJson({ count: '5' }, [{ path: 'count', gte: 1 }])).toEqual(['count is "5", expected >= 1']);
  });

  it('compares equals strictly across types', () => {
    expect(check({ path: 'count', equals: '2' })).toEqual(['count is 2, expected "2"']);
    expect(check({ path: 'status', equals: 'OK' })).toEqual(['status is "ok", expected "OK"']);
    expect(check({ path: 'ready', equals: false })).toEqual(['ready is true, expected false']);
    expect(check({ path: 'off', equals: null })).toEqual(['off is false, expected null']);
    expect(check({ path: 'nothing', equals: 0 })).toEqual(['nothing is null, expected 0']);
  });

  it('checks exists true and false', () => {
    expect(check({ path: 'missing', exists: true })).toEqual(['missing is missing, expected it to exist']);
    expect(check({ path: 'status', exists: false })).toEqual(['status is "ok", expected it to be absent']);
    // null is a value that exists
    expect(check({ path: 'nothing', exists: true })).toEqual([]);
  });

  it('reports every failed operator of one assertion and keeps the order', () => {
    expect(check({ path: 'count', gte: 5, lte: 1 }, { path: 'status', equals: 'down' })).toEqual([
      'count is 2, expected >= 5',
      'count is 2, expected <= 1',
      'status is "ok", expected "down"',
    ]);
  });

  it('fails every assertion against a non-object body', () => {
    expect(checkJson('hello', [{ path: 'x', exists: true }])).toEqual(['x is missing, expected it to exist']);
    expect(checkJson(null, [{ path: 'x', equals: null }])).toEqual(['x is missing, expected null']);
  });
});

describe('validateProbes', () => {
  const services = ['web', 'db', 'worker'];
  const leases = [lease('web', 80, 20001), lease('dns', 53, 20002, 'udp')];

  function refusal(probes: ProbeSpec[], l: Lease[] = leases): SandstackError {
    try {
      validateProbes(probes, l, [...services, 'dns']);
    } catch (e) {
      expect(e).toBeInstanceOf(SandstackError);
      return e as SandstackError;
    }
    throw new Error('expected validateProbes to throw');
  }

  it('accepts probes that fit the config', () => {
    expect(() =>
      validateProbes(
        [
          probe({ name: 'api', http: { service: 'web', port: 80 } }),
          probe({ name: 'psql', exec: { service: 'db', command: ['pg_isready'] } }),
          probe({ name: 'db-port', tcp: { service: 'db', port: 5432, from: 'worker' } }),
          probe({ name: 'host', command: { run: 'true' } }),
        ],
        leases,
        services,
      ),
    ).not.toThrow();
  });

  it('refuses an http probe to a port that is not leased', () => {
    const e = refusal([probe({ name: 'api', http: { service: 'web', port: 8080 } })]);
    expect(e.code).toBe('SANDSTACK_CONFIG_INVALID');
    expect(e.message).toContain('Probe "api" sends HTTP to web:8080, which is not published.');
    expect(e.hint).toContain('{ service: web, port: 8080 }');
  });

  it('refuses an http probe to a service whose port is leased on another service', () => {
    const e = refusal([probe({ name: 'api', http: { service: 'worker', port: 80 } })]);
    expect(e.code).toBe('SANDSTACK_CONFIG_INVALID');
  });

  it('refuses an http probe to a udp lease', () => {
    const e = refusal([probe({ name: 'dns-http', http: { service: 'dns', port: 53 } })]);
    expect(e.code).toBe('SANDSTACK_CONFIG_INVALID');
  });

  it('refuses an unknown service for http, exec and tcp probes', () => {
    for (const p of [
      probe({ name: 'p1', http: { service: 'ghost', port: 80 } }),
      probe({ name: 'p2', exec: { service: 'ghost', command: ['true'] } }),
      probe({ name: 'p3', tcp: { service: 'ghost', port: 1 } }),
    ]) {
      const e = refusal([p], [...leases, lease('ghost', 80, 20003)]);
      expect(e.code).toBe('SANDSTACK_UNKNOWN_SERVICE');
      expect(e.message).toBe(`Probe "${p.name}" names service "ghost", which the compose project does not start.`);
      expect(e.hint).toContain('web, db, worker');
    }
  });

  it('refuses an unknown tcp `from` service', () => {
    const e = refusal([probe({ name: 'reach', tcp: { service: 'db', port: 5432, from: 'frontend' } })]);
    expect(e.code).toBe('SANDSTACK_UNKNOWN_SERVICE');
    expect(e.message).toContain('"frontend"');
  });

  it('checks every probe, not just the first', () => {
    const e = refusal([probe({ name: 'ok', command: { run: 'true' } }), probe({ name: 'bad', exec: { service: 'nope', command: ['x'] } })]);
    expect(e.message).toContain('Probe "bad"');
  });
});

describe('runProbe: command probes', () => {
  let dir: string;
  const timers: NodeJS.Timeout[] = [];

  beforeEach(async () => {
    dir = await realpath(await mkdtemp(path.join(os.tmpdir(), 'sandstack-probe-')));
  });
  afterEach(async () => {
    for (const t of timers.splice(0)) clearTimeout(t);
    await rm(dir, { recursive: true, force: true });
  });

  function env(over: Partial<ProbeEnv> = {}): ProbeEnv {
    return {
      docker: {} as Docker,
      instanceId: 'feat-a',
      leases: [],
      projectDir: dir,
      env: { PATH: process.env.PATH, SANDSTACK_INSTANCE: 'feat-a', SANDSTACK_WEB_PORT: '20001' },
      deadline: Date.now() + 60_000,
      ...over,
    };
  }

  it('passes at once on exit code 0 and reports the output', async () => {
    const r = await runProbe(probe({ name: 'hello', command: { run: 'echo hello; echo world' } }), env());
    expect(r).toMatchObject({ name: 'hello', kind: 'command', target: 'echo hello; echo world', passed: true, attempts: 1, observed: 'exit 0: hello | world' });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('retries until the command passes', async () => {
    const marker = path.join(dir, 'ready');
    timers.push(setTimeout(() => void writeFile(marker, 'x'), 700));
    const r = await runProbe(probe({ name: 'wait', timeoutSeconds: 5, command: { run: 'test -f ready' } }), env());
    expect(r.passed).toBe(true);
    expect(r.attempts).toBeGreaterThan(1);
    expect(r.observed).toBe('exit 0');
  });

  it('fails after its timeout with the last observed output', async () => {
    const run = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n failed" >&2; exit 3';
    const r = await runProbe(probe({ name: 'never', timeoutSeconds: 1, command: { run } }), env());
    expect(r.passed).toBe(false);
    // attempt at ~0 ms, 500 ms pause, attempt at ~500 ms, then the 1 s timeout is within 500 ms
    expect(r.attempts).toBeGreaterThanOrEqual(2);
    // attempts are at least 500 ms apart, so a 1 s timeout allows at most 3, however loaded the machine
    expect(r.attempts).toBeLessThanOrEqual(3);
    // the output of the last attempt, stderr included
    expect(r.observed).toBe(`exit 3: attempt ${r.attempts} failed`);
  });

  it('stops at the gate deadline even when timeoutSeconds is larger', async () => {
    const r = await runProbe(probe({ name: 'late', timeoutSeconds: 300, command: { run: 'exit 1' } }), env({ deadline: Date.now() + 800 }));
    expect(r.passed).toBe(false);
    expect(r.observed).toBe('exit 1');
    // attempts are at least 500 ms apart: an 800 ms deadline allows at most 3 (300 s would allow hundreds)
    expect(r.attempts).toBeLessThanOrEqual(3);
  });

  it('runs once when the deadline has already passed', async () => {
    const r = await runProbe(probe({ name: 'gone', command: { run: 'exit 4' } }), env({ deadline: Date.now() - 1000 }));
    expect(r).toMatchObject({ passed: false, attempts: 1, observed: 'exit 4' });
  });

  it('gets the SANDSTACK_* variables in its environment', async () => {
    const r = await runProbe(probe({ name: 'env', command: { run: 'echo "$SANDSTACK_INSTANCE:$SANDSTACK_WEB_PORT"; test "$SANDSTACK_WEB_PORT" = 20001' } }), env());
    expect(r.passed).toBe(true);
    expect(r.observed).toBe('exit 0: feat-a:20001');
  });

  it('runs in cwd relative to the project directory', async () => {
    await mkdir(path.join(dir, 'scripts'));
    const r = await runProbe(probe({ name: 'cwd', command: { run: 'pwd', cwd: 'scripts' } }), env());
    expect(r.observed).toBe(`exit 0: ${path.join(dir, 'scripts')}`);
  });

  it('keeps only the last 5 output lines', async () => {
    const r = await runProbe(probe({ name: 'long', command: { run: 'for i in 1 2 3 4 5 6 7; do echo line$i; done; exit 2' } }), env({ deadline: 0 }));
    expect(r.observed).toBe('exit 2: line3 | line4 | line5 | line6 | line7');
  });

  it('reports a command that hangs as timed out', async () => {
    const r = await runProbe(probe({ name: 'hang', timeoutSeconds: 1, command: { run: 'exec sleep 10' } }), env());
    expect(r.passed).toBe(false);
    expect(r.observed).toBe('timed out after 1000 ms');
  });

  it('throws SANDSTACK_INTERRUPTED when the signal is aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(runProbe(probe({ name: 'x', command: { run: 'true' } }), env({ signal: ac.signal }))).rejects.toMatchObject({
      code: 'SANDSTACK_INTERRUPTED',
    });
  });
});

describe('runProbes', () => {
  const env = (): ProbeEnv => ({ docker: {} as Docker, instanceId: 'feat-a', leases: [], projectDir: os.tmpdir(), env: { PATH: process.env.PATH }, deadline: Date.now() + 500 });

  it('returns every result when all pass', async () => {
    const rs = await runProbes([probe({ name: 'a', command: { run: 'true' } }), probe({ name: 'b', command: { run: 'echo b' } })], env());
    expect(rs.map((r) => [r.name, r.passed])).toEqual([
      ['a', true],
      ['b', true],
    ]);
  });

  it('throws SANDSTACK_PROBE_FAILED listing every result', async () => {
    let err: unknown;
    try {
      await runProbes(
        [probe({ name: 'good', command: { run: 'true' } }), probe({ name: 'bad', command: { run: 'echo nope; exit 7' } }), probe({ name: 'worse', command: { run: 'exit 9' } })],
        env(),
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SandstackError);
    const e = err as SandstackError;
    expect(e.code).toBe('SANDSTACK_PROBE_FAILED');
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe('2 of 3 probe(s) failed: bad (echo nope; exit 7): exit 7: nope; worse (exit 9): exit 9');
    const results = (e.details as { probes: ProbeResult[] }).probes;
    expect(results.map((r) => [r.name, r.passed, r.observed])).toEqual([
      ['good', true, 'exit 0'],
      ['bad', false, 'exit 7: nope'],
      ['worse', false, 'exit 9'],
    ]);
  });

  it('returns [] for no probes', async () => {
    expect(await runProbes([], env())).toEqual([]);
  });
});

describe('runProbe: http probes', () => {
  let server: http.Server;
  let hostPort: number;
  let hits: Record<string, number> = {};

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const url = req.url ?? '/';
      hits[url] = (hits[url] ?? 0) + 1;
      const send = (status: number, body: string, type = 'application/json') => {
        res.writeHead(status, { 'content-type': type });
        res.end(body);
      };
      if (url === '/health') return send(200, JSON.stringify({ status: 'ok', count: 2, workers: [{ name: 'w1' }, { name: 'w2' }], db: null }));
      if (url === '/broken') return send(500, 'Internal error: database down', 'text/plain');
      if (url === '/html') return send(200, '<html>hello</html>', 'text/html');
      if (url === '/created') return send(201, '');
      if (url === '/redirect') {
        res.writeHead(302, { location: '/health' });
        return res.end();
      }
      if (url === '/flaky') return hits[url]! >= 2 ? send(200, '{"ready":true}') : send(503, 'warming up', 'text/plain');
      return send(404, 'not found', 'text/plain');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hostPort = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  beforeEach(() => {
    hits = {};
  });

  function env(deadlineMs = 300): ProbeEnv {
    return { docker: {} as Docker, instanceId: 'feat-a', leases: [lease('web', 3000, hostPort)], projectDir: os.tmpdir(), env: {}, deadline: Date.now() + deadlineMs };
  }

  const httpProbe = (over: Record<string, unknown>, timeoutSeconds = 15) => probe({ name: 'api', timeoutSeconds, http: { service: 'web', port: 3000, ...over } });

  it('passes on the expected status with no assertions, using the leased host port', async () => {
    const r = await runProbe(httpProbe({ path: '/created', expectStatus: 201 }), env());
    expect(r).toMatchObject({ kind: 'http', target: 'GET web:3000/created', passed: true, attempts: 1, observed: 'HTTP 201' });
    expect(hits['/created']).toBe(1);
  });

  it('passes JSON assertions and shows the values', async () => {
    const r = await runProbe(
      httpProbe({ path: '/health', json: [{ path: 'status', equals: 'ok' }, { path: 'count', gte: 2 }, { path: 'workers.length', equals: 2 }, { path: 'db', exists: true }] }),
      env(),
    );
    expect(r.passed).toBe(true);
    expect(r.observed).toBe('HTTP 200; status = "ok", count = 2, workers.length = 2, db = null');
  });

  it('fails failed JSON assertions with the readable reasons', async () => {
    const r = await runProbe(httpProbe({ path: '/health', json: [{ path: 'count', gte: 3 }, { path: 'version', exists: true }] }), env());
    expect(r.passed).toBe(false);
    expect(r.observed).toBe('count is 2, expected >= 3; version is missing, expected it to exist');
  });

  it('fails on a status mismatch and shows the body', async () => {
    const r = await runProbe(httpProbe({ path: '/broken' }), env());
    expect(r.passed).toBe(false);
    expect(r.observed).toContain('HTTP 500');
    expect(r.observed).toContain(`http://127.0.0.1:${hostPort}/broken`);
    expect(r.observed).toContain('(expected 200)');
    expect(r.observed).toContain('database down');
  });

  it('fails when json assertions are given and the body is not JSON', async () => {
    const r = await runProbe(httpProbe({ path: '/html', json: [{ path: 'status', equals: 'ok' }] }), env());
    expect(r.passed).toBe(false);
    expect(r.observed).toBe('HTTP 200, but the body is not JSON: <html>hello</html>');
  });

  it('does not follow redirects', async () => {
    const r = await runProbe(httpProbe({ path: '/redirect', expectStatus: 302 }), env());
    expect(r.passed).toBe(true);
    expect(hits['/health']).toBeUndefined();
  });

  it('sends HEAD when asked', async () => {
    const r = await runProbe(httpProbe({ path: '/health', method: 'HEAD' }), env());
    expect(r).toMatchObject({ target: 'HEAD web:3000/health', passed: true });
  });

  it('retries a service that is warming up', async () => {
    const r = await runProbe(httpProbe({ path: '/flaky', json: [{ path: 'ready', equals: true }] }, 5), env(5000));
    expect(r.passed).toBe(true);
    expect(r.attempts).toBe(2);
    expect(hits['/flaky']).toBe(2);
  });

  it('reports a connection error with the URL', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const e = { ...env(), leases: [lease('web', 3000, deadPort)] };
    const r = await runProbe(httpProbe({ path: '/health' }), e);
    expect(r.passed).toBe(false);
    expect(r.observed.startsWith(`http://127.0.0.1:${deadPort}/health: `)).toBe(true);
  });
});
