import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SandstackError } from '../../src/errors.js';
import { parseResolvedModel } from '../../src/compose/resolve.js';
import {
  findRepoRoot,
  lintComposeText,
  lintDotEnvFiles,
  lintDotEnvText,
  lintModel,
  lintOptionsFor,
  mergeFindings,
  MERGED_MODEL_FILE,
  summarize,
} from '../../src/policy/lint.js';
import { evaluate, parseDotEnv, RULES, splitShortPort, urlPasswords, type Finding, type SharedDataset } from '../../src/policy/rules.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'lint');
const OPTS = { projectDir: '/home/dev/shop', homeDir: '/home/dev' };

function fixture(name: string): string {
  return readFileSync(path.join(FIXTURES, name), 'utf8');
}

function lintFixture(name: string, opts = OPTS): Finding[] {
  return lintComposeText(fixture(name), name, opts);
}

/** The comparable core of a finding. */
function core(f: Finding) {
  return { ruleId: f.ruleId, service: f.service, subject: f.subject, line: f.line, column: f.column };
}

function only(findings: Finding[], ruleId: string) {
  return findings.filter((f) => f.ruleId === ruleId).map(core);
}

describe('rule catalogue', () => {
  it('has the stable ids, names, severities and render neutralisation', () => {
    expect(RULES.map((r) => [r.id, r.name, r.severity, r.neutralisedByRender])).toEqual([
      ['SS001', 'container-name', 'error', true],
      ['SS002', 'port-not-loopback', 'error', true],
      ['SS003', 'fixed-host-port', 'warning', true],
      ['SS004', 'docker-socket', 'error', false],
      ['SS005', 'privileged', 'error', false],
      ['SS006', 'dangerous-capability', 'error', false],
      ['SS007', 'host-namespace', 'error', false],
      ['SS008', 'broad-host-mount', 'error', false],
      ['SS009', 'external-resource', 'warning', true],
      ['SS010', 'secret-literal', 'error', false],
      ['SS011', 'anonymous-admin', 'error', false],
      ['SS012', 'security-opt-disabled', 'error', false],
      ['SS013', 'unpinned-image', 'warning', false],
      ['SS014', 'host-system-mount', 'error', false],
      ['SS015', 'host-path-mount', 'warning', false],
      ['SS016', 'password-in-url', 'error', false],
      ['SS017', 'dotenv-secret', 'warning', false],
      ['SS018', 'fixed-address', 'warning', true],
      ['SS019', 'shared-data-mode', 'error', true],
    ]);
    for (const r of RULES) {
      expect(r.description.length).toBeGreaterThan(20);
      expect(r.fix.length).toBeGreaterThan(10);
    }
  });
});

