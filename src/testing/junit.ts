/** Parses JUnit XML (the common Ant/Surefire/pytest shape: testsuites > testsuite > testcase). */
import { XMLParser } from 'fast-xml-parser';
import type { JUnitSummary } from './model.js';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  isArray: (name) => ['testsuite', 'testcase', 'failure', 'error', 'skipped'].includes(name),
  processEntities: true,
  parseAttributeValue: false,
});

type Node = Record<string, unknown>;

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'object') {
    const o = v as Node;
    return String(o.message ?? o['#text'] ?? '');
  }
  return String(v);
}

function suitesOf(doc: Node): Node[] {
  const out: Node[] = [];
  const walk = (n: Node) => {
    for (const s of (n.testsuite as Node[] | undefined) ?? []) {
      out.push(s);
      walk(s); // nested suites
    }
  };
  if (doc.testsuites) walk(doc.testsuites as Node);
  walk(doc);
  return out;
}

export function emptySummary(): JUnitSummary {
  return { tests: 0, passed: 0, failed: 0, skipped: 0, timeSeconds: 0, failures: [], cases: [], files: [] };
}

/** Adds the test cases of one JUnit document to `into`. Throws on XML that is not JUnit. */
export function addJUnit(into: JUnitSummary, xml: string, file: string): JUnitSummary {
  const doc = parser.parse(xml) as Node;
  const suites = suitesOf(doc);
  if (suites.length === 0) throw new Error(`${file} has no <testsuite> element`);
  for (const suite of suites) {
    const suiteName = String(suite.name ?? 'suite');
    for (const tc of (suite.testcase as Node[] | undefined) ?? []) {
      const name = String(tc.name ?? '(unnamed)');
      const timeSeconds = Number(tc.time ?? 0) || 0;
      const failure = (tc.failure as unknown[] | undefined)?.[0];
      const error = (tc.error as unknown[] | undefined)?.[0];
      const skipped = tc.skipped !== undefined;
      into.tests++;
      into.timeSeconds += timeSeconds;
      if (failure !== undefined || error !== undefined) {
        into.failed++;
        const raw = failure ?? error;
        const message = (text(raw) || (typeof raw === 'object' ? text((raw as Node)['#text']) : '')).trim() || 'failed';
        into.failures.push({ suite: String(tc.classname ?? suiteName), name, message, kind: failure !== undefined ? 'failure' : 'error' });
        into.cases.push({ suite: String(tc.classname ?? suiteName), name, status: 'failed', timeSeconds });
      } else if (skipped) {
        into.skipped++;
        into.cases.push({ suite: String(tc.classname ?? suiteName), name, status: 'skipped', timeSeconds });
      } else {
        into.passed++;
        into.cases.push({ suite: String(tc.classname ?? suiteName), name, status: 'passed', timeSeconds });
      }
    }
  }
  into.files.push(file);
  return into;
}
