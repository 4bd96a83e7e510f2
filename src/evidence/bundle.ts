/**
 * `sandstack evidence`: writes the bundle of a run into its directory — manifest.json, the gate
 * report, test results, per-service logs, the service table, the rendered model, image IDs, the
 * port map, proof of teardown — plus summary.md (a PR body) and report.html (one self-contained
 * page with a timeline). Every file is redacted: no secret value is left in the bundle.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { composeProjectDir, locateComposeFiles } from '../compose/files.js';
import { parse as parseDotenv } from 'dotenv';
import { detectCompose } from '../compose/cli.js';
import { toRecord } from '../compose/model.js';
import { parseModelText, stringifyModel } from '../compose/yaml.js';
import { containerLogTail, instanceContainers } from '../engine/docker.js';
import { readLatestGateReport, type GateReport } from '../gate/report.js';
import { gitInfo } from '../git/git.js';
import type { Context } from '../lifecycle/context.js';
import { findRecord, type ResolvedInstance } from '../lifecycle/instance.js';
import { urlFor } from '../lifecycle/status.js';
import { composeCacheFile } from '../state/paths.js';
import type { TestRunResult } from '../testing/model.js';
import { evidenceRoot, latestRunDir, markLatest, newRunId, runDirFor } from '../testing/runner.js';
import { renderReportHtml } from './html.js';
import type { BundleFile, EvidenceBundle, Manifest, ServiceRow, TeardownProof } from './model.js';
import { collectSecrets, MARKER_PREFIX, redactModel, redactText, redactTree, type Secret } from './redact.js';
import { renderSummaryMarkdown } from './summary.js';
import { sandstackVersion } from '../version.js';
import { loadSecrets } from '../secrets/secrets.js';
import { allowancesOf } from '../policy/check.js';
import { configDirOf, dataRootTemplate, declaredDatasets, instanceDataView } from '../data/shared.js';

/** The isolated model in the bundle (written with redactModel, never text-redacted). */
const RENDERED_FILE = 'compose.rendered.yaml';

const DESCRIPTIONS: [RegExp, string][] = [
  [/^manifest\.json$/, 'what, where, which versions, timings, result'],
  [/^summary\.md$/, 'this summary (PR body)'],
  [/^report\.html$/, 'one-page report with a timeline of gate stages and tests'],
  [/^gate-report\.json$/, 'Startability Gate report (every stage, with details)'],
  [/^tests\.json$/, 'test results (suites, JUnit totals, failures)'],
  [/^teardown\.json$/, 'proof of teardown: what was removed, what remains (nothing)'],
  [/^services\.json$/, 'service table: state, health, image, ports'],
  [/^images\.json$/, 'image reference and image ID of each service'],
  [/^ports\.json$/, 'port map: leased host ports on 127.0.0.1'],
  [/^compose\.rendered\.yaml$/, 'the isolated Compose model that ran (redacted)'],
  [/^logs\/.+\.log$/, 'service log'],
  [/^unit\/.+\/output\.log$/, 'unit test output'],
  [/^e2e\/.+\/output\.log$/, 'E2E output'],
  [/\.xml$/, 'JUnit XML'],
  [/\.png$/, 'screenshot'],
];

function describeFile(rel: string): string {
  return DESCRIPTIONS.find(([re]) => re.test(rel))?.[1] ?? 'artifact';
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
}

/** Secret values this run may have seen: secret-like variables of the model, host and .env, plus injected ones. */
export async function gatherSecrets(ctx: Context, inst: ResolvedInstance, renderedText: string | undefined, injected: Secret[] = []): Promise<Secret[]> {
  const candidates: { name: string; value: string | null | undefined; always?: boolean }[] = [];
  for (const [name, value] of Object.entries(ctx.env)) candidates.push({ name, value });
  // The .env beside sandstack.yaml and the one Compose reads (in the first compose file's folder).
  const files = await locateComposeFiles(inst.projectDir, inst.loaded.config.compose.files, { env: ctx.env }).catch(() => []);
  for (const dir of new Set([inst.projectDir, composeProjectDir(inst.projectDir, files)])) {
    try {
      for (const [name, value] of Object.entries(parseDotenv(await readFile(path.join(dir, '.env'), 'utf8')))) candidates.push({ name, value });
    } catch {
      // no .env
    }
  }
  if (renderedText) {
    const model = parseModelText(renderedText) as { services?: Record<string, { environment?: Record<string, string | null> | string[] }> };
    for (const svc of Object.values(model?.services ?? {})) {
      for (const [name, value] of Object.entries(toRecord(svc.environment as never))) candidates.push({ name, value });
    }
  }
  for (const s of injected) candidates.push({ ...s, always: true });
  return collectSecrets(candidates);
}