describe('lintComposeText: one fixture per rule', () => {
  it('SS001 container-name: block and flow services; a commented-out one is not a finding', () => {
    const findings = lintFixture('ss001-container-name.yaml');
    expect(only(findings, 'SS001')).toEqual([
      { ruleId: 'SS001', service: 'web', subject: 'shop-web', line: 5, column: 5 },
      { ruleId: 'SS001', service: 'cache', subject: 'shop-cache', line: 9, column: 32 },
    ]);
    const f = findings.find((x) => x.ruleId === 'SS001')!;
    expect(f).toMatchObject({ rule: 'container-name', severity: 'error', neutralisedByRender: true, file: 'ss001-container-name.yaml' });
    expect(f.message).toBe('service web has the fixed container_name "shop-web": a second instance of the stack cannot create it');
    expect(f.fix).toContain('remove the container_name line');
  });

  it('SS002 port-not-loopback: no address, 0.0.0.0, ::, another address; loopback (127.0.0.1, ::1) is fine', () => {
    const findings = lintFixture('ss002-port-not-loopback.yaml');
    expect(only(findings, 'SS002')).toEqual([
      { ruleId: 'SS002', service: 'api', subject: '0.0.0.0:8000:8000', line: 6, column: 9 },
      { ruleId: 'SS002', service: 'api', subject: '9000', line: 7, column: 9 },
      { ruleId: 'SS002', service: 'dns', subject: '[::]:5353:53/udp', line: 12, column: 9 },
      { ruleId: 'SS002', service: 'lan', subject: '192.168.1.10:8080:80', line: 19, column: 9 },
    ]);
    // Every host port in this fixture is parameterised: no SS003.
    expect(only(findings, 'SS003')).toEqual([]);
    const api = findings.find((f) => f.subject === '0.0.0.0:8000:8000')!;
    expect(api.message).toBe('service api publishes 0.0.0.0:${API_PORT:-8000}:8000 on all addresses (0.0.0.0)');
    expect(api.fix).toBe('bind it to 127.0.0.1: "127.0.0.1:${API_PORT:-8000}:8000"');
    expect(findings.find((f) => f.subject === '9000')!.fix).toContain('"127.0.0.1::9000"');
    expect(findings.find((f) => f.service === 'lan')!.message).toContain('on 192.168.1.10, not on loopback');
  });

  it('SS003 fixed-host-port: literal host ports (short and long syntax), not ${VAR}-parameterised or ephemeral ones', () => {
    const findings = lintFixture('ss003-fixed-host-port.yaml');
    expect(only(findings, 'SS003')).toEqual([
      { ruleId: 'SS003', service: 'db', subject: '127.0.0.1:5432:5432', line: 6, column: 9 },
      { ruleId: 'SS003', service: 'web', subject: '127.0.0.1:8080:80', line: 14, column: 9 },
    ]);
    expect(only(findings, 'SS002')).toEqual([]);
    const db = findings.find((f) => f.service === 'db')!;
    expect(db).toMatchObject({ severity: 'warning', neutralisedByRender: true });
    expect(db.fix).toContain('"127.0.0.1:${DB_PORT:-5432}:5432"');
    expect(findings.find((f) => f.service === 'web')!.fix).toContain('published: "${WEB_PORT:-8080}"');
  });

  it('SS004 docker-socket: short and long syntax; a named volume at the socket path is fine', () => {
    const findings = lintFixture('ss004-docker-socket.yaml');
    expect(only(findings, 'SS004')).toEqual([
      { ruleId: 'SS004', service: 'agent', subject: '/var/run/docker.sock', line: 6, column: 9 },
      { ruleId: 'SS004', service: 'watcher', subject: '/run/docker.sock', line: 12, column: 9 },
    ]);
    expect(findings.every((f) => f.service !== 'app')).toBe(true);
  });

  it('SS005 privileged: true only', () => {
    expect(only(lintFixture('ss005-privileged.yaml'), 'SS005')).toEqual([
      { ruleId: 'SS005', service: 'dind', subject: 'privileged', line: 5, column: 5 },
    ]);
  });

  it('SS006 dangerous-capability: any case, with or without CAP_; harmless capabilities are fine', () => {
    expect(only(lintFixture('ss006-dangerous-capability.yaml'), 'SS006')).toEqual([
      { ruleId: 'SS006', service: 'vpn', subject: 'NET_ADMIN', line: 6, column: 9 },
      { ruleId: 'SS006', service: 'vpn', subject: 'SYS_MODULE', line: 7, column: 9 },
      { ruleId: 'SS006', service: 'debug', subject: 'SYS_PTRACE', line: 11, column: 15 },
    ]);
  });

  it('SS007 host-namespace: network_mode, pid, ipc, uts, userns_mode host; service: and shareable are fine', () => {
    expect(only(lintFixture('ss007-host-namespace.yaml'), 'SS007')).toEqual([
      { ruleId: 'SS007', service: 'exporter', subject: 'network_mode: host', line: 5, column: 5 },
      { ruleId: 'SS007', service: 'exporter', subject: 'pid: host', line: 6, column: 5 },
      { ruleId: 'SS007', service: 'tools', subject: 'ipc: host', line: 13, column: 5 },
      { ruleId: 'SS007', service: 'tools', subject: 'uts: host', line: 14, column: 5 },
      { ruleId: 'SS007', service: 'tools', subject: 'userns_mode: host', line: 15, column: 5 },
    ]);
  });

  it('SS008 broad-host-mount: /, ~, .. escaping the project, /var/lib/docker; narrow, project and named mounts are fine', () => {
    const findings = lintFixture('ss008-broad-host-mount.yaml');
    expect(only(findings, 'SS008')).toEqual([
      { ruleId: 'SS008', service: 'backup', subject: '/', line: 6, column: 9 },
      { ruleId: 'SS008', service: 'backup', subject: '/home/dev', line: 7, column: 9 },
      { ruleId: 'SS008', service: 'backup', subject: '/home/dev', line: 8, column: 9 },
      { ruleId: 'SS008', service: 'cadvisor', subject: '/var/lib/docker', line: 17, column: 9 },
      { ruleId: 'SS008', service: 'cadvisor', subject: '/home/dev/other-project/config', line: 21, column: 9 },
    ]);
    expect(findings.find((f) => f.line === 21)!.message).toContain('escapes with ..');
    expect(findings.find((f) => f.line === 7)!.message).toContain('your home folder');
  });

  it('SS008: a parent of the home folder, a parent of the project, and the project itself', () => {
    const text = [
      'services:',
      '  a:',
      '    image: busybox:1.36',
      '    volumes:',
      '      - /data/users:/users',
      '      - ..:/up',
      '      - .:/src',
      '      - /srv/shop/sub:/sub',
      '      - /opt/tools:/tools:ro',
    ].join('\n');
    const findings = lintComposeText(text, 'c.yaml', { projectDir: '/srv/shop', homeDir: '/data/users/dev' });
    expect(findings.map(core)).toEqual([
      { ruleId: 'SS008', service: 'a', subject: '/data/users', line: 5, column: 9 },
      { ruleId: 'SS008', service: 'a', subject: '/srv', line: 6, column: 9 },
      { ruleId: 'SS015', service: 'a', subject: '/opt/tools', line: 9, column: 9 },
    ]);
    expect(findings[0]!.message).toContain('a parent of your home folder');
  });

  it('SS009 external-resource: external: true and external: {name}; external: false is fine', () => {
    const findings = lintFixture('ss009-external-resource.yaml');
    expect(only(findings, 'SS009')).toEqual([
      { ruleId: 'SS009', service: undefined, subject: 'volumes.shared-cache', line: 9, column: 5 },
      { ruleId: 'SS009', service: undefined, subject: 'volumes.legacy', line: 12, column: 5 },
      { ruleId: 'SS009', service: undefined, subject: 'networks.proxy', line: 16, column: 5 },
    ]);
    expect(findings.find((f) => f.subject === 'networks.proxy')!.message).toBe(
      'network proxy (traefik_proxy) is external: every instance of the stack shares it',
    );
  });

  it('SS010 secret-literal: literal values and ${VAR:-literal} defaults of secret names, key formats anywhere', () => {
    const findings = lintFixture('ss010-secret-literal.yaml');
    expect(only(findings, 'SS010')).toEqual([
      { ruleId: 'SS010', service: 'db', subject: 'POSTGRES_PASSWORD', line: 7, column: 7 },
      { ruleId: 'SS010', service: 'api', subject: 'JWT_SECRET', line: 12, column: 9 },
      { ruleId: 'SS010', service: 'api', subject: 'AWS_ACCESS_KEY_ID', line: 15, column: 9 },
      { ruleId: 'SS010', service: 'worker', subject: 'NOTES', line: 21, column: 7 },
    ]);
    // The secret values never appear in findings.
    const json = JSON.stringify(findings);
    for (const secret of ['hunter2', 'dev-secret', 'AKIAIOSFODNN7EXAMPLE', 'OPENSSH']) expect(json).not.toContain(secret);
    expect(findings.find((f) => f.subject === 'AWS_ACCESS_KEY_ID')!.message).toContain('an AWS access key id');
    expect(findings.find((f) => f.subject === 'JWT_SECRET')!.message).toContain('literal default');
  });

  it('SS010: GitHub, Slack, Stripe and Google key formats in any variable', () => {
    const values = {
      A: `ghp_${'a1B2'.repeat(9)}`,
      B: `xoxb-${'1234567890'}-abcdef`,
      C: `sk_live_${'Ab3'.repeat(6)}`,
      D: `AIza${'Xy_-9'.repeat(7)}`,
      E: 'plain text',
    };
    const text = `services:\n  s:\n    image: busybox:1.36\n    environment:\n${Object.entries(values)
      .map(([k, v]) => `      ${k}: "${v}"`)
      .join('\n')}\n`;
    const findings = lintComposeText(text, 'c.yaml', OPTS);
    expect(findings.map((f) => [f.subject, f.message.replace(/^service s: the value of \w+ contains /, '')])).toEqual([
      ['A', 'a GitHub token'],
      ['B', 'a Slack token'],
      ['C', 'a Stripe live secret key'],
      ['D', 'a Google API key'],
    ]);
    const json = JSON.stringify(findings);
    for (const v of Object.values(values)) expect(json).not.toContain(v);
  });

  it('SS011 anonymous-admin: Admin role with anonymous on, or login form off; Viewer or anonymous off are fine', () => {
    expect(only(lintFixture('ss011-anonymous-admin.yaml'), 'SS011')).toEqual([
      { ruleId: 'SS011', service: 'grafana', subject: 'GF_AUTH_ANONYMOUS_ORG_ROLE', line: 7, column: 7 },
      { ruleId: 'SS011', service: 'grafana', subject: 'GF_AUTH_DISABLE_LOGIN_FORM', line: 8, column: 7 },
    ]);
  });

  it('SS012 security-opt-disabled: unconfined seccomp/apparmor, label disable; other options are fine', () => {
    expect(only(lintFixture('ss012-security-opt-disabled.yaml'), 'SS012')).toEqual([
      { ruleId: 'SS012', service: 'app', subject: 'seccomp:unconfined', line: 6, column: 9 },
      { ruleId: 'SS012', service: 'app', subject: 'apparmor:unconfined', line: 7, column: 9 },
      { ruleId: 'SS012', service: 'legacy', subject: 'label:disable', line: 11, column: 20 },
    ]);
  });

  it('SS013 unpinned-image: no tag or latest; tags, digests, a registry port and built images are fine', () => {
    expect(only(lintFixture('ss013-unpinned-image.yaml'), 'SS013')).toEqual([
      { ruleId: 'SS013', service: 'cache', subject: 'redis', line: 4, column: 5 },
      { ruleId: 'SS013', service: 'proxy', subject: 'traefik:latest', line: 6, column: 5 },
      { ruleId: 'SS013', service: 'registry-app', subject: 'registry.local:5000/team/app', line: 8, column: 5 },
    ]);
  });

  it('a clean compose file has no findings', () => {
    expect(lintFixture('clean.yaml')).toEqual([]);
  });
});

