/**
 * Probes declared in sandstack.yaml, run as soon as their service is ready (see checks.ts): HTTP (a published port on
 * 127.0.0.1, expected status, JSON assertions), exec (a command in a container), tcp (a connect from
 * inside the stack network) and command (a shell command on the host). Each is retried until it
 * passes, its own timeout, or the gate deadline; a failure reports the last thing it saw.
 */
import path from 'node:path';
import type Docker from 'dockerode';
import { execa } from 'execa';
import type { ProbeSpec } from '../config/schema.js';
import { execInContainer, instanceContainers } from '../engine/docker.js';
import { SandstackError } from '../errors.js';
import type { Lease } from '../state/registry.js';
import { reachPort } from '../ports/leases.js';

export interface ProbeResult {
  name: string;
  kind: 'http' | 'exec' | 'tcp' | 'command';
  target: string;
  passed: boolean;
  attempts: number;
  durationMs: number;
  /** What the last attempt observed (status, values, exit code, output). */
  observed: string;
}

export interface ProbeEnv {
  docker: Docker;
  instanceId: string;
  leases: Lease[];
  projectDir: string;
  /** Environment for host command probes (the instance's SANDSTACK_* variables added). */
  env: Record<string, string | undefined>;
  deadline: number;
  signal?: AbortSignal;
}

interface Attempt {
  passed: boolean;
  observed: string;
}

/** Reads `a.b.0.c` from a JSON value. */
export function jsonPath(value: unknown, p: string): unknown {
  let cur: unknown = value;
  for (const part of p.split('.')) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur) && part === 'length') cur = cur.length;
    else if (typeof cur === 'object' && Object.hasOwn(cur, part)) cur = (cur as Record<string, unknown>)[part];
    else return undefined;
  }
  return cur;
}

type JsonAssertion = NonNullable<ProbeSpec['http']>['json'][number];

/** Checks the assertions; returns the failed ones as readable lines (empty when all pass). */
export function checkJson(body: unknown, assertions: JsonAssertion[]): string[] {
  const failed: string[] = [];
  for (const a of assertions) {
    const v = jsonPath(body, a.path);
    const shown = v === undefined ? 'missing' : JSON.stringify(v);
    if (a.exists !== undefined && (v !== undefined) !== a.exists) failed.push(`${a.path} is ${shown}, expected it ${a.exists ? 'to exist' : 'to be absent'}`);
    if (a.equals !== undefined && v !== a.equals) failed.push(`${a.path} is ${shown}, expected ${JSON.stringify(a.equals)}`);
    if (a.gte !== undefined && !(typeof v === 'number' && v >= a.gte)) failed.push(`${a.path} is ${shown}, expected >= ${a.gte}`);
    if (a.lte !== undefined && !(typeof v === 'number' && v <= a.lte)) failed.push(`${a.path} is ${shown}, expected <= ${a.lte}`);
  }
  return failed;
}

function describe(p: ProbeSpec): { kind: ProbeResult['kind']; target: string } {
  if (p.http) return { kind: 'http', target: `${p.http.method} ${p.http.service}:${p.http.port}${p.http.path}` };
  if (p.exec) return { kind: 'exec', target: `${p.exec.service}: ${p.exec.command.join(' ')}` };
  if (p.tcp) return { kind: 'tcp', target: `${p.tcp.from ?? p.tcp.service} -> ${p.tcp.service}:${p.tcp.port}` };
  return { kind: 'command', target: p.command!.run };
}

/** Probes that cannot work with this config are refused before anything starts. */
export function validateProbes(probes: ProbeSpec[], leases: Lease[], services: string[]): void {
  for (const p of probes) {
    const svc = p.http?.service ?? p.exec?.service ?? p.tcp?.service;
    for (const s of [svc, p.tcp?.from]) {
      if (s !== undefined && !services.includes(s)) {
        throw new SandstackError('SANDSTACK_UNKNOWN_SERVICE', `Probe "${p.name}" names service "${s}", which the compose project does not start.`, {
          hint: `Services: ${services.join(', ')}.`,
        });
      }
    }
    if (p.http && !leases.some((l) => l.service === p.http!.service && l.containerPort === p.http!.port && l.protocol === 'tcp')) {
      throw new SandstackError('SANDSTACK_CONFIG_INVALID', `Probe "${p.name}" sends HTTP to ${p.http.service}:${p.http.port}, which is not published.`, {
        hint: `Add { service: ${p.http.service}, port: ${p.http.port} } under ports.publish, or use an exec or tcp probe.`,
      });
    }
  }
}

