import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SandstackError } from '../../src/errors.js';
import { fixComposeText, type FixChange } from '../../src/policy/fix.js';
import { lintComposeText } from '../../src/policy/lint.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'lint');
const OPTS = { projectDir: '/home/dev/shop', homeDir: '/home/dev' };
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');

type Services = Record<string, Record<string, unknown>>;
const servicesOf = (text: string) => (parse(text, { merge: true }) as { services: Services }).services;

/** The original lines with the applied changes done by hand: removed lines dropped, in-line replacements made. */
function expectedLines(original: string, changes: FixChange[]): string[] {
  const lines = original.split('\n');
  const removed = new Set<number>();
  const inline = new Map<number, FixChange[]>();
  for (const c of changes.filter((x) => x.applied)) {
    if (c.kind === 'remove-container-name' && c.before.endsWith('\n')) {
      const n = c.before.split('\n').length - 1;
      for (let i = 0; i < n; i++) removed.add(c.line - 1 + i);
    } else {
      inline.set(c.line - 1, [...(inline.get(c.line - 1) ?? []), c]);
    }
  }
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (removed.has(i)) return;
    let l = line;
    for (const c of inline.get(i) ?? []) {
      expect(l.includes(c.before), `line ${i + 1} contains ${c.before}`).toBe(true);
      l = l.replace(c.before, c.after);
    }
    out.push(l);
  });
  return out;
}

