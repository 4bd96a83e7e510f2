import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseModelText, stringifyModel } from '../../src/compose/yaml.js';
import { parseResolvedModel } from '../../src/compose/resolve.js';

/** Strings YAML 1.1 (PyYAML, Compose v1) or YAML 1.2 (Go yaml.v3, Compose v2) would read as something else when plain. */
const AMBIGUOUS = ['no', 'yes', 'on', 'off', 'y', 'n', 'Y', 'N', 'NO', 'True', 'null', 'Null', '~', '', '0755', '1:20', '190:20:30', '1e3', '0x1F', '0o17', '0b101', '1_000', '.5', '+12', '-1', '1.', '.inf', '.NaN', '2015-01-01', '2015-01-01T00:00:00Z', '2015-1-1 1:2:3'];

describe('stringifyModel', () => {
  const model = {
    services: {
      app: {
        image: 'debian:bookworm-slim',
        restart: 'no',
        environment: Object.fromEntries(AMBIGUOUS.map((v, i) => [`V${i}`, v])),
        labels: Object.fromEntries(AMBIGUOUS.map((v, i) => [`com.example.l${i}`, v])),
        healthcheck: { disable: true },
        stop_grace_period: '1m30s',
      },
    },
    // keys that would be misread too
    'x-keys': Object.fromEntries(AMBIGUOUS.filter(Boolean).map((v) => [v, v])),
  };
  const text = stringifyModel(model);

  it('every string reads back as the same string in YAML 1.1 and in YAML 1.2', () => {
    expect(parse(text, { version: '1.1' })).toEqual(model);
    expect(parse(text, { version: '1.2' })).toEqual(model);
    expect(parse(text, { version: '1.2', schema: 'core' })).toEqual(model);
  });

  it('quotes what only PyYAML would misread (the = value tag)', () => {
    expect(stringifyModel({ a: '=' })).toBe('a: "="\n');
  });

  it('quotes restart: "no" and dates', () => {
    expect(text).toMatch(/restart: "no"/);
    expect(text).toMatch(/V\d+: "2015-01-01"/);
  });

  it('keeps real booleans, numbers and nulls as such', () => {
    const t = stringifyModel({ a: true, b: 5, c: null, d: 'plain text' });
    expect(t).toBe('a: true\nb: 5\nc: null\nd: plain text\n');
  });

  it('writes no %YAML directive and no document markers', () => {
    expect(text).not.toMatch(/^%YAML/m);
    expect(text.startsWith('---')).toBe(false);
  });
});

describe('parseModelText', () => {
  it('reads Compose v1 output (PyYAML) as YAML 1.1: unquoted yes/on are booleans, quoted ones strings', () => {
    expect(parseModelText("a: yes\nb: 'yes'\nc: '2015-01-01'\nd: 0755\n")).toEqual({ a: true, b: 'yes', c: '2015-01-01', d: 493 });
  });

  it('resolves plain scalars as PyYAML does: y, n and 1e3 stay strings', () => {
    expect(parseModelText('a: y\nb: n\nc: 1e3\nd: 1.0e+3\ne: 1:20\nf: ~\ng: 0x1F\n')).toEqual({ a: 'y', b: 'n', c: '1e3', d: 1000, e: 80, f: null, g: 31 });
  });

  it('reads JSON (Compose v2 --format json) exactly', () => {
    expect(parseModelText('{"services":{"a":{"environment":{"X":"0755","Y":"no"}}}}')).toEqual({ services: { a: { environment: { X: '0755', Y: 'no' } } } });
  });
});

describe('parseResolvedModel', () => {
  it('reads v1 YAML as YAML 1.1 (quoted strings stay strings)', () => {
    const m = parseResolvedModel("services:\n  a:\n    image: x\n    restart: 'no'\n    environment:\n      D: '2015-01-01'\n");
    expect(m.services.a!.environment).toEqual({ D: '2015-01-01' });
    expect((m.services.a as Record<string, unknown>).restart).toBe('no');
  });

  it('reads v2 JSON output', () => {
    const m = parseResolvedModel('{"name":"p","services":{"a":{"image":"x","restart":"no","environment":{"D":"2015-01-01"}}}}');
    expect(m.services.a!.environment).toEqual({ D: '2015-01-01' });
  });
});