describe('lintComposeText: the realistic messy file', () => {
  const text = fixture('messy.compose.yaml');
  const lines = text.split('\n');
  /** Line of the first line containing `lineMarker`, column of `colMarker` on it (1-based). */
  const at = (lineMarker: string, colMarker: string) => {
    const i = lines.findIndex((l) => l.includes(lineMarker));
    expect(i, lineMarker).toBeGreaterThanOrEqual(0);
    const col = lines[i]!.indexOf(colMarker);
    expect(col, colMarker).toBeGreaterThanOrEqual(0);
    return { line: i + 1, column: col + 1 };
  };
  const both = (service: string, subject: string, p: { line: number; column: number }) => [
    { ruleId: 'SS002', service, subject, ...p },
    { ruleId: 'SS003', service, subject, ...p },
  ];

  it('gives exactly the expected findings', () => {
    const findings = lintComposeText(text, 'messy.compose.yaml', OPTS);
    const expected = [
      { ruleId: 'SS001', service: 'db', subject: 'shop-db', ...at('container_name: shop-db  #', 'container_name') },
      { ruleId: 'SS010', service: 'db', subject: 'POSTGRES_PASSWORD', ...at('POSTGRES_PASSWORD: ${', 'POSTGRES_PASSWORD') },
      ...both('db', '5432:5432', at('"5432:5432"', '"5432')),
      ...both('backend', '8000:8000', at('ports: ["8000:8000"', '"8000')),
      { ruleId: 'SS001', service: 'cache', subject: 'shop-cache', ...at('cache: {', 'container_name') },
      ...both('cache', '6379:6379', at('cache: {', '"6379')),
      { ruleId: 'SS013', service: 'adminer', subject: 'adminer', ...at('image: adminer', 'image') },
      ...both('mail-catcher', '1025:1025', at('- 1025:1025', '1025')),
      ...both('mail-catcher', '0.0.0.0:8025:8025', at('- 0.0.0.0:8025:8025', '0.0.0.0')),
      ...both('dns', '5353:53/udp', at("'5353:53/udp'", "'5353")),
      { ruleId: 'SS011', service: 'grafana', subject: 'GF_AUTH_ANONYMOUS_ORG_ROLE', ...at('ORG_ROLE=Admin', 'GF_AUTH_ANONYMOUS_ORG_ROLE') },
      { ruleId: 'SS004', service: 'grafana', subject: '/var/run/docker.sock', ...at('source: /var/run/docker.sock', 'source') },
      { ruleId: 'SS009', service: undefined, subject: 'volumes.shared-models', ...at('external: true   # SS009', 'external') },
    ];
    expect(findings.map(core)).toEqual(expected);
  });

  it('writes specific messages and fixes with the variable names the fixer uses', () => {
    const findings = lintComposeText(text, 'messy.compose.yaml', OPTS);
    const backend = findings.find((f) => f.ruleId === 'SS002' && f.service === 'backend')!;
    expect(backend.message).toBe('service backend publishes 8000:8000 on all addresses');
    expect(backend.fix).toBe('bind it to 127.0.0.1: "127.0.0.1:${BACKEND_PORT:-8000}:8000"');
    const mail = findings.filter((f) => f.ruleId === 'SS003' && f.service === 'mail-catcher').map((f) => f.fix);
    expect(mail[0]).toContain('"127.0.0.1:${MAIL_CATCHER_PORT:-1025}:1025"');
    expect(mail[1]).toContain('"127.0.0.1:${MAIL_CATCHER_8025_PORT:-8025}:8025"');
    expect(findings.find((f) => f.service === 'dns')!.fix).toContain('"127.0.0.1:${DNS_PORT:-5353}:53/udp"');
  });

  it('summarize counts by severity, rule and service', () => {
    const s = summarize(lintComposeText(text, 'messy.compose.yaml', OPTS));
    expect(s).toMatchObject({ total: 19, errors: 11, warnings: 8, neutralisedByRender: 15, blocking: 3 });
    expect(s.byRule).toEqual({ SS001: 2, SS002: 6, SS003: 6, SS004: 1, SS009: 1, SS010: 1, SS011: 1, SS013: 1 });
    expect(s.byService['mail-catcher']).toBe(4);
    expect(s.byService['(top level)']).toBe(1);
    expect(s.text).toBe("19 findings: 11 errors, 8 warnings (15 neutralised by sandstack's rendering)");
    expect(summarize([]).text).toBe('no findings');
  });
});