describe('fixComposeText on the realistic messy file', () => {
  const original = fixture('messy.compose.yaml');
  const { text, changes } = fixComposeText(original, { file: 'messy.compose.yaml' });

  it('removes container_name entries and rewrites fixed short-syntax ports', () => {
    expect(changes.map((c) => [c.kind, c.service, c.applied, c.before, c.after])).toEqual([
      ['remove-container-name', 'db', true, '    container_name: shop-db  # a fixed name (SS001)\n', ''],
      ['bind-port-loopback', 'db', true, '"5432:5432"', '"127.0.0.1:${DB_PORT:-5432}:5432"'],
      ['bind-port-loopback', 'backend', true, '"8000:8000"', '"127.0.0.1:${BACKEND_PORT:-8000}:8000"'],
      ['remove-container-name', 'cache', true, 'container_name: shop-cache, ', ''],
      ['bind-port-loopback', 'cache', true, '"6379:6379"', '"127.0.0.1:${CACHE_PORT:-6379}:6379"'],
      ['bind-port-loopback', 'mail-catcher', true, '1025:1025', '"127.0.0.1:${MAIL_CATCHER_PORT:-1025}:1025"'],
      ['bind-port-loopback', 'mail-catcher', true, '0.0.0.0:8025:8025', '"127.0.0.1:${MAIL_CATCHER_8025_PORT:-8025}:8025"'],
      ['bind-port-loopback', 'dns', true, "'5353:53/udp'", "'127.0.0.1:${DNS_PORT:-5353}:53/udp'"],
    ]);
    expect(changes.find((c) => c.service === 'db' && c.kind === 'bind-port-loopback')!.ruleIds).toEqual(['SS002', 'SS003']);
    expect(text).not.toMatch(/^\s*container_name:/m);
    expect(text).toContain('  cache: { image: "redis:7.2-alpine", ports: ["127.0.0.1:${CACHE_PORT:-6379}:6379"] }\n');
    expect(text).toContain(`    ports: ["127.0.0.1:\${BACKEND_PORT:-8000}:8000", '127.0.0.1:\${DEBUG_PORT:-5678}:5678']   # flow style\n`);
  });

  it('keeps every other line byte-identical, every comment included', () => {
    expect(text.split('\n')).toEqual(expectedLines(original, changes));
    // The commented-out container_name stays exactly as it was.
    expect(text).toContain('    # container_name: shop-db   <- commented out, must stay exactly as it is\n');
    // Every comment survives except the one on the removed container_name line.
    const comments = original.split('\n').flatMap((l) => (l.match(/ #.*$|^\s*#.*$/) ?? []).map((m) => m.trim()));
    for (const c of comments) {
      if (c === '# a fixed name (SS001)') expect(text).not.toContain(c);
      else expect(text).toContain(c);
    }
    // Only the lines touched by changes differ.
    const changedLines = new Set(changes.filter((c) => c.applied).map((c) => c.line));
    expect(changedLines.size).toBe(7);
    expect(original.split('\n').length - text.split('\n').length).toBe(1);
  });

  it('is idempotent: a second run changes nothing and applies nothing', () => {
    const again = fixComposeText(text);
    expect(again.text).toBe(text);
    expect(again.changes.filter((c) => c.applied)).toEqual([]);
  });

  it('leaves no SS001/SS002/SS003 findings and touches no other finding', () => {
    const before = lintComposeText(original, 'messy.compose.yaml', OPTS);
    const after = lintComposeText(text, 'messy.compose.yaml', OPTS);
    expect(after.filter((f) => ['SS001', 'SS002', 'SS003'].includes(f.ruleId))).toEqual([]);
    const rest = (fs: typeof before) => fs.filter((f) => !['SS001', 'SS002', 'SS003'].includes(f.ruleId)).map((f) => [f.ruleId, f.service, f.subject]);
    expect(rest(after)).toEqual(rest(before));
  });

  it('still parses as YAML with the same services and keys (minus container_name), other values unchanged', () => {
    const a = parse(original, { merge: true }) as Record<string, unknown>;
    const b = parse(text, { merge: true }) as Record<string, unknown>;
    expect(Object.keys(b)).toEqual(Object.keys(a));
    const sa = servicesOf(original);
    const sb = servicesOf(text);
    expect(Object.keys(sb)).toEqual(Object.keys(sa));
    for (const name of Object.keys(sa)) {
      const { container_name: _cn, ports: pa, ...restA } = sa[name]!;
      const { ports: pb, ...restB } = sb[name]!;
      expect(Object.keys(sb[name]!)).toEqual(Object.keys(sa[name]!).filter((k) => k !== 'container_name'));
      expect(restB).toEqual(restA);
      expect((pb as unknown[] | undefined)?.length).toBe((pa as unknown[] | undefined)?.length);
    }
    expect(a.volumes).toEqual(b.volumes);
    expect(sb.db!.ports).toEqual(['127.0.0.1:${DB_PORT:-5432}:5432']);
    expect(sb.dns!.ports).toEqual(['127.0.0.1:${DNS_PORT:-5353}:53/udp']);
  });
});

describe('fixComposeText: cases', () => {
  const fix = (text: string) => fixComposeText(text, { file: 'compose.yaml' });

  it('removes container_name from flow maps: middle, last, only and multi-line', () => {
    const text = [
      'services:',
      '  a: { container_name: a, image: "x:1" }',
      '  b: { image: "x:1", container_name: b }',
      '  c: {container_name: c}',
      '  d: {',
      '    image: "x:1",',
      '    container_name: d',
      '  }',
      '',
    ].join('\n');
    expect(fix(text).text).toBe(['services:', '  a: { image: "x:1" }', '  b: { image: "x:1" }', '  c: {}', '  d: {', '    image: "x:1"', '  }', ''].join('\n'));
  });

  it('keeps CRLF line endings and works without a trailing newline', () => {
    const crlf = 'services:\r\n  a:\r\n    image: x:1\r\n    container_name: a # c\r\n    ports:\r\n      - 8000:8000\r\n';
    expect(fix(crlf).text).toBe('services:\r\n  a:\r\n    image: x:1\r\n    ports:\r\n      - "127.0.0.1:${A_PORT:-8000}:8000"\r\n');
    expect(fix('services:\n  a:\n    image: x:1\n    container_name: a').text).toBe('services:\n  a:\n    image: x:1\n');
  });

  it('removes a container_name written as a multi-line block scalar, and copes with Compose tags (!override, !reset)', () => {
    const text = 'services:\n  a:\n    image: x:1\n    container_name: >-\n      long\n      name\n    ports: !override\n      - "80:80"\n    volumes: !reset []\n';
    expect(fix(text).text).toBe('services:\n  a:\n    image: x:1\n    ports: !override\n      - "127.0.0.1:${A_PORT:-80}:80"\n    volumes: !reset []\n');
  });

  it('removes a container_name that services get through a merge key once, in the anchor', () => {
    const text = 'x-d: &d\n  container_name: shared  # in the anchor\n  restart: always\nservices:\n  a:\n    <<: *d\n    image: x:1\n  b:\n    <<: *d\n    image: y:1\n';
    const r = fix(text);
    expect(r.text).toBe('x-d: &d\n  restart: always\nservices:\n  a:\n    <<: *d\n    image: x:1\n  b:\n    <<: *d\n    image: y:1\n');
    expect(r.changes.filter((c) => c.applied)).toHaveLength(1);
  });

  it('does not remove a container_name that is the only key of its mapping', () => {
    const text = 'x-d: &d\n  container_name: shared\nservices:\n  a:\n    <<: *d\n    image: x:1\n';
    const r = fix(text);
    expect(r.text).toBe(text);
    expect(r.changes).toMatchObject([{ kind: 'remove-container-name', applied: false, before: 'container_name: shared' }]);
  });

  it('rewrites short syntax of every kind and keeps the quoting style', () => {
    const text = [
      'services:',
      '  a:',
      '    image: x:1',
      '    ports:',
      '      - 8000', // bare: random host port on all addresses
      "      - '[::1]:9002:9002'", // loopback already: only the host port
      '      - "127.0.0.1:${A_PORT:-9000}:9000"', // already fine: left alone
      '      - "0.0.0.0:5432:5432"',
      '      - "5432:5432/udp"',
      '      - "${HOST_IP:-0.0.0.0}:${PG_PORT:-5433}:5433"', // keeps its own variable
      '',
    ].join('\n');
    const r = fix(text);
    expect(r.text.split('\n').slice(4, 10)).toEqual([
      '      - "127.0.0.1::8000"',
      "      - '[::1]:${A_9002_PORT:-9002}:9002'",
      '      - "127.0.0.1:${A_PORT:-9000}:9000"',
      '      - "127.0.0.1:${A_5432_PORT:-5432}:5432"',
      '      - "127.0.0.1:${A_5432_UDP_PORT:-5432}:5432/udp"',
      '      - "127.0.0.1:${PG_PORT:-5433}:5433"',
    ]);
    expect(r.changes.every((c) => c.applied)).toBe(true);
    expect(lintComposeText(r.text, 'c.yaml', OPTS)).toEqual([]);
    expect(fix(r.text).text).toBe(r.text);
  });

  it('uses <SERVICE>_PORT for the first fixed port, <SERVICE>_<PORT>_PORT for later ones', () => {
    const text = 'services:\n  my.api-v2:\n    image: x:1\n    ports: ["80:80", "443:443"]\n';
    expect(fix(text).text).toBe('services:\n  my.api-v2:\n    image: x:1\n    ports: ["127.0.0.1:${MY_API_V2_PORT:-80}:80", "127.0.0.1:${MY_API_V2_443_PORT:-443}:443"]\n');
  });

  it('reports long syntax, ranges and ports in shared anchors as not auto-fixable', () => {
    const text = [
      'x-ports: &p',
      '  - "9000:9000"',
      'services:',
      '  a:',
      '    image: x:1',
      '    ports:',
      '      - target: 80',
      '        published: 8080',
      '      - "8000-8001:8000-8001"',
      '  b:',
      '    image: x:1',
      '    ports: *p',
      '',
    ].join('\n');
    const r = fix(text);
    expect(r.text).toBe(text);
    expect(r.changes.map((c) => [c.service, c.line, c.applied, c.after, c.reason?.split(':')[0]])).toEqual([
      ['b', 2, false, '"127.0.0.1:${B_PORT:-9000}:9000"', 'defined in a shared anchor (used through an alias)'],
      ['a', 7, false, 'host_ip: 127.0.0.1 and published: "${A_PORT:-8080}"', 'long-syntax port'],
      ['a', 9, false, '', 'port range'],
    ]);
  });

  it('leaves files without services alone and rejects invalid YAML', () => {
    expect(fix('volumes:\n  x: {}\n')).toEqual({ text: 'volumes:\n  x: {}\n', changes: [] });
    expect(() => fix('services:\n  a: [\n')).toThrow(SandstackError);
    try {
      fix('services:\n  a: [\n');
    } catch (e) {
      expect((e as SandstackError).code).toBe('SANDSTACK_COMPOSE_INVALID');
      expect((e as SandstackError).message).toMatch(/compose\.yaml:\d+:\d+/);
    }
  });

  it('keeps the commented-out container_name of the SS001 fixture', () => {
    const original = fixture('ss001-container-name.yaml');
    const r = fix(original);
    expect(r.text).toBe(
      original.replace('    container_name: shop-web   # fixed name\n', '').replace(', container_name: "shop-cache"', ''),
    );
    expect(r.text).toContain('# container_name: shop-worker   (commented out: not a finding)');
  });
});
