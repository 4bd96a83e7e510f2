import { describe, expect, it } from 'vitest';
import { parseConfig, type ConfigProblem } from '../../src/config/load.js';
import { ProbeSchema } from '../../src/config/schema.js';
import { SandstackError } from '../../src/errors.js';

const FILE = '/proj/sandstack.yaml';

function probesOf(yaml: string) {
  return parseConfig(`gate:\n  probes:\n${yaml}`, FILE).gate.probes;
}

function configError(yaml: string): { message: string; problems: ConfigProblem[] } {
  try {
    parseConfig(`gate:\n  probes:\n${yaml}`, FILE);
  } catch (e) {
    expect(e).toBeInstanceOf(SandstackError);
    const err = e as SandstackError;
    expect(err.code).toBe('SANDSTACK_CONFIG_INVALID');
    return { message: err.message, problems: (err.details as { problems: ConfigProblem[] }).problems };
  }
  throw new Error('expected parseConfig to throw');
}

describe('gate probes in sandstack.yaml', () => {
  it('fills the probe defaults: timeoutSeconds 15, method GET, expectStatus 200, path /, json []', () => {
    expect(
      probesOf(`    - name: api
      http: { service: web, port: 3000 }
`),
    ).toEqual([{ name: 'api', timeoutSeconds: 15, http: { service: 'web', port: 3000, path: '/', method: 'GET', expectStatus: 200, json: [] } }]);
  });

  it('parses all four probe kinds with their options', () => {
    const probes = probesOf(`    - name: health
      timeoutSeconds: 60
      http:
        service: web
        port: 3000
        path: /health?full=1
        method: HEAD
        expectStatus: 204
        json:
          - { path: status, equals: ok }
          - { path: workers.length, gte: 1, lte: 8 }
          - { path: db, equals: null }
          - { path: ready, equals: true }
          - { path: error, exists: false }
    - name: psql
      exec: { service: db, command: [pg_isready, -U, app] }
    - name: redis-port
      tcp: { service: redis, port: 6379, from: web }
    - name: smoke.test_1
      command: { run: "curl -fsS http://127.0.0.1:$SANDSTACK_WEB_PORT/", cwd: scripts }
`);
    expect(probes).toHaveLength(4);
    expect(probes[0]).toEqual({
      name: 'health',
      timeoutSeconds: 60,
      http: {
        service: 'web',
        port: 3000,
        path: '/health?full=1',
        method: 'HEAD',
        expectStatus: 204,
        json: [
          { path: 'status', equals: 'ok' },
          { path: 'workers.length', gte: 1, lte: 8 },
          { path: 'db', equals: null },
          { path: 'ready', equals: true },
          { path: 'error', exists: false },
        ],
      },
    });
    expect(probes[1]).toEqual({ name: 'psql', timeoutSeconds: 15, exec: { service: 'db', command: ['pg_isready', '-U', 'app'] } });
    expect(probes[2]).toEqual({ name: 'redis-port', timeoutSeconds: 15, tcp: { service: 'redis', port: 6379, from: 'web' } });
    expect(probes[3]).toEqual({ name: 'smoke.test_1', timeoutSeconds: 15, command: { run: 'curl -fsS http://127.0.0.1:$SANDSTACK_WEB_PORT/', cwd: 'scripts' } });
  });

  it('refuses a probe with two kinds, at the probe position', () => {
    const e = configError(`    - name: both
      http: { service: web, port: 80 }
      exec: { service: web, command: ["true"] }
`);
    expect(e.problems).toEqual([{ file: FILE, line: 3, col: 7, path: 'gate.probes[0]', message: 'a probe has exactly one of http, exec, tcp, command' }]);
    expect(e.message).toContain(`${FILE}:3:7: gate.probes[0]: a probe has exactly one of http, exec, tcp, command`);
  });

  it('refuses a probe with no kind', () => {
    const e = configError(`    - name: ok
      command: { run: "true" }
    - name: none
      timeoutSeconds: 5
`);
    expect(e.problems).toEqual([{ file: FILE, line: 5, col: 7, path: 'gate.probes[1]', message: 'a probe has exactly one of http, exec, tcp, command' }]);
  });

  it('refuses a json assertion without an operator, with its line', () => {
    const e = configError(`    - name: js
      http:
        service: web
        port: 80
        json:
          - path: count
`);
    expect(e.problems).toHaveLength(1);
    expect(e.problems[0]).toMatchObject({ line: 8, path: 'gate.probes[0].http.json[0]', message: 'give at least one of equals, gte, lte, exists' });
    expect(e.message).toMatch(new RegExp(`${FILE}:8:\\d+: gate\\.probes\\[0\\]\\.http\\.json\\[0\\]`));
  });

  it('refuses an object as equals value', () => {
    const e = configError(`    - name: js
      http: { service: web, port: 80, json: [{ path: a, equals: { x: 1 } }] }
`);
    expect(e.problems[0]).toMatchObject({ line: 4, path: 'gate.probes[0].http.json[0].equals' });
  });

  it('reports bad field values each with file:line:col', () => {
    const e = configError(`    - name: bad name
      http: { service: web, port: 80, path: health, method: POST, expectStatus: 700 }
      timeoutSeconds: 0
`);
    const byPath = Object.fromEntries(e.problems.map((p) => [p.path, `${p.line}:${p.col}`]));
    expect(byPath).toEqual({
      'gate.probes[0].name': '3:13',
      'gate.probes[0].timeoutSeconds': '5:23',
      'gate.probes[0].http.path': '4:45',
      'gate.probes[0].http.method': '4:61',
      'gate.probes[0].http.expectStatus': '4:81',
    });
    expect(e.message).toContain(`${FILE}:4:45: gate.probes[0].http.path:`);
  });

  it('refuses timeoutSeconds above 600', () => {
    expect(configError(`    - { name: slow, timeoutSeconds: 601, command: { run: "true" } }\n`).problems[0]).toMatchObject({ path: 'gate.probes[0].timeoutSeconds', line: 3 });
  });

  it('refuses an empty exec command', () => {
    expect(configError(`    - { name: e, exec: { service: db, command: [] } }\n`).problems[0]).toMatchObject({ path: 'gate.probes[0].exec.command', line: 3 });
  });

  it('refuses an unknown key inside a probe kind, with its position', () => {
    const e = configError(`    - name: p
      tcp: { service: db, port: 5432, form: web }
`);
    expect(e.problems).toEqual([{ file: FILE, line: 4, col: 39, path: 'gate.probes[0].tcp.form', message: 'unknown key "form"' }]);
  });

  it('refuses an unknown key on the probe itself', () => {
    const e = configError(`    - name: p
      command: { run: "true" }
      retries: 3
`);
    expect(e.problems).toEqual([{ file: FILE, line: 5, col: 7, path: 'gate.probes[0].retries', message: 'unknown key "retries"' }]);
  });
});

