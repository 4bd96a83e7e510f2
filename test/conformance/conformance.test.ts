/**
 * Conformance corpus: realistic Compose projects (test/conformance/projects/<name>/) run through
 * sandstack init, lint, render and Compose's own config of the rendered model, with every
 * Compose version available, checking the isolation invariants on the rendered model and that
 * strings the source meant as strings stay strings. A subset also runs `gate --fresh` on the real
 * engine and must leave nothing behind.
 *
 * CONFORMANCE_ONLY=<name,name> limits the projects; CONFORMANCE_CONCURRENCY (default 3) sets how
 * many projects run their static phase at once; CONFORMANCE_NO_GATE=1 skips the gate subset;
 * CONFORMANCE_VERSIONS=v1|v2 limits the Compose versions.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupWorkspace, leftovers, leftoversUnder, repoFor, runStatic, sandstack, VERSIONS, type ComposeVersion, type StaticResult, type Workspace } from './harness.js';
import { compareStrings, INVARIANTS, type InvariantContext } from './invariants.js';
import { loadProjects, mainComposeFile, type Project } from './meta.js';

const ALL = loadProjects();
const ONLY = (process.env.CONFORMANCE_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const PROJECTS = ONLY.length ? ALL.filter((p) => ONLY.includes(p.name)) : ALL;
const CONCURRENCY = Number(process.env.CONFORMANCE_CONCURRENCY ?? 3);
const NO_GATE = process.env.CONFORMANCE_NO_GATE === '1';
const ONLY_VERSIONS = (process.env.CONFORMANCE_VERSIONS ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const STATIC_TIMEOUT = 300_000;
const GATE_TIMEOUT = 300_000;

let ws: Workspace | undefined;
const workspace = async (): Promise<Workspace> => (ws ??= { root: await mkdtemp(path.join(os.tmpdir(), 'sandstack-conf-')), dirs: [], gateInstances: [] });

/** Per-version, per-project static results (started in the version's beforeAll, awaited by tests). */
const pending = new Map<string, Promise<StaticResult>>();
const key = (v: ComposeVersion, p: Project) => `${v.label}/${p.name}`;
/** One line per project and version for the closing table. */
const outcome = new Map<string, string[]>();
const note = (v: ComposeVersion, p: Project, failure?: string) => {
  const k = key(v, p);
  if (!outcome.has(k)) outcome.set(k, []);
  if (failure) outcome.get(k)!.push(failure);
};

afterAll(async () => {
  if (outcome.size > 0) {
    const lines = [...outcome.entries()].sort().map(([k, f]) => `${f.length ? 'FAIL' : 'pass'}  ${k}${f.length ? `  (${f.join('; ')})` : ''}`);
    process.stderr.write(`\nconformance summary:\n${lines.join('\n')}\n`);
  }
  if (ws) await cleanupWorkspace(ws);
}, 600_000);

const label = (p: Project, v: ComposeVersion) => `[${p.name} / compose ${v.label}]`;
const tail = (s: string, n = 25) => s.split(/\r?\n/).filter(Boolean).slice(-n).join('\n');

/** Runs an assertion body, recording the failure for the closing table before rethrowing. */
async function recorded(v: ComposeVersion, p: Project, what: string, body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
    note(v, p);
  } catch (e) {
    note(v, p, what);
    throw e;
  }
}

function fail(p: Project, v: ComposeVersion, what: string, detail: string): never {
  throw new Error(`${label(p, v)} ${what}:\n${detail}`);
}

async function result(v: ComposeVersion, p: Project): Promise<StaticResult> {
  const r = pending.get(key(v, p));
  if (!r) throw new Error(`${label(p, v)} static phase was never started`);
  return r;
}