async function runningContainer(env: ProbeEnv, service: string): Promise<string> {
  const c = (await instanceContainers(env.docker, env.instanceId)).find((x) => x.service === service && x.state === 'running');
  if (!c) throw new Error(`service ${service} has no running container`);
  return c.id;
}

async function attempt(p: ProbeSpec, env: ProbeEnv, perAttemptMs: number): Promise<Attempt> {
  if (p.http) {
    const h = p.http;
    const lease = env.leases.find((l) => l.service === h.service && l.containerPort === h.port && l.protocol === 'tcp')!;
    const url = `http://127.0.0.1:${reachPort(lease)}${h.path}`;
    try {
      const r = await fetch(url, { method: h.method, signal: AbortSignal.timeout(perAttemptMs), redirect: 'manual' });
      const text = await r.text();
      if (r.status !== h.expectStatus) return { passed: false, observed: `HTTP ${r.status} from ${url} (expected ${h.expectStatus}): ${text.slice(0, 200)}` };
      if (h.json.length === 0) return { passed: true, observed: `HTTP ${r.status}` };
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return { passed: false, observed: `HTTP ${r.status}, but the body is not JSON: ${text.slice(0, 200)}` };
      }
      const failed = checkJson(body, h.json);
      return failed.length ? { passed: false, observed: failed.join('; ') } : { passed: true, observed: `HTTP ${r.status}; ${h.json.map((a) => `${a.path} = ${JSON.stringify(jsonPath(body, a.path))}`).join(', ')}` };
    } catch (e) {
      return { passed: false, observed: `${url}: ${(e as Error).message}` };
    }
  }
  if (p.exec || p.tcp) {
    const service = p.exec ? p.exec.service : (p.tcp!.from ?? p.tcp!.service);
    const cmd = p.exec
      ? p.exec.command
      : ['timeout', String(Math.max(1, Math.floor(perAttemptMs / 1000))), 'bash', '-c', 'exec 3<>"/dev/tcp/$0/$1"', p.tcp!.service, String(p.tcp!.port)];
    try {
      const r = await execInContainer(env.docker, await runningContainer(env, service), cmd, perAttemptMs + 2000);
      const out = r.output.split('\n').slice(-5).join(' | ');
      return { passed: r.exitCode === 0, observed: `exit ${r.exitCode}${out ? `: ${out}` : ''}` };
    } catch (e) {
      return { passed: false, observed: (e as Error).message };
    }
  }
  const c = p.command!;
  const r = await execa(c.run, { shell: true, cwd: path.resolve(env.projectDir, c.cwd ?? '.'), env: env.env, reject: false, timeout: perAttemptMs, stdin: 'ignore', all: true });
  const out = String(r.all ?? '').trim().split('\n').slice(-5).join(' | ');
  return { passed: r.exitCode === 0, observed: r.timedOut ? `timed out after ${perAttemptMs} ms` : `exit ${r.exitCode}${out ? `: ${out}` : ''}` };
}

export async function runProbe(p: ProbeSpec, env: ProbeEnv): Promise<ProbeResult> {
  const { kind, target } = describe(p);
  const t0 = Date.now();
  const until = Math.min(env.deadline, t0 + p.timeoutSeconds * 1000);
  let attempts = 0;
  let last: Attempt = { passed: false, observed: 'not run' };
  for (;;) {
    if (env.signal?.aborted) throw new SandstackError('SANDSTACK_INTERRUPTED', `Interrupted while probing ${p.name}.`);
    attempts++;
    last = await attempt(p, env, Math.max(1000, Math.min(5000, until - Date.now())));
    if (last.passed || Date.now() + 500 >= until) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return { name: p.name, kind, target, passed: last.passed, attempts, durationMs: Date.now() - t0, observed: last.observed };
}

/** The error of failed probes (SANDSTACK_PROBE_FAILED naming every failed one), or undefined. */
export function probeFailure(results: ProbeResult[]): SandstackError | undefined {
  const failed = results.filter((r) => !r.passed);
  if (failed.length === 0) return undefined;
  return new SandstackError('SANDSTACK_PROBE_FAILED', `${failed.length} of ${results.length} probe(s) failed: ${failed.map((f) => `${f.name} (${f.target}): ${f.observed}`).join('; ')}`, {
    hint: 'The stack started but does not answer as declared; check the service logs (sandstack logs) and the probe definitions in sandstack.yaml.',
    details: { probes: results },
  });
}

/** Runs all probes (in parallel); throws SANDSTACK_PROBE_FAILED naming every failed one. */
export async function runProbes(probes: ProbeSpec[], env: ProbeEnv): Promise<ProbeResult[]> {
  const results = await Promise.all(probes.map((p) => runProbe(p, env)));
  const failure = probeFailure(results);
  if (failure) throw failure;
  return results;
}