describe('ProbeSchema', () => {
  it('accepts exactly one kind', () => {
    expect(ProbeSchema.safeParse({ name: 'x', command: { run: 'true' } }).success).toBe(true);
    expect(ProbeSchema.safeParse({ name: 'x', tcp: { service: 'db', port: 1 } }).success).toBe(true);
  });

  it('refuses zero or several kinds', () => {
    expect(ProbeSchema.safeParse({ name: 'x' }).success).toBe(false);
    expect(ProbeSchema.safeParse({ name: 'x', command: { run: 'true' }, tcp: { service: 'db', port: 1 } }).success).toBe(false);
    expect(
      ProbeSchema.safeParse({ name: 'x', http: { service: 'w', port: 1 }, exec: { service: 'w', command: ['a'] }, tcp: { service: 'w', port: 1 }, command: { run: 'a' } }).success,
    ).toBe(false);
  });

  it('needs an operator on each json assertion', () => {
    const base = { name: 'x', http: { service: 'w', port: 1 } };
    expect(ProbeSchema.safeParse({ ...base, http: { ...base.http, json: [{ path: 'a' }] } }).success).toBe(false);
    for (const op of [{ equals: 'ok' }, { equals: null }, { gte: 1 }, { lte: 1 }, { exists: false }]) {
      expect(ProbeSchema.safeParse({ ...base, http: { ...base.http, json: [{ path: 'a', ...op }] } }).success).toBe(true);
    }
  });

  it('refuses an empty path in a json assertion and an empty command', () => {
    expect(ProbeSchema.safeParse({ name: 'x', http: { service: 'w', port: 1, json: [{ path: '', exists: true }] } }).success).toBe(false);
    expect(ProbeSchema.safeParse({ name: 'x', command: { run: '' } }).success).toBe(false);
  });
});