describe('lintComposeText: YAML structure', () => {
  it('resolves merge keys like Compose: explicit keys win, earlier merge sources win; positions point into the anchor', () => {
    const text = [
      'x-base: &base', // 1
      '  privileged: true', // 2
      '  container_name: base', // 3
      'x-extra: &extra', // 4
      '  cap_add: [SYS_ADMIN]', // 5
      '  privileged: false', // 6
      'services:', // 7
      '  a:', // 8
      '    <<: *base', // 9
      '    image: busybox:1.36', // 10
      '    privileged: false', // 11
      '  b:', // 12
      '    privileged: false', // 13
      '    <<: *base', // 14
      '    image: busybox:1.36', // 15
      '  c:', // 16
      '    <<: [*extra, *base]', // 17
      '    image: busybox:1.36', // 18
      '  d:', // 19
      '    <<: [*base, *extra]', // 20
      '    image: busybox:1.36', // 21
    ].join('\n');
    const findings = lintComposeText(text, 'c.yaml', OPTS).map(core);
    expect(findings).toEqual([
      { ruleId: 'SS005', service: 'd', subject: 'privileged', line: 2, column: 3 },
      { ruleId: 'SS001', service: 'a', subject: 'base', line: 3, column: 3 },
      { ruleId: 'SS001', service: 'b', subject: 'base', line: 3, column: 3 },
      { ruleId: 'SS001', service: 'c', subject: 'base', line: 3, column: 3 },
      { ruleId: 'SS001', service: 'd', subject: 'base', line: 3, column: 3 },
      { ruleId: 'SS006', service: 'c', subject: 'SYS_ADMIN', line: 5, column: 13 },
      { ruleId: 'SS006', service: 'd', subject: 'SYS_ADMIN', line: 5, column: 13 },
    ]);
  });

  it('handles aliases of whole values and flow-style services', () => {
    const text = [
      'x-caps: &caps [NET_ADMIN]',
      'services:',
      '  a: {image: "busybox:1.36", cap_add: *caps, ports: ["80:80"]}',
      '  b:',
      '    image: busybox:1.36',
      '    cap_add: *caps',
    ].join('\n');
    expect(lintComposeText(text, 'c.yaml', OPTS).map(core)).toEqual([
      { ruleId: 'SS006', service: 'a', subject: 'NET_ADMIN', line: 1, column: 16 },
      { ruleId: 'SS006', service: 'b', subject: 'NET_ADMIN', line: 1, column: 16 },
      { ruleId: 'SS002', service: 'a', subject: '80:80', line: 3, column: 54 },
      { ruleId: 'SS003', service: 'a', subject: '80:80', line: 3, column: 54 },
    ]);
  });

  it('chooses port variable names that are not in use yet', () => {
    const text = [
      'services:',
      '  web:',
      '    image: nginx:1.27',
      '    ports:',
      '      - "127.0.0.1:${WEB_PORT:-80}:80"',
      '      - "8443:443"',
    ].join('\n');
    const f = lintComposeText(text, 'c.yaml', OPTS).find((x) => x.ruleId === 'SS002')!;
    expect(f.fix).toBe('bind it to 127.0.0.1: "127.0.0.1:${WEB_443_PORT:-8443}:443"');
  });

  it('returns no findings for files that are not a mapping or have no services', () => {
    for (const text of ['', '# only a comment\n', '- a\n- b\n', 'just a string\n', 'version: "3.9"\n', 'services: []\n', 'volumes:\n  x: {external: true}\n']) {
      expect(lintComposeText(text, 'c.yaml', OPTS)).toEqual([]);
    }
  });

  it('throws SANDSTACK_COMPOSE_INVALID naming file:line:col for a syntax error', () => {
    const text = 'services:\n  a:\n    image: [busybox\n    ports: ["80:80"\n';
    let err: unknown;
    try {
      lintComposeText(text, 'compose.yaml', OPTS);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SandstackError);
    expect((err as SandstackError).code).toBe('SANDSTACK_COMPOSE_INVALID');
    expect((err as SandstackError).message).toMatch(/compose\.yaml:\d+:\d+: /);
  });

  it('throws SANDSTACK_COMPOSE_INVALID for duplicate keys and for an alias without an anchor', () => {
    expect(() => lintComposeText('services:\n  a:\n    image: x:1\n    image: y:1\n', 'compose.yaml', OPTS)).toThrow(/compose\.yaml:4:5/);
    try {
      lintComposeText('services:\n  a:\n    <<: *nope\n    image: x:1\n', 'compose.yaml', OPTS);
      expect.unreachable();
    } catch (e) {
      expect((e as SandstackError).code).toBe('SANDSTACK_COMPOSE_INVALID');
      expect((e as SandstackError).message).toMatch(/compose\.yaml:3:\d+/);
    }
  });
});

describe('interpolation helpers', () => {
  it('evaluates with every variable unset', () => {
    expect(evaluate('${A:-${B:-x}}y')).toEqual({ value: 'xy', unknown: false, parameterised: true });
    expect(evaluate('${A}')).toEqual({ value: '', unknown: true, parameterised: true });
    expect(evaluate('${A:?required}')).toMatchObject({ unknown: true });
    expect(evaluate('$$HOME and $B')).toEqual({ value: '$HOME and ', unknown: true, parameterised: true });
    expect(evaluate('8000')).toEqual({ value: '8000', unknown: false, parameterised: false });
  });

  it('splits short port specs around interpolation and IPv6 brackets', () => {
    expect(splitShortPort('127.0.0.1:${API_PORT:-8000}:8000')).toEqual({ ip: '127.0.0.1', published: '${API_PORT:-8000}', target: '8000', proto: undefined });
    expect(splitShortPort('[::1]:80:80/udp')).toEqual({ ip: '::1', published: '80', target: '80', proto: 'udp' });
    expect(splitShortPort('${P:-8000}:8000')).toEqual({ published: '${P:-8000}', target: '8000', proto: undefined });
    expect(splitShortPort('53/udp')).toEqual({ target: '53', proto: 'udp' });
    expect(splitShortPort('1:2:3:4')).toBeUndefined();
  });
});

const MERGED = `
name: shop
services:
  db:
    container_name: shop-db
    environment:
      POSTGRES_PASSWORD: changeme
      POSTGRES_USER: shop
    image: postgres:16.4
    networks:
      default: null
    ports:
      - mode: ingress
        target: 5432
        published: "5432"
        protocol: tcp
    volumes:
      - type: bind
        source: /home/dev/shop/db/init.sql
        target: /docker-entrypoint-initdb.d/init.sql
        read_only: true
        bind:
          create_host_path: true
  extra:
    image: busybox
    privileged: true
    network_mode: host
    environment:
      - API_TOKEN=abc123
      - NOTE=AKIAIOSFODNN7EXAMPLE
    volumes:
      - type: bind
        source: /var/run/docker.sock
        target: /var/run/docker.sock
      - type: bind
        source: /home/dev
        target: /h
    ports:
      - mode: ingress
        host_ip: 127.0.0.1
        target: 80
        published: "8080"
        protocol: tcp
networks:
  default:
    name: shop_default
volumes:
  models:
    name: models
    external: true
`;

