/**
 * SARIF 2.1.0 output of compose lint findings (for GitHub code scanning and other SARIF viewers).
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { MERGED_MODEL_FILE } from './lint.js';
import { RULES, type Finding } from './rules.js';

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';

export interface SarifOptions {
  /** Findings' absolute file paths are made relative to this folder (default: the current directory). */
  baseDir?: string;
  /** Shown as the tool's informationUri. */
  informationUri?: string;
  /**
   * Where merged-model findings (which have no file of their own) are located, e.g. the main
   * compose file; without it they carry only a logical location (the service).
   */
  mergedModelUri?: string;
}

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

/** A relative, forward-slashed, percent-encoded URI reference for a file. */
function artifactUri(file: string, baseDir: string): string {
  const rel = path.isAbsolute(file) ? path.relative(baseDir, file) : file;
  return rel.split(/[\\/]/).map(encodeURIComponent).join('/');
}

function fingerprint(f: Finding, uri: string): string {
  return createHash('sha256').update([f.ruleId, f.service ?? '', f.subject, uri].join('\u0000')).digest('hex').slice(0, 32);
}

/** Converts findings to a SARIF 2.1.0 log with one run; every rule of the catalogue is listed. */
export function toSarif(findings: Finding[], toolVersion: string, opts: SarifOptions = {}): object {
  const baseDir = opts.baseDir ?? process.cwd();
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
    const uri = merged ? opts.mergedModelUri : artifactUri(f.file, baseDir);
    const location: Record<string, unknown> = {};
    if (uri !== undefined) {
      const physicalLocation: Record<string, unknown> = { artifactLocation: { uri } };
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
        results,
      },
    ],
  };
}
