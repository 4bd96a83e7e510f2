/**
 * SARIF 2.1.0 output of compose lint findings (for GitHub code scanning and other SARIF viewers).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MERGED_MODEL_FILE } from './lint.js';
import { RULES, type Finding } from './rules.js';

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';

export interface SarifOptions {
  /**
   * The root URIs are relative to, absolute (default: the current directory): the repository root,
   * so code scanning can map results to files. Written as originalUriBaseIds %SRCROOT%.
   */
  baseDir?: string;
  /** The folder relative finding paths are relative to (default: the current directory). */
  cwd?: string;
  /** Shown as the tool's informationUri. */
  informationUri?: string;
  /**
   * Where merged-model findings (which have no file of their own) are located, as a URI relative to
   * baseDir, e.g. the main compose file; without it (or mergedModelFile) they carry only a logical
   * location (the service).
   */
  mergedModelUri?: string;
  /** Like mergedModelUri, as a file path (absolute or relative to cwd). */
  mergedModelFile?: string;
}

/** The run's base URI id: every relative artifact URI is relative to it. */
export const SRCROOT = '%SRCROOT%';

/** One-line titles for SARIF viewers (shortDescription). */
const TITLES: Record<string, string> = {
  SS001: 'Fixed container_name',
  SS002: 'Published port not bound to loopback',
  SS003: 'Literal host port',
  SS004: 'Docker socket mounted into a container',
  SS005: 'Privileged container',
  SS006: 'Dangerous capability added',
  SS007: 'Host namespace shared',
  SS008: 'Broad host path bind-mounted',
  SS009: 'External volume or network shared by every instance',
  SS010: 'Secret written into the compose file',
  SS011: 'Grafana anonymous access with admin rights',
  SS012: 'Kernel confinement (seccomp/AppArmor/SELinux) disabled',
  SS013: 'Image not pinned to a version',
};

/**
 * The artifact location of a file: a forward-slashed, percent-encoded URI relative to baseDir (with
 * uriBaseId %SRCROOT%), or an absolute file URI for a file outside baseDir.
 */
function artifactLocation(file: string, baseDir: string, cwd: string): { uri: string; uriBaseId?: string } {
  const abs = path.resolve(cwd, file);
  const rel = path.relative(baseDir, abs);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) return { uri: pathToFileURL(abs).href };
  return { uri: rel.split(/[\\/]/).map(encodeURIComponent).join('/'), uriBaseId: SRCROOT };
}

function fingerprint(f: Finding, uri: string): string {
  return createHash('sha256').update([f.ruleId, f.service ?? '', f.subject, uri].join('\u0000')).digest('hex').slice(0, 32);
}

/** Converts findings to a SARIF 2.1.0 log with one run; every rule of the catalogue is listed. */
export function toSarif(findings: Finding[], toolVersion: string, opts: SarifOptions = {}): object {
  const cwd = opts.cwd ?? process.cwd();
  const baseDir = path.resolve(cwd, opts.baseDir ?? cwd);
  const mergedLocation =
    opts.mergedModelUri !== undefined ? { uri: opts.mergedModelUri, uriBaseId: SRCROOT } : opts.mergedModelFile !== undefined ? artifactLocation(opts.mergedModelFile, baseDir, cwd) : undefined;
  const ruleIndex = new Map(RULES.map((r, i) => [r.id, i]));
  const rules = RULES.map((r) => ({
    id: r.id,
    name: r.name,
    shortDescription: { text: TITLES[r.id] ?? r.name },
    fullDescription: { text: r.description },
    help: { text: r.fix },
    defaultConfiguration: { level: r.severity },
    properties: { neutralisedByRender: r.neutralisedByRender, tags: ['security', 'isolation'] },
  }));
  const results = findings.map((f) => {
    const merged = f.file === MERGED_MODEL_FILE;
    const artifact = merged ? mergedLocation : artifactLocation(f.file, baseDir, cwd);
    const uri = artifact?.uri;
    const location: Record<string, unknown> = {};
    if (artifact !== undefined) {
      const physicalLocation: Record<string, unknown> = { artifactLocation: artifact };
      if (!merged && f.line !== undefined) {
        physicalLocation.region = { startLine: f.line, ...(f.column !== undefined ? { startColumn: f.column } : {}) };
      }
      location.physicalLocation = physicalLocation;
    }
    if (f.service !== undefined) {
      location.logicalLocations = [{ name: f.service, fullyQualifiedName: `services.${f.service}`, kind: 'object' }];
    }
    const index = ruleIndex.get(f.ruleId);
    return {
      ruleId: f.ruleId,
      ...(index !== undefined ? { ruleIndex: index } : {}),
      level: f.severity === 'error' ? 'error' : f.severity === 'warning' ? 'warning' : 'note',
      message: { text: `${f.message}. Fix: ${f.fix}` },
      ...(Object.keys(location).length > 0 ? { locations: [location] } : {}),
      partialFingerprints: { 'sandstackFinding/v1': fingerprint(f, uri ?? MERGED_MODEL_FILE) },
      properties: {
        ...(f.service !== undefined ? { service: f.service } : {}),
        subject: f.subject,
        neutralisedByRender: f.neutralisedByRender,
        ...(merged ? { source: 'merged model' } : {}),
      },
    };
  });
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'sandstack',
            ...(opts.informationUri ? { informationUri: opts.informationUri } : {}),
            version: toolVersion,
            rules,
          },
        },
        originalUriBaseIds: { [SRCROOT]: { uri: `${pathToFileURL(baseDir).href.replace(/\/$/, '')}/` } },
        results,
      },
    ],
  };
}