export interface WriteEvidenceOptions {
  /** The worktree's instance: the bundle is filed under its id. */
  inst: ResolvedInstance;
  /** The instance whose containers ran (verify: the throwaway one). Default: `inst`. */
  runInstance?: ResolvedInstance;
  runDir?: string;
  gate?: GateReport | null;
  teardown?: TeardownProof | null;
  notes?: string[];
  /** Secret values sandstack injected, or found by an earlier pass over the same run. */
  injectedSecrets?: Secret[];
}

export interface EvidenceResult {
  dir: string;
  summaryFile: string;
  htmlFile: string;
  manifest: Manifest;
  bundle: EvidenceBundle;
  /** The secret values redacted (for a later pass over the same run; never printed). */
  secrets: Secret[];
}

export async function writeEvidence(ctx: Context, opts: WriteEvidenceOptions): Promise<EvidenceResult> {
  const inst = opts.inst;
  const runInst = opts.runInstance ?? inst;
  const root = evidenceRoot(ctx, inst);
  let dir = opts.runDir ?? (await latestRunDir(root, inst.identity.id));
  if (!dir) {
    const runId = newRunId();
    dir = runDirFor(root, inst.identity.id, runId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await markLatest(root, inst.identity.id, runId);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  ctx.onProgress({ type: 'step', message: `writing evidence to ${dir}` });

  const tests = await readJson<TestRunResult>(path.join(dir, 'tests.json'));
  const gate = opts.gate !== undefined ? opts.gate : ((await readLatestGateReport(ctx.home, runInst.identity.id)) ?? null);
  if (gate) await writeJson(path.join(dir, 'gate-report.json'), gate);

  // Services, logs and images: from the containers while they exist; kept from an earlier pass after teardown.
  const { record } = await findRecord(ctx, runInst.identity.id);
  const containers = await instanceContainers(ctx.engine.docker, runInst.identity.id).catch(() => []);
  let services: ServiceRow[];
  if (containers.length > 0) {
    await mkdir(path.join(dir, 'logs'), { recursive: true });
    services = [];
    for (const c of containers.filter((x) => x.labels['com.docker.compose.oneoff'] !== 'True')) {
      await writeFile(path.join(dir, 'logs', `${c.service}.log`), `${(await containerLogTail(ctx.engine.docker, c.id, 10_000, c.tty)).join('\n')}\n`);
      services.push({
        name: c.service,
        state: c.state,
        health: c.health ?? null,
        image: c.image || null,
        imageId: c.imageId || null,
        ports: c.ports.map((p) => {
          const lease = record?.leases.find((l) => l.service === c.service && l.containerPort === p.containerPort);
          return { container: p.containerPort, protocol: p.protocol, host: lease?.localPort ?? p.hostPort, hostIp: lease?.localPort ? '127.0.0.1' : p.hostIp, url: urlFor(lease, p.hostIp, p.hostPort), ...(lease?.localPort ? { enginePort: p.hostPort } : {}) };
        }),
      });
    }
    await writeJson(path.join(dir, 'services.json'), services);
    await writeJson(path.join(dir, 'images.json'), Object.fromEntries(services.map((s) => [s.name, { image: s.image, imageId: s.imageId }])));
    await writeJson(path.join(dir, 'ports.json'), {
      leases: record?.leases ?? [],
      bound: services.flatMap((s) => s.ports.map((p) => ({ service: s.name, ...p }))),
    });
  } else {
    services = (await readJson<ServiceRow[]>(path.join(dir, 'services.json'))) ?? [];
  }

  let renderedText: string | undefined;
  let freshModel = false;
  try {
    renderedText = await readFile(runInst.paths.rendered, 'utf8');
    freshModel = true;
  } catch {
    renderedText = await readFile(path.join(dir, RENDERED_FILE), 'utf8').catch(() => undefined);
  }
  if (opts.teardown) await writeJson(path.join(dir, 'teardown.json'), opts.teardown);
  const teardown = opts.teardown ?? (await readJson<TeardownProof>(path.join(dir, 'teardown.json')));

  const secrets = await gatherSecrets(ctx, runInst, renderedText, [...(opts.injectedSecrets ?? []), ...(await loadSecrets(runInst.paths.dir))]);
  const redactedBefore = (await readJson<Manifest>(path.join(dir, 'manifest.json')))?.redaction.secretsRedacted ?? 0;
  // The model is redacted structurally (values of variables only) so that it stays a valid model;
  // every other file is redacted as text.
  let modelRedactions = 0;
  if (renderedText !== undefined && freshModel) {
    const r = redactModel(parseModelText(renderedText), secrets);
    modelRedactions = r.count;
    await writeFile(path.join(dir, RENDERED_FILE), stringifyModel(r.model), { mode: 0o600 });
  }
  const redacted = redactedBefore + modelRedactions + (await redactTree(dir, secrets, [RENDERED_FILE]));

  // The commit the run started from (resolved with the instance), not whatever HEAD is by now.
  const git = inst.git ?? (await gitInfo(inst.identity.worktree));
  const dockerVersion = await ctx.engine.docker.version().then((v) => v.Version, () => null);
  const compose = await detectCompose(ctx.env, { cacheFile: composeCacheFile(ctx.home) }).then((c) => `${c.argv.join(' ')} ${c.version}`, () => null);
  const testsPassed = tests ? tests.passed : null;
  const gatePassed = gate ? gate.passed : null;
  const starts = [gate?.startedAt, tests?.startedAt].filter((x): x is string => Boolean(x)).map(Date.parse);
  const ends = [gate ? Date.parse(gate.startedAt) + gate.durationMs : NaN, tests ? Date.parse(tests.startedAt) + tests.durationMs : NaN].filter(Number.isFinite);
  const manifest: Manifest = {
    schema: 'sandstack.evidence/v1',
    createdAt: new Date().toISOString(),
    runId: path.basename(dir),
    instance: { id: inst.identity.id, kind: runInst.identity.kind, worktree: inst.identity.worktree, projectDir: inst.projectDir, runInstance: runInst.identity.id },
    git: { branch: git?.branch ?? null, commit: git?.commit ?? null, dirty: git ? git.dirty : null },
    versions: { sandstack: sandstackVersion(), docker: dockerVersion, compose, node: process.version },
    engine: { name: ctx.engine.name, endpoint: ctx.engine.endpoint },
    timings: { gateMs: gate?.durationMs ?? null, testsMs: tests?.durationMs ?? null, totalMs: starts.length && ends.length ? Math.max(...ends) - Math.min(...starts) : null },
    result: { gatePassed, testsPassed, passed: gatePassed !== false && testsPassed !== false && (gatePassed === true || testsPassed === true) && (!teardown || Object.values(teardown.remaining).every((n) => n === 0)) },
    notes: [...(opts.notes ?? []), ...allowancesOf(inst.loaded.config).map((a) => `guardrail exception allowed in sandstack.yaml: ${a.ruleId} ${a.rule} on service ${a.service}: ${a.reason}`)],
    redaction: { secretsRedacted: redacted, marker: `${MARKER_PREFIX}<NAME>]` },
    files: [],
    data: instanceDataView(declaredDatasets(runInst.loaded.config, configDirOf(runInst.loaded)), runInst.paths.dataRoot, dataRootTemplate(runInst.loaded.config, configDirOf(runInst.loaded))),
  };
  const listFiles = async (): Promise<BundleFile[]> => {
    const out: BundleFile[] = [];
    for (const e of ((await readdir(dir!, { recursive: true })) as string[]).sort()) {
      const st = await stat(path.join(dir!, e)).catch(() => undefined);
      if (!st?.isFile()) continue;
      const rel = e.split(path.sep).join('/');
      if (['manifest.json', 'summary.md', 'report.html'].includes(rel)) continue;
      out.push({ path: rel, description: describeFile(rel), bytes: st.size });
    }
    return out;
  };
  manifest.files = await listFiles();
  // Render from the redacted files, not from what was read before redaction: escaping or truncation
  // in the renderers could otherwise split a secret so that the final text pass misses it.
  const bundle: EvidenceBundle = {
    dir,
    manifest,
    gate: gate ? await readJson<GateReport>(path.join(dir, 'gate-report.json')) : null,
    tests: tests ? await readJson<TestRunResult>(path.join(dir, 'tests.json')) : null,
    services: services.length ? ((await readJson<ServiceRow[]>(path.join(dir, 'services.json'))) ?? []) : [],
    teardown: teardown ? await readJson<TeardownProof>(path.join(dir, 'teardown.json')) : null,
  };
  const summaryFile = path.join(dir, 'summary.md');
  const htmlFile = path.join(dir, 'report.html');
  // Rendered from redacted data, and redacted once more: a message could quote a secret.
  await writeFile(summaryFile, redactText(renderSummaryMarkdown(bundle), secrets).text, { mode: 0o600 });
  await writeFile(htmlFile, redactText(renderReportHtml(bundle), secrets).text, { mode: 0o600 });
  await writeFile(path.join(dir, 'manifest.json'), redactText(`${JSON.stringify(manifest, null, 2)}\n`, secrets).text, { mode: 0o600 });
  return { dir, summaryFile, htmlFile, manifest, bundle, secrets };
}