describe('lintModel', () => {
  const model = parseResolvedModel(MERGED);

  it('checks the merged model without positions and without SS003', () => {
    const findings = lintModel(model, OPTS);
    expect(findings.every((f) => f.file === MERGED_MODEL_FILE && f.line === undefined && f.column === undefined)).toBe(true);
    expect(findings.map((f) => [f.ruleId, f.service, f.subject])).toEqual([
      ['SS001', 'db', 'shop-db'],
      ['SS002', 'db', '5432:5432'],
      ['SS010', 'db', 'POSTGRES_PASSWORD'],
      ['SS004', 'extra', '/var/run/docker.sock'],
      ['SS005', 'extra', 'privileged'],
      ['SS007', 'extra', 'network_mode: host'],
      ['SS008', 'extra', '/home/dev'],
      ['SS010', 'extra', 'API_TOKEN'],
      ['SS010', 'extra', 'NOTE'],
      ['SS013', 'extra', 'busybox'],
      ['SS009', undefined, 'volumes.models'],
    ]);
    expect(JSON.stringify(findings)).not.toContain('changeme');
  });

  it('with interpolated: true, checks only key formats for SS010 (values may come from .env)', () => {
    const ss010 = lintModel(model, { ...OPTS, interpolated: true }).filter((f) => f.ruleId === 'SS010');
    expect(ss010.map((f) => [f.service, f.subject])).toEqual([['extra', 'NOTE']]);
  });

  it('mergeFindings keeps the written findings and adds merged-only ones once', () => {
    const written = lintComposeText(fixture('messy.compose.yaml'), 'messy.compose.yaml', OPTS);
    const merged = lintModel(model, OPTS);
    const all = mergeFindings(written, [...merged, ...merged]);
    expect(all.slice(0, written.length)).toEqual(written);
    const added = all.slice(written.length);
    // db's container_name, port and password are already known from the file as written.
    expect(added.map((f) => [f.ruleId, f.service, f.subject])).toEqual([
      ['SS004', 'extra', '/var/run/docker.sock'],
      ['SS005', 'extra', 'privileged'],
      ['SS007', 'extra', 'network_mode: host'],
      ['SS008', 'extra', '/home/dev'],
      ['SS010', 'extra', 'API_TOKEN'],
      ['SS010', 'extra', 'NOTE'],
      ['SS013', 'extra', 'busybox'],
      ['SS009', undefined, 'volumes.models'],
    ]);
    expect(added.every((f) => f.file === MERGED_MODEL_FILE)).toBe(true);
  });
});

