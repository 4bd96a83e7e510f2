import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lintComposeText, lintModel } from '../../src/policy/lint.js';
import { RULES, type Finding } from '../../src/policy/rules.js';
import { SARIF_SCHEMA, toSarif } from '../../src/policy/sarif.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'lint');
const OPTS = { projectDir: '/home/dev/shop', homeDir: '/home/dev' };
const LEVELS = ['none', 'note', 'warning', 'error'];

type Json = any;

/** Structural checks of the SARIF 2.1.0 properties sandstack writes (required members, types, cross references). */
function validateSarif(log: Json): string[] {
  const problems: string[] = [];
  const need = (cond: unknown, what: string) => {
    if (!cond) problems.push(what);
  };
  const isText = (m: Json) => m && typeof m.text === 'string' && m.text.length > 0;
  need(log.$schema === SARIF_SCHEMA, '$schema');
  need(log.version === '2.1.0', 'version');
  need(Array.isArray(log.runs) && log.runs.length === 1, 'runs');
  const run = log.runs?.[0];
  const driver = run?.tool?.driver;
  need(driver && driver.name === 'sandstack', 'tool.driver.name');
  need(typeof driver?.version === 'string', 'tool.driver.version');
  need(driver?.informationUri === undefined || /^https?:\/\//.test(driver.informationUri), 'informationUri');
  const rules: Json[] = driver?.rules ?? [];
  need(Array.isArray(driver?.rules), 'rules');
  const ids = new Set<string>();
  rules.forEach((r, i) => {
    need(typeof r.id === 'string' && !ids.has(r.id), `rules[${i}].id`);
    ids.add(r.id);
    need(typeof r.name === 'string', `rules[${i}].name`);
    need(isText(r.shortDescription), `rules[${i}].shortDescription`);
    need(isText(r.fullDescription), `rules[${i}].fullDescription`);
    need(isText(r.help), `rules[${i}].help`);
    need(LEVELS.includes(r.defaultConfiguration?.level), `rules[${i}].defaultConfiguration.level`);
  });
  need(Array.isArray(run?.results), 'results');
  (run?.results ?? []).forEach((res: Json, i: number) => {
    const at = `results[${i}]`;
    need(typeof res.ruleId === 'string', `${at}.ruleId`);
    need(Number.isInteger(res.ruleIndex) && rules[res.ruleIndex]?.id === res.ruleId, `${at}.ruleIndex`);
    need(['note', 'warning', 'error'].includes(res.level), `${at}.level`);
    need(isText(res.message), `${at}.message`);
    for (const loc of res.locations ?? []) {
      const keys = Object.keys(loc);
      need(keys.every((k) => ['physicalLocation', 'logicalLocations', 'message', 'id'].includes(k)), `${at}.location keys`);
      const pl = loc.physicalLocation;
      if (pl) {
        const uri: string = pl.artifactLocation?.uri;
        const base: string | undefined = pl.artifactLocation?.uriBaseId;
        need(typeof uri === 'string' && uri.length > 0, `${at}.uri`);
        if (base !== undefined) {
          // A relative reference, resolved against a base the run declares as an absolute directory URI.
          need(!uri.startsWith('/') && !/^[a-z]+:/i.test(uri) && !uri.includes('\\') && !uri.includes(' ') && !uri.startsWith('..'), `${at}.uri relative`);
          need(/^file:\/\/\/.*\/$/.test(run?.originalUriBaseIds?.[base]?.uri ?? ''), `${at}.uriBaseId ${base} declared`);
        } else {
          need(/^file:\/\/\//.test(uri) && !uri.includes(' '), `${at}.uri absolute without uriBaseId`);
        }
        if (pl.region) {
          need(Number.isInteger(pl.region.startLine) && pl.region.startLine >= 1, `${at}.region.startLine`);
          need(pl.region.startColumn === undefined || (Number.isInteger(pl.region.startColumn) && pl.region.startColumn >= 1), `${at}.region.startColumn`);
        }
      }
      for (const ll of loc.logicalLocations ?? []) need(typeof ll.name === 'string', `${at}.logicalLocations.name`);
    }
    for (const v of Object.values(res.partialFingerprints ?? {})) need(typeof v === 'string', `${at}.partialFingerprints`);
  });
  return problems;
}

describe('toSarif', () => {
  const file = path.join(OPTS.projectDir, 'deploy', 'messy.compose.yaml');
  const findings = lintComposeText(readFileSync(path.join(FIXTURES, 'messy.compose.yaml'), 'utf8'), file, OPTS);

  it('produces a structurally valid SARIF 2.1.0 log with every rule and every finding', () => {
    const log = JSON.parse(JSON.stringify(toSarif(findings, '0.1.0', { baseDir: OPTS.projectDir }))) as Json;
    expect(validateSarif(log)).toEqual([]);
    const driver = log.runs[0].tool.driver;
    expect(driver.version).toBe('0.1.0');
    expect(driver.rules.map((r: Json) => r.id)).toEqual(RULES.map((r) => r.id));
    const ss002 = driver.rules.find((r: Json) => r.id === 'SS002');
    expect(ss002).toMatchObject({ name: 'port-not-loopback', defaultConfiguration: { level: 'error' } });
    expect(ss002.help.text).toBe(RULES[1]!.fix);
    expect(log.runs[0].results).toHaveLength(findings.length);
  });

  it('maps each finding to a result with its level, message and relative location', () => {
    const log = toSarif(findings, '0.1.0', { baseDir: OPTS.projectDir }) as Json;
    const results: Json[] = log.runs[0].results;
    results.forEach((res, i) => {
      const f = findings[i]!;
      expect(res.ruleId).toBe(f.ruleId);
      expect(res.level).toBe(f.severity);
      expect(res.message.text).toContain(f.message);
      expect(res.locations[0].physicalLocation).toEqual({
        artifactLocation: { uri: 'deploy/messy.compose.yaml', uriBaseId: '%SRCROOT%' },
        region: { startLine: f.line, startColumn: f.column },
      });
    });
    const warning = results.find((r) => r.ruleId === 'SS003');
    expect(warning.level).toBe('warning');
    expect(results.find((r) => r.ruleId === 'SS001').level).toBe('error');
    // Fingerprints are stable across runs and differ between findings at different subjects.
    const again = toSarif(findings, '0.1.0', { baseDir: OPTS.projectDir }) as Json;
    expect(again.runs[0].results.map((r: Json) => r.partialFingerprints)).toEqual(results.map((r) => r.partialFingerprints));
  });

  it('locates merged-model findings logically (or at mergedModelUri, without a region)', () => {
    const merged = lintModel({ services: { app: { image: 'busybox', privileged: true } } }, OPTS);
    const plain = toSarif(merged, '0.1.0') as Json;
    expect(validateSarif(plain)).toEqual([]);
    expect(plain.runs[0].results[0].locations).toEqual([{ logicalLocations: [{ name: 'app', fullyQualifiedName: 'services.app', kind: 'object' }] }]);
    const withUri = toSarif(merged, '0.1.0', { mergedModelUri: 'compose.yaml', informationUri: 'https://example.com/sandstack' }) as Json;
    expect(validateSarif(withUri)).toEqual([]);
    expect(withUri.runs[0].tool.driver.informationUri).toBe('https://example.com/sandstack');
    expect(withUri.runs[0].results[0].locations[0].physicalLocation).toEqual({ artifactLocation: { uri: 'compose.yaml', uriBaseId: '%SRCROOT%' } });
    const withFile = toSarif(merged, '0.1.0', { baseDir: '/home/dev/shop', cwd: '/home/dev/shop/deploy', mergedModelFile: 'compose.yaml' }) as Json;
    expect(validateSarif(withFile)).toEqual([]);
    expect(withFile.runs[0].results[0].locations[0].physicalLocation).toEqual({ artifactLocation: { uri: 'deploy/compose.yaml', uriBaseId: '%SRCROOT%' } });
  });

  it('percent-encodes file names and handles findings without a service or a column', () => {
    const f: Finding = {
      ruleId: 'SS009',
      rule: 'external-resource',
      severity: 'warning',
      subject: 'volumes.x',
      message: 'volume x is external',
      fix: 'drop external',
      file: '/home/dev/shop/my compose.yaml',
      line: 3,
      neutralisedByRender: true,
    };
    const log = toSarif([f], '1.2.3', { baseDir: '/home/dev/shop' }) as Json;
    expect(validateSarif(log)).toEqual([]);
    expect(log.runs[0].results[0].locations).toEqual([{ physicalLocation: { artifactLocation: { uri: 'my%20compose.yaml', uriBaseId: '%SRCROOT%' }, region: { startLine: 3 } } }]);
    expect(log.runs[0].results[0].ruleIndex).toBe(8);
  });

  it('makes paths relative to the repository root, declared as %SRCROOT% (relative findings resolved from cwd)', () => {
    const at = (file: string): Finding => ({ ruleId: 'SS005', rule: 'privileged', severity: 'error', subject: 'privileged', service: 'api', message: 'privileged', fix: 'drop it', file, line: 2, column: 5, neutralisedByRender: false });
    const log = toSarif([at('environments/dev/docker-compose.dev.yml'), at('/home/dev/shop/compose.yaml'), at('/elsewhere/x y.yml')], '0.1.0', {
      baseDir: '/home/dev/shop',
      cwd: '/home/dev/shop/deploy',
    }) as Json;
    expect(validateSarif(log)).toEqual([]);
    expect(log.runs[0].originalUriBaseIds).toEqual({ '%SRCROOT%': { uri: 'file:///home/dev/shop/' } });
    expect(log.runs[0].results.map((r: Json) => r.locations[0].physicalLocation.artifactLocation)).toEqual([
      { uri: 'deploy/environments/dev/docker-compose.dev.yml', uriBaseId: '%SRCROOT%' },
      { uri: 'compose.yaml', uriBaseId: '%SRCROOT%' },
      // Outside the root: an absolute file URI, no base.
      { uri: 'file:///elsewhere/x%20y.yml' },
    ]);
  });

  it('is valid with no findings', () => {
    const log = toSarif([], '0.1.0') as Json;
    expect(validateSarif(log)).toEqual([]);
    expect(log.runs[0].results).toEqual([]);
  });
});