describe('corpus', () => {
  it('has at least 25 projects, 8 in the gate subset', () => {
    expect(ALL.length).toBeGreaterThanOrEqual(25);
    expect(ALL.filter((p) => p.meta?.gate?.v1 || p.meta?.gate?.v2).length).toBeGreaterThanOrEqual(8);
  });

  it.each(ALL.map((p) => [p.name, p] as const))('%s: conformance.json is valid and the main compose file states its pattern', (_n, p) => {
    if (p.metaError) throw new Error(`[${p.name}] conformance.json: ${p.metaError}`);
    const main = mainComposeFile(p);
    if (!main) throw new Error(`[${p.name}] no main compose file found`);
    const head = readFileSync(main, 'utf8').split(/\r?\n/)[0] ?? '';
    if (!/^# Pattern: \S/.test(head)) throw new Error(`[${p.name}] ${path.relative(p.dir, main)} must start with "# Pattern: ..." (found ${JSON.stringify(head)})`);
  });
});

describe.each(VERSIONS)('compose $label', (v) => {
  if (ONLY_VERSIONS.length && !ONLY_VERSIONS.includes(v.label)) {
    it.skip(`compose ${v.label}: not selected by CONFORMANCE_VERSIONS`, () => undefined);
    return;
  }
  if (!v.available) {
    it.skip(`compose ${v.label}: ${v.unavailableReason} (skipped)`, () => undefined);
    return;
  }
  const applicable = PROJECTS.filter((p) => p.meta && p.meta.compose[v.label]);
  const notApplicable = PROJECTS.filter((p) => p.meta && !p.meta.compose[v.label]);

  beforeAll(async () => {
    const w = await workspace();
    const limit = pLimit(CONCURRENCY);
    for (const p of applicable) {
      const promise = limit(() => runStatic(w, v, p));
      promise.catch(() => undefined);
      pending.set(key(v, p), promise);
    }
  });

  for (const p of notApplicable) {
    it.skip(`${p.name}: not applicable to compose ${v.label} (${p.meta!.v1Reason ?? 'v2 excluded'})`, () => undefined);
  }

  describe.each(applicable.map((p) => ({ name: p.name, p })))('$name', ({ p }) => {
    const meta = p.meta!;

    it('init proposes the expected sandstack.yaml', async () => {
      const r = await result(v, p);
      await recorded(v, p, 'init', () => {
        if (r.blocked?.startsWith('harness error')) fail(p, v, 'harness', r.blocked);
        const init = r.init!;
        if (!init.ok) fail(p, v, `sandstack init ${(meta.init?.args ?? []).join(' ')} exited ${init.exitCode}`, `${init.json?.error ? `${init.json.error.code}: ${init.json.error.message}` : ''}\n${tail(init.stderr)}`);
        if (!init.json) fail(p, v, 'sandstack init --json', `stdout is not JSON: ${init.stdout.slice(0, 500)}`);
        const sortKey = (e: { service: string; port: number; protocol: string }) => `${e.service}:${e.port}/${e.protocol}`;
        if (meta.init?.publish) {
          const got = (init.json.publish ?? []).map(sortKey).sort();
          const want = meta.init.publish.map(sortKey).sort();
          if (JSON.stringify(got) !== JSON.stringify(want)) fail(p, v, 'init publish entries', `expected ${JSON.stringify(want)}\n     got ${JSON.stringify(got)}`);
        }
        if (meta.init?.required) {
          const got = [...(init.json.required ?? [])].sort();
          if (JSON.stringify(got) !== JSON.stringify([...meta.init.required].sort())) fail(p, v, 'init required variables', `expected ${JSON.stringify(meta.init.required)}, got ${JSON.stringify(got)}`);
        }
        if (meta.init?.secrets) {
          const got = [...(init.json.secrets ?? [])].sort();
          if (JSON.stringify(got) !== JSON.stringify([...meta.init.secrets].sort())) fail(p, v, 'init generated secrets', `expected ${JSON.stringify(meta.init.secrets)}, got ${JSON.stringify(got)}`);
        }
        if (p.files.length > 0) {
          const files = (r.config?.compose?.files ?? []) as string[];
          if (JSON.stringify(files) !== JSON.stringify(p.files)) fail(p, v, 'init compose.files', `init -f ${p.files.join(' -f ')} should record compose.files ${JSON.stringify(p.files)}, got ${JSON.stringify(files)}`);
        }
      });
    }, STATIC_TIMEOUT);

    it('lint --format json prints JSON and exits 0 or 1', async () => {
      const r = await result(v, p);
      await recorded(v, p, 'lint', () => {
        const lint = r.lint;
        if (!lint) fail(p, v, 'lint', `did not run: ${r.blocked}`);
        if (lint.exitCode !== 0 && lint.exitCode !== 1) fail(p, v, `sandstack lint --format json exited ${lint.exitCode}`, tail(lint.stderr));
        if (lint.json === undefined || typeof lint.json !== 'object') fail(p, v, 'sandstack lint --format json', `stdout is not a JSON document: ${lint.stdout.slice(0, 500)}\n${tail(lint.stderr)}`);
        if (!Array.isArray(lint.json.findings)) fail(p, v, 'sandstack lint --format json', `no findings array in ${lint.stdout.slice(0, 300)}`);
      });
    }, STATIC_TIMEOUT);

    if (meta.render?.refusal) {
      const refusal = meta.render.refusal;
      it(`render is refused with ${refusal.code}`, async () => {
        const r = await result(v, p);
        await recorded(v, p, 'refusal', () => {
          const render = r.render;
          if (!render) fail(p, v, 'render', `did not run: ${r.blocked}`);
          if (render.exitCode !== 2) fail(p, v, `sandstack render --json should exit 2 (refusal), exited ${render.exitCode}`, tail(render.stderr) || render.stdout.slice(0, 500));
          if (render.json?.error?.code !== refusal.code) fail(p, v, 'refusal code', `expected ${refusal.code}, got ${JSON.stringify(render.json?.error ?? render.stdout.slice(0, 300))}`);
          if (refusal.messageIncludes && !String(render.json.error.message).includes(refusal.messageIncludes)) fail(p, v, 'refusal message', `should name ${refusal.messageIncludes}: ${render.json.error.message}`);
        });
      }, STATIC_TIMEOUT);
      return;
    }

    it('render exits 0 and prints a YAML model', async () => {
      const r = await result(v, p);
      await recorded(v, p, 'render', () => {
        const render = r.render;
        if (!render) fail(p, v, 'render', `did not run: ${r.blocked}`);
        if (!render.ok) fail(p, v, `sandstack render exited ${render.exitCode}`, tail(render.stderr));
        if (r.renderedParseError || !r.rendered?.services) fail(p, v, 'rendered model', `does not parse as a Compose model: ${r.renderedParseError ?? render.stdout.slice(0, 300)}`);
      });
    }, STATIC_TIMEOUT);

    it(`compose ${v.label} config accepts the rendered model`, async () => {
      const r = await result(v, p);
      await recorded(v, p, 'compose config', () => {
        if (!r.sourceConfig?.ok) fail(p, v, `compose ${v.label} config of the SOURCE failed (a corpus defect, not sandstack's)`, r.sourceConfig?.error ?? tail(r.sourceConfig?.stderr ?? r.blocked ?? ''));
        if (!r.renderedConfig) fail(p, v, 'compose config of the rendered model', `did not run: ${r.blocked ?? 'no rendered model'}`);
        if (!r.renderedConfig.ok) fail(p, v, `compose ${v.label} -f ${r.renderedFile} config rejects the rendered model (exit ${r.renderedConfig.exitCode})`, r.renderedConfig.error ?? tail(r.renderedConfig.stderr, 8));
      });
    }, STATIC_TIMEOUT);

    for (const inv of INVARIANTS) {
      it(`invariant: ${inv.name}`, async () => {
        const r = await result(v, p);
        await recorded(v, p, inv.name, () => {
          if (!r.rendered?.services) fail(p, v, `invariant "${inv.name}"`, `no rendered model to check (${r.blocked ?? r.renderedParseError ?? 'render failed'})`);
          const cfg = r.config ?? {};
          const ctx: InvariantContext = {
            id: r.id,
            kind: String(cfg.instance?.kind ?? 'local'),
            range: { from: Number(cfg.ports?.range?.from ?? 20000), to: Number(cfg.ports?.range?.to ?? 29999) },
            publish: (cfg.ports?.publish ?? []) as InvariantContext['publish'],
            allowExternal: { volumes: (cfg.external?.volumes ?? []) as string[], networks: (cfg.external?.networks ?? []) as string[] },
            source: r.sourceConfig?.model,
          };
          const violations = inv.check(r.rendered, ctx);
          if (violations.length) fail(p, v, `invariant "${inv.name}" violated`, violations.map((x) => `  - ${x}`).join('\n'));
        });
      }, STATIC_TIMEOUT);
    }

    it('strings of the source stay strings in Compose config of the rendered model', async () => {
      const r = await result(v, p);
      await recorded(v, p, 'strings stay strings', () => {
        if (!r.sourceConfig?.model) fail(p, v, 'strings', `no Compose config of the source: ${tail(r.sourceConfig?.stderr ?? r.blocked ?? '')}`);
        if (!r.renderedConfig?.model) fail(p, v, 'strings', `Compose ${v.label} config of the rendered model failed, so its values cannot be compared: ${r.renderedConfig?.error ?? tail(r.renderedConfig?.stderr ?? r.blocked ?? 'render failed', 5)}`);
        const diffs = compareStrings(r.sourceConfig.model, r.renderedConfig.model);
        if (diffs.length) fail(p, v, 'string values changed between Compose config of the source and of the rendered model', diffs.map((x) => `  - ${x}`).join('\n'));
      });
    }, STATIC_TIMEOUT);
  });

  const gated = applicable.filter((p) => p.meta!.gate?.[v.label]);
  describe.skipIf(NO_GATE || gated.length === 0)(`gate --fresh (compose ${v.label})`, () => {
    it.each(gated.map((p) => ({ name: p.name, p })))('$name passes gate --fresh and leaves nothing behind', async ({ p }) => {
      const w = await workspace();
      const r = await result(v, p);
      await recorded(v, p, 'gate --fresh', async () => {
        if (r.blocked?.startsWith('harness error') || !r.config) fail(p, v, 'gate --fresh', `no prepared copy: ${r.blocked}`);
        const repo = repoFor(w, v, p);
        const gate = await sandstack(w, v, p.meta, repo, ['gate', '--fresh', '--json'], GATE_TIMEOUT - 20_000);
        const report = gate.json;
        const gateId: string | undefined = report?.instance?.id;
        if (gateId) w.gateInstances.push(gateId);
        if (gate.exitCode !== 0 || report?.passed !== true) {
          const f = report?.failure ?? report?.error;
          const stages = (report?.stages ?? []).map((s: { name: string; status: string }) => `${s.name}=${s.status}`).join(' ');
          fail(p, v, `gate --fresh exited ${gate.exitCode}${gate.error ? ` (${gate.error})` : ''}`, `${stages}\n${f ? JSON.stringify(f, null, 2).slice(0, 3000) : tail(gate.stderr) || gate.stdout.slice(0, 1000)}`);
        }
        if (!gateId) fail(p, v, 'gate --fresh', `no instance id in the report: ${gate.stdout.slice(0, 300)}`);
        const left = [...(await leftovers(gateId)), ...(await leftoversUnder(path.dirname(repo)))];
        if (left.length) fail(p, v, `gate --fresh left things behind for ${gateId}`, left.map((x) => `  - ${x}`).join('\n'));
        const ls = await sandstack(w, v, p.meta, repo, ['ls', '--json']);
        const listed = (ls.json?.instances ?? []).filter((i: { id: string; worktree?: string }) => i.id === gateId || (i.worktree ?? '').startsWith(path.dirname(repo)));
        if (listed.length) fail(p, v, 'gate --fresh', `instances still listed by sandstack ls: ${JSON.stringify(listed)}`);
      });
    }, GATE_TIMEOUT);
  });
});

describe('invariants have teeth (a model with every known defect)', () => {
  const id = 'shop';
  const ctx: InvariantContext = {
    id,
    kind: 'local',
    range: { from: 20000, to: 29999 },
    publish: [{ service: 'web', port: 80, protocol: 'http' }],
    allowExternal: { volumes: [], networks: [] },
    source: { services: { web: { environment: { OTEL_RESOURCE_ATTRIBUTES: 'team=a' } }, db: {} }, networks: { net: { ipam: { config: [{ subnet: '10.1.0.0/24' }] } } } },
  };
  const bad = {
    services: {
      web: {
        container_name: 'web',
        ports: ['0.0.0.0:8080:80/tcp', '127.0.0.1:30000:443/tcp', 1342],
        environment: { SANDSTACK_INSTANCE_ID: 'other', OTEL_RESOURCE_ATTRIBUTES: 'sandstack.instance.id=other' },
        labels: { 'dev.sandstack.instance': 'other' },
        networks: { net: { ipv4_address: '10.1.0.5' } },
      },
    },
    volumes: { data: { name: 'data' } },
    networks: { net: { ipam: { config: [{ subnet: '10.1.0.0/24', gateway: '10.1.0.1' }] } }, ext: { external: true, name: 'shared' } },
  };
  it.each(INVARIANTS.map((i) => [i.name, i] as const))('%s reports the defect', (_n, inv) => {
    expect(inv.check(bad, ctx).length).toBeGreaterThan(0);
  });
  it('strings that became booleans, dates, numbers or other text are reported', () => {
    const diffs = compareStrings(
      { services: { a: { environment: { F: 'no', D: '2015-01-01', E: '1e3', T: '1:20', S: 'x$$y' } } } },
      { services: { a: { environment: { F: false, D: new Date('2015-01-01'), E: '1000', T: 80, S: 'xy' } } } },
    );
    expect(diffs).toHaveLength(5);
  });
});
