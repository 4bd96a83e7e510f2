import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SandstackError } from '../../src/errors.js';
import { parseResolvedModel } from '../../src/compose/resolve.js';
import { lintComposeText, lintModel, mergeFindings, MERGED_MODEL_FILE, summarize } from '../../src/policy/lint.js';
import { evaluate, RULES, splitShortPort, type Finding } from '../../src/policy/rules.js';

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
