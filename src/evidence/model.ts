/**
 * The evidence bundle as data: what `sandstack evidence` writes to manifest.json and renders into
 * summary.md and report.html. Renderers are pure functions of this.
 */
import type { GateReport } from '../gate/report.js';
import type { TestRunResult } from '../testing/model.js';

export interface BundleFile {
  /** Path relative to the bundle directory (used for links). */
  path: string;
  description: string;
  bytes: number;
}

export interface ServiceRow {
  name: string;
  state: string;
  health: string | null;
  image: string | null;
  imageId: string | null;
  ports: { container: number; protocol: string; host: number | null; hostIp: string | null; url: string | null }[];
}

export interface TeardownProof {
  at: string;
  instance: string;
  removed: { containers: string[]; volumes: string[]; networks: string[] };
  /** Labelled resources left after teardown (all zero when clean). */
  remaining: { containers: number; volumes: number; networks: number };
  durationMs: number;
}

export interface Manifest {
  schema: 'sandstack.evidence/v1';
  createdAt: string;
  runId: string;
  /** The instance the evidence is about (the worktree's id). */
  instance: { id: string; kind: string; worktree: string; projectDir: string; runInstance: string };
  git: { branch: string | null; commit: string | null; dirty: boolean | null };
  versions: { sandstack: string; docker: string | null; compose: string | null; node: string };
  /** The Docker engine the run's instance ran on (`local`, or a remote engine's name and endpoint); absent in bundles written before. */
  engine?: { name: string; endpoint: string };
  timings: { gateMs: number | null; testsMs: number | null; totalMs: number | null };
  result: { gatePassed: boolean | null; testsPassed: boolean | null; passed: boolean };
  /** Allowances and other things a reviewer should know. */
  notes: string[];
  redaction: { secretsRedacted: number; marker: string };
  files: BundleFile[];
  /** The data the instance saw: the shared datasets of data.shared and its data root (absent in bundles written before). */
  data?: EvidenceData;
}

export interface EvidenceData {
  shared: { name: string; host: string; target: string; services: string[]; mode: 'ro' | 'rw' }[];
  /** The data root of the instance that ran, and the template it was seeded from (null: none). */
  root: { path: string; template: string | null };
}

export interface EvidenceBundle {
  dir: string;
  manifest: Manifest;
  gate: GateReport | null;
  tests: TestRunResult | null;
  services: ServiceRow[];
  teardown: TeardownProof | null;
}