describe('host paths, URL passwords, .env, fixed addresses, shared data (issue 10)', () => {
  it('SS014 host-system-mount: /lib/modules, /etc/<file>, ~/.ssh, /var/lib/<x>, /sys/<x>, read-only or not; time zone read-only is SS015', () => {
    const findings = lintFixture('ss014-host-system-mount.yaml');
    expect(only(findings, 'SS014')).toEqual([
      { ruleId: 'SS014', service: 'vpn', subject: '/lib/modules', line: 6, column: 9 },
      { ruleId: 'SS014', service: 'vpn', subject: '/etc/wireguard/wg0.conf', line: 7, column: 9 },
      { ruleId: 'SS014', service: 'deployer', subject: '/home/dev/.ssh', line: 12, column: 9 },
      { ruleId: 'SS014', service: 'deployer', subject: '/var/lib/postgresql/16/main', line: 14, column: 9 },
      { ruleId: 'SS014', service: 'deployer', subject: '/sys/fs/cgroup', line: 17, column: 9 },
    ]);
    expect(only(findings, 'SS015')).toEqual([
      { ruleId: 'SS015', service: 'vpn', subject: '/etc/localtime', line: 8, column: 9 },
      { ruleId: 'SS015', service: 'deployer', subject: '/usr/share/zoneinfo', line: 18, column: 9 },
    ]);
    expect(findings.filter((f) => !['SS014', 'SS015'].includes(f.ruleId))).toEqual([]);
    const mod = findings.find((f) => f.subject === '/lib/modules')!;
    expect(mod).toMatchObject({ severity: 'error', neutralisedByRender: false, file: 'ss014-host-system-mount.yaml' });
    expect(mod.message).toBe('service vpn bind-mounts /lib/modules, a host system path (under /lib), even read-only');
    expect(findings.find((f) => f.line === 12)!.message).toContain('your credentials (~/.ssh)');
    expect(summarize(findings).blocking).toBe(5);
  });

  it('SS014: the same /etc file mounted read-write is an error, and /etc/localtime too', () => {
    const text = 'services:\n  a:\n    image: busybox:1.36\n    volumes:\n      - /etc/localtime:/etc/localtime\n      - /etc/hosts:/etc/hosts:ro\n';
    expect(lintComposeText(text, 'c.yaml', OPTS).map(core)).toEqual([
      { ruleId: 'SS014', service: 'a', subject: '/etc/localtime', line: 5, column: 9 },
      { ruleId: 'SS014', service: 'a', subject: '/etc/hosts', line: 6, column: 9 },
    ]);
  });

  it('SS015 host-path-mount: absolute host paths outside the project (short, long, bind volume), a data.shared hint in the fix', () => {
    const findings = lintFixture('ss015-host-path-mount.yaml');
    expect(findings.map(core)).toEqual([
      { ruleId: 'SS015', service: 'backtest', subject: '/mnt/datasets/ohlc', line: 6, column: 9 },
      { ruleId: 'SS015', service: 'backtest', subject: '/srv/models', line: 7, column: 9 },
      { ruleId: 'SS015', service: 'backtest', subject: '/home/dev/datasets/ticks', line: 8, column: 9 },
      { ruleId: 'SS015', service: 'backtest', subject: '/opt/vendor/feeds', line: 11, column: 9 },
      { ruleId: 'SS015', service: 'cleaner', subject: '/tmp/shop-scratch', line: 16, column: 9 },
      { ruleId: 'SS015', service: 'cleaner', subject: '/mnt/archive/shop', line: 24, column: 7 },
    ]);
    expect(findings.every((f) => f.severity === 'warning')).toBe(true);
    const ohlc = findings[0]!;
    expect(ohlc.message).toBe('service backtest bind-mounts /mnt/datasets/ohlc, a host path outside the project, shared by every instance of the stack');
    expect(ohlc.fix).toContain('data: { shared: [ { name: <name>, host: /mnt/datasets/ohlc, services: [backtest], target: /data/ohlc } ] }');
    expect(findings[1]!.fix).toContain('target: /models, mode: rw, reason: "…"');
    expect(findings[5]!.message).toContain('service cleaner mounts volume archive, which binds the host path /mnt/archive/shop (driver_opts o: bind)');
  });

  it('SS016 password-in-url: environment, command, healthcheck, build args; not ${VAR} or empty passwords', () => {
    const findings = lintFixture('ss016-password-in-url.yaml');
    const lines = fixture('ss016-password-in-url.yaml').split('\n');
    const col = (line: number, marker: string) => lines[line - 1]!.indexOf(marker) + 1;
    expect(only(findings, 'SS016')).toEqual([
      { ruleId: 'SS016', service: 'api', subject: 'DATABASE_URL', line: 6, column: 7 },
      { ruleId: 'SS016', service: 'api', subject: 'REPLICA_URL', line: 8, column: 7 },
      { ruleId: 'SS016', service: 'api', subject: 'command', line: 11, column: col(11, '"amqp') },
      { ruleId: 'SS016', service: 'api', subject: 'healthcheck.test', line: 13, column: col(13, '"http:') },
      { ruleId: 'SS016', service: 'worker', subject: 'build.args.PIP_INDEX_URL', line: 18, column: 11 },
      { ruleId: 'SS016', service: 'worker', subject: 'PG_DSN', line: 22, column: 9 },
    ]);
    expect(findings.filter((f) => f.ruleId !== 'SS016')).toEqual([]);
    const db = findings[0]!;
    expect(db).toMatchObject({ severity: 'error', neutralisedByRender: false });
    expect(db.message).toBe('service api: DATABASE_URL contains a URL with a literal password (mysql://root:***@db)');
    expect(db.fix).toContain('mysql://user:${DB_PASSWORD}@host');
    expect(findings[3]!.message).toContain('the healthcheck contains a URL with a literal password (http://admin:***@localhost)');
    const json = JSON.stringify(findings);
    for (const secret of [':secret@', 'guest:guest', 'admin123', 's3cr3t-token', 'readonly', 'u:p@']) expect(json).not.toContain(secret);
  });

  it('urlPasswords: literal, default and empty passwords; references', () => {
    expect(urlPasswords('postgres://u:p@h:5432/d', true).map((u) => u.shown)).toEqual(['postgres://u:***@h']);
    expect(urlPasswords('amqp://guest:guest@rabbit', true).map((u) => u.shown)).toEqual(['amqp://guest:***@rabbit']);
    expect(urlPasswords('postgres://${DB_USER}:${DB_PASSWORD}@db/app', true)).toEqual([]);
    expect(urlPasswords('postgres://app:${DB_PASSWORD:?required}@db/app', true)).toEqual([]);
    expect(urlPasswords('postgres://app:${DB_PASSWORD:-}@db/app', true)).toEqual([]);
    expect(urlPasswords('postgres://app:@db/app', true)).toEqual([]);
    expect(urlPasswords('postgres://app@db/app', true)).toEqual([]);
    expect(urlPasswords('${DATABASE_URL:-postgres://app:pw@db/app}', true).map((u) => u.shown)).toEqual(['postgres://app:***@db']);
    expect(urlPasswords('https://example.com:8443/a@b', true)).toEqual([]);
    // The merged model's values are taken as they are ($ is not interpolation any more).
    expect(urlPasswords('postgres://app:${X}@db', false).map((u) => u.shown)).toEqual(['postgres://app:***@db']);
  });

  it('SS016 in the merged model: checked when not interpolated, skipped when it is (values may come from .env)', () => {
    const model = parseResolvedModel('services:\n  api:\n    image: x:1\n    environment:\n      DATABASE_URL: postgres://app:pw@db/app\n    command: [run, "amqp://g:g@rabbit"]\n');
    expect(lintModel(model, OPTS).map((f) => [f.ruleId, f.subject])).toEqual([
      ['SS016', 'DATABASE_URL'],
      ['SS016', 'command'],
    ]);
    expect(lintModel(model, { ...OPTS, interpolated: true })).toEqual([]);
  });

  it('SS010: a secret-named variable pointing at /run/secrets/ is not a literal secret; URLs in secret names are checked once', () => {
    const text = [
      'services:', // 1
      '  db:', // 2
      '    image: postgres:16.4', // 3
      '    environment:', // 4
      '      POSTGRES_PASSWORD_FILE: /run/secrets/db', // 5
      '      DB_PASSWORD: /run/secrets/db_password', // 6
      '      ADMIN_PASSWORD: ${ADMIN_PASSWORD:-/run/secrets/admin}', // 7
      '  api:', // 8
      '    image: nginx:1.27', // 9
      '    environment:', // 10
      '      - POSTGRES_PASSWORD=/run/secrets/pg', // 11
      '      - DB_SECRET=/run/secretsX', // 12
      '      - DB_PASSWORD_URL=postgres://a:b@db/x', // 13
    ].join('\n');
    expect(lintComposeText(text, 'c.yaml', OPTS).map(core)).toEqual([
      { ruleId: 'SS010', service: 'api', subject: 'DB_SECRET', line: 12, column: 9 },
      { ruleId: 'SS016', service: 'api', subject: 'DB_PASSWORD_URL', line: 13, column: 9 },
    ]);
  });

  it('SS017 dotenv-secret: literal values of secret names and key formats in .env, with .env:line; not empty, ${VAR}, /run/secrets or switches', () => {
    const findings = lintDotEnvText(fixture('ss017-dotenv-secret.env'), '.env');
    expect(findings.map(core)).toEqual([
      { ruleId: 'SS017', service: undefined, subject: 'POSTGRES_PASSWORD', line: 4, column: 1 },
      { ruleId: 'SS017', service: undefined, subject: 'JWT_SECRET', line: 5, column: 8 },
      { ruleId: 'SS017', service: undefined, subject: 'STRIPE_API_KEY', line: 10, column: 1 },
      { ruleId: 'SS017', service: undefined, subject: 'NOTES', line: 11, column: 1 },
      { ruleId: 'SS017', service: undefined, subject: 'SMTP_PASSWORD', line: 12, column: 1 },
      { ruleId: 'SS017', service: undefined, subject: 'TLS_PRIVATE_KEY', line: 13, column: 1 },
    ]);
    expect(findings[0]).toMatchObject({ file: '.env', severity: 'warning', rule: 'dotenv-secret', neutralisedByRender: false });
    expect(findings[0]!.message).toBe('.env sets the secret-looking variable POSTGRES_PASSWORD to a literal value: every instance of the stack shares it, and it leaks with the file');
    expect(findings[0]!.fix).toContain('secrets: in sandstack.yaml');
    expect(findings[3]!.message).toBe('.env: the value of NOTES contains an AWS access key id');
    const json = JSON.stringify(findings);
    for (const secret of ['hunter2', 'dev-signing-key', 'sk_test', 'AKIAIOSFODNN7EXAMPLE', 'changeme', 'MIIEv']) expect(json).not.toContain(secret);
  });

  it('parseDotEnv: export, quotes (multi-line), inline comments', () => {
    expect(parseDotEnv('A=1 # c\nexport B="x # y"\nC=\'z\'\nD="l1\nl2"\n# E=no\nF=u#v\n')).toEqual([
      { name: 'A', value: '1', quote: '', pos: { line: 1, column: 1 } },
      { name: 'B', value: 'x # y', quote: '"', pos: { line: 2, column: 8 } },
      { name: 'C', value: 'z', quote: "'", pos: { line: 3, column: 1 } },
      { name: 'D', value: 'l1\nl2', quote: '"', pos: { line: 4, column: 1 } },
      { name: 'F', value: 'u#v', quote: '', pos: { line: 7, column: 1 } },
    ]);
  });

  it('lintDotEnvFiles reads the .env of the project folder and beside each compose file, once each', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ss-dotenv-'));
    try {
      mkdirSync(path.join(dir, 'ops'));
      writeFileSync(path.join(dir, 'compose.yaml'), 'services: {}\n');
      writeFileSync(path.join(dir, '.env'), 'USER=shop\nDB_PASSWORD=hunter2\n');
      writeFileSync(path.join(dir, 'ops', 'compose.ops.yaml'), 'services: {}\n');
      writeFileSync(path.join(dir, 'ops', '.env'), 'GRAFANA_ADMIN_PASSWORD=admin\n');
      const files = [path.join(dir, 'compose.yaml'), path.join(dir, 'ops', 'compose.ops.yaml'), path.join(dir, 'compose.yaml')];
      const findings = await lintDotEnvFiles(files, { projectDir: dir });
      expect(findings.map((f) => [f.file, f.line, f.subject])).toEqual([
        ['.env', 2, 'DB_PASSWORD'],
        [path.join('ops', '.env'), 1, 'GRAFANA_ADMIN_PASSWORD'],
      ]);
      // Named relative to a base folder (e.g. the current directory) when given.
      expect((await lintDotEnvFiles(files, { projectDir: dir, baseDir: path.join(dir, 'ops') })).map((f) => f.file)).toEqual([path.join('..', '.env'), '.env']);
      // No .env at all: nothing.
      expect(await lintDotEnvFiles([path.join(dir, 'ops', 'none', 'c.yaml')], { projectDir: path.join(dir, 'ops', 'none') })).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SS018 fixed-address: ipam subnet, ip_range, gateway; ipv4/ipv6 addresses; not on external networks', () => {
    const findings = lintFixture('ss018-fixed-address.yaml');
    expect(only(findings, 'SS018')).toEqual([
      { ruleId: 'SS018', service: 'gateway', subject: 'networks.backnet.ipv4_address', line: 7, column: 9 },
      { ruleId: 'SS018', service: 'gateway', subject: 'networks.backnet.ipv6_address', line: 8, column: 9 },
      { ruleId: 'SS018', service: undefined, subject: 'networks.backnet.ipam.config[0].subnet', line: 18, column: 11 },
      { ruleId: 'SS018', service: undefined, subject: 'networks.backnet.ipam.config[0].ip_range', line: 19, column: 11 },
      { ruleId: 'SS018', service: undefined, subject: 'networks.backnet.ipam.config[0].gateway', line: 20, column: 11 },
      { ruleId: 'SS018', service: undefined, subject: 'networks.backnet.ipam.config[1].subnet', line: 21, column: 11 },
    ]);
    const subnet = findings.find((f) => f.line === 18)!;
    expect(subnet).toMatchObject({ severity: 'warning', neutralisedByRender: true });
    expect(subnet.message).toBe(
      'network backnet has the fixed subnet 172.28.0.0/16 (ipam.config): a second instance cannot create its network (the pool overlaps); sandstack drops it on render',
    );
    expect(findings.find((f) => f.line === 7)!.message).toContain('fixed address 172.28.0.10 on network backnet');
    expect(subnet.fix).toContain('sandstack drops fixed subnets and addresses when it renders the model');
    expect(findings.filter((f) => f.ruleId !== 'SS018').map((f) => f.ruleId)).toEqual(['SS009']);
  });

  it('SS018 in the merged model', () => {
    const model = parseResolvedModel(
      'services:\n  a:\n    image: x:1\n    networks:\n      lan:\n        ipv4_address: 10.5.0.5\nnetworks:\n  lan:\n    ipam:\n      config:\n        - subnet: 10.5.0.0/16\n',
    );
    expect(lintModel(model, OPTS).map((f) => [f.ruleId, f.service, f.subject])).toEqual([
      ['SS018', 'a', 'networks.lan.ipv4_address'],
      ['SS018', undefined, 'networks.lan.ipam.config[0].subnet'],
    ]);
  });

  const SHARED: SharedDataset[] = [
    { name: 'ohlc', host: '/mnt/datasets/ohlc', services: ['backtest', 'ingest'], target: '/data/ohlc', mode: 'ro' },
    { name: 'models', host: '../models', services: ['trainer'], target: '/models', mode: 'rw' },
  ];

  it('data.shared: a declared mount is accepted (host, service and target match); SS019 when declared ro but mounted rw', () => {
    const findings = lintComposeText(fixture('ss019-shared-data.yaml'), 'ss019-shared-data.yaml', { ...OPTS, sharedData: SHARED });
    expect(findings.map(core)).toEqual([
      { ruleId: 'SS019', service: 'ingest', subject: '/mnt/datasets/ohlc', line: 10, column: 9 },
      { ruleId: 'SS015', service: 'report', subject: '/mnt/datasets/ohlc', line: 14, column: 9 },
      { ruleId: 'SS015', service: 'trainer', subject: '/mnt/datasets/ohlc', line: 21, column: 9 },
    ]);
    expect(findings[0]).toMatchObject({ severity: 'error', neutralisedByRender: true });
    expect(findings[0]!.message).toBe('service ingest mounts the shared dataset ohlc (/mnt/datasets/ohlc) read-write, but data.shared declares it read-only');
    expect(findings[0]!.fix).toContain('"/mnt/datasets/ohlc:/data/ohlc:ro"');
    expect(findings[1]!.message).toContain('(data.shared declares it as ohlc for backtest, ingest at /data/ohlc, not for report)');
    expect(findings[2]!.message).toContain('not for trainer');
    const elsewhere = 'services:\n  backtest:\n    image: x:1\n    volumes:\n      - /mnt/datasets/ohlc:/ohlc:ro\n';
    expect(lintComposeText(elsewhere, 'c.yaml', { ...OPTS, sharedData: SHARED })[0]!.message).toContain('at /data/ohlc, not at /ohlc)');
  });

  it('data.shared: without the declaration the same mounts are findings', () => {
    const findings = lintFixture('ss019-shared-data.yaml');
    expect(findings.map((f) => [f.ruleId, f.service, f.line])).toEqual([
      ['SS015', 'backtest', 6],
      ['SS015', 'ingest', 10],
      ['SS015', 'report', 14],
      ['SS008', 'trainer', 19],
      ['SS015', 'trainer', 21],
    ]);
  });

  it('data.shared never accepts the Docker socket or a broad path', () => {
    const text = 'services:\n  a:\n    image: x:1\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock:ro\n      - /:/host:ro\n';
    const sharedData: SharedDataset[] = [
      { name: 'sock', host: '/var/run/docker.sock', services: ['a'], target: '/var/run/docker.sock', mode: 'ro' },
      { name: 'root', host: '/', services: ['a'], target: '/host', mode: 'ro' },
    ];
    expect(lintComposeText(text, 'c.yaml', { ...OPTS, sharedData }).map((f) => f.ruleId)).toEqual(['SS004', 'SS008']);
  });

  it('relative mounts inside the git repository are fine; outside it they are SS008', () => {
    const text = [
      'services:', // 1
      '  app:', // 2
      '    image: x:1', // 3
      '    volumes:', // 4
      '      - ../data:/data', // 5
      '      - ..:/repo:ro', // 6
      '      - ../../other-worktree:/other', // 7
      '      - /home/dev/shop/fixtures:/fixtures:ro', // 8
    ].join('\n');
    const opts = { projectDir: '/home/dev/shop/deploy', homeDir: '/home/dev', repoRoot: '/home/dev/shop' };
    const findings = lintComposeText(text, 'c.yaml', opts);
    expect(findings.map(core)).toEqual([{ ruleId: 'SS008', service: 'app', subject: '/home/dev/other-worktree', line: 7, column: 9 }]);
    expect(findings[0]!.message).toContain('outside the git repository (it escapes with ..)');
    // Without the repository root, ../data leaves the project: flagged as before.
    expect(lintComposeText(text, 'c.yaml', { projectDir: opts.projectDir, homeDir: opts.homeDir }).map((f) => f.line)).toEqual([5, 6, 7, 8]);
    // A repository root that is the home folder (dotfiles in git) does not widen anything.
    expect(lintComposeText(text, 'c.yaml', { ...opts, repoRoot: '/home/dev' }).map((f) => f.line)).toEqual([5, 6, 7, 8]);
  });

  it('lintOptionsFor finds the git top level (a .git folder or a worktree .git file) and resolves data.shared against sandstack.yaml', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ss-repo-'));
    try {
      mkdirSync(path.join(dir, 'repo', '.git'), { recursive: true });
      mkdirSync(path.join(dir, 'repo', 'deploy'));
      mkdirSync(path.join(dir, 'wt', 'deploy'), { recursive: true });
      writeFileSync(path.join(dir, 'wt', '.git'), `gitdir: ${dir}/repo/.git/worktrees/wt\n`);
      expect(await findRepoRoot(path.join(dir, 'repo', 'deploy'))).toBe(path.join(dir, 'repo'));
      expect(await findRepoRoot(path.join(dir, 'wt', 'deploy'))).toBe(path.join(dir, 'wt'));
      const config = { data: { shared: [{ name: 'm', host: '../models', services: ['trainer'], target: '/models', mode: 'ro' as const }] } };
      const opts = await lintOptionsFor({
        projectDir: path.join(dir, 'wt', 'deploy'),
        homeDir: '/home/dev',
        config,
        configFile: path.join(dir, 'wt', 'sandstack.yaml'),
        stateHome: '/var/lib/sandstack-ci',
      });
      expect(opts).toEqual({
        projectDir: path.join(dir, 'wt', 'deploy'),
        homeDir: '/home/dev',
        ownPaths: ['/var/lib/sandstack-ci'],
        repoRoot: path.join(dir, 'wt'),
        sharedData: [{ name: 'm', host: path.join(dir, 'models'), services: ['trainer'], target: '/models', mode: 'ro' }],
      });
      const text = 'services:\n  app:\n    image: x:1\n    volumes:\n      - ../data:/data\n      - ../../repo/data:/main-data\n';
      expect(lintComposeText(text, 'c.yaml', opts).map((f) => [f.ruleId, f.subject])).toEqual([['SS008', path.join(dir, 'repo', 'data')]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("sandstack's own instance folders (resolved in the merged model) and paths in a home under /root are not system paths", () => {
    const model = parseResolvedModel(
      [
        'services:',
        '  app:',
        '    image: x:1',
        '    volumes:',
        '      - { type: bind, source: /var/lib/sandstack-ci/instances/shop/data/uploads, target: /uploads }',
        '      - { type: bind, source: /var/lib/sandstack-ci/instances/shop/secrets/DB_PASSWORD, target: /run/secrets/db, read_only: true }',
        '      - { type: bind, source: /root/datasets/ticks, target: /ticks, read_only: true }',
        '      - { type: bind, source: /root/.aws, target: /aws, read_only: true }',
        '',
      ].join('\n'),
    );
    const opts = { projectDir: '/root/src/shop', homeDir: '/root', ownPaths: ['/var/lib/sandstack-ci'] };
    expect(lintModel(model, { ...opts, interpolated: true }).map((f) => [f.ruleId, f.subject])).toEqual([
      ['SS014', '/root/.aws'],
      ['SS015', '/root/datasets/ticks'],
    ]);
    // Without ownPaths the state home under /var/lib is a system path.
    expect(lintModel(model, { projectDir: opts.projectDir, homeDir: '/root', interpolated: true }).map((f) => f.ruleId)).toEqual(['SS014', 'SS014', 'SS014', 'SS015']);
  });

  it('mergeFindings: a mount flagged as written (SS008 for ../x) is not repeated from the merged model (SS015 for the absolute path)', () => {
    const written = lintFixture('ss008-broad-host-mount.yaml');
    const model = parseResolvedModel(
      'services:\n  cadvisor:\n    image: x:1\n    volumes:\n      - type: bind\n        source: /home/dev/other-project/config\n        target: /config\n',
    );
    const merged = lintModel(model, OPTS);
    expect(merged.map((f) => f.ruleId)).toEqual(['SS015']);
    expect(mergeFindings(written, merged)).toEqual(written);
  });
});
