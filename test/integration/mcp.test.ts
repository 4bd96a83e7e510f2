/**
 * `sandstack mcp` started as a child process and driven with the MCP SDK's real client over stdio,
 * against the real engine and the demo stack: the tools and their schemas, the loop (up, status,
 * logs, exec, gate --fresh, test, verify, evidence, escalate, destroy) with every structuredContent
 * validated against its outputSchema (the client does that, and fails the call otherwise), progress
 * notifications, cancellation of a gate --fresh mid-start with nothing left behind, tool errors for
 * bad input and another instance's id, and a planted secret found in no result.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cleanEnv, docker, labelled, makeSandbox, until, type Sandbox } from './helpers.js';

const PLANTED = 'planted-mcp-token-9f3a1c77e2';

let sb: Sandbox;
let client: Client;
let stderr = '';
/** Every text and structuredContent a tool returned, for the secret check. */
const seen: string[] = [];

async function call(name: string, args: Record<string, unknown> = {}, opts: { onprogress?: (p: Progress) => void; signal?: AbortSignal; timeout?: number } = {}): Promise<CallToolResult> {
  const r = (await client.callTool({ name, arguments: args }, undefined, { timeout: opts.timeout ?? 600_000, resetTimeoutOnProgress: true, ...opts })) as CallToolResult;
  seen.push(JSON.stringify(r));
  return r;
}
const text = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');

beforeAll(async () => {
  sb = await makeSandbox();
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'mcp'],
    cwd: sb.repo,
    env: { ...cleanEnv(), SANDSTACK_HOME: sb.home, PLANTED_API_TOKEN: PLANTED, NO_COLOR: '1' },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  client = new Client({ name: 'sandstack-test', version: '0.0.0' });
  await client.connect(transport);
}, 120_000);

afterAll(async () => {
  await client?.close().catch(() => undefined);
  await sb?.cleanup();
});

describe('sandstack mcp over stdio', () => {
  it('lists the tools with input and output schemas; new and ls only when enabled', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    expect(names).toEqual(['destroy', 'down', 'escalate', 'evidence', 'exec', 'gate', 'lint', 'logs', 'ports', 'status', 'test', 'up', 'verify']);
    for (const t of tools) {
      expect(t.inputSchema.type, t.name).toBe('object');
      expect(t.outputSchema?.type, t.name).toBe('object');
      expect(t.description, t.name).toBeTruthy();
    }
    const exec = tools.find((t) => t.name === 'exec')!;
    expect(exec.inputSchema.required).toEqual(expect.arrayContaining(['service', 'command']));
    expect(tools.find((t) => t.name === 'status')!.annotations?.readOnlyHint).toBe(true);
    expect(tools.find((t) => t.name === 'destroy')!.annotations?.destructiveHint).toBe(true);
    expect(stderr).toContain('serving instance demo');
  });

  it('bad input and another instance id are tool errors with a sandstack code and hint; the server keeps serving', async () => {
    const bad = await call('logs', { tail: 'many' });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toMatch(/^error \[SANDSTACK_USAGE\]: .*tail/s);
    expect(text(bad)).toContain('hint:');
    const other = await call('status', { instance: 'someone-else' });
    expect(other.isError).toBe(true);
    expect(text(other)).toContain('SANDSTACK_OUT_OF_SCOPE');
    expect(text(other)).toContain('bound to instance demo');
    const missing = await call('exec', { service: 'backend' });
    expect(missing.isError).toBe(true);
    expect(text(missing)).toContain('SANDSTACK_USAGE');
    // Not started yet: status answers, logs says how to start.
    const st = await call('status');
    expect(st.isError).toBeFalsy();
    expect((st.structuredContent as { instance: { id: string } }).instance.id).toBe('demo');
    const logs = await call('logs');
    expect(logs.isError).toBe(true);
    expect(text(logs)).toContain('SANDSTACK_NOT_RUNNING');
  });

  it('up reports progress and passes the gate; status, ports, logs and exec see the running stack', async () => {
    const progress: string[] = [];
    const up = await call('up', {}, { onprogress: (p) => progress.push(p.message ?? '') });
    expect(up.isError, text(up)).toBeFalsy();
    const data = up.structuredContent as { gate: { passed: boolean }; services: { name: string; state: string }[] };
    expect(data.gate.passed).toBe(true);
    expect(progress).toEqual(expect.arrayContaining(['config ...', 'start ...']));
    expect(progress.some((m) => /^healthy passed/.test(m))).toBe(true);

    const st = (await call('status')).structuredContent as { instance: { state: string }; services: { name: string; state: string }[] };
    expect(st.instance.state).toBe('running');
    const ports = (await call('ports')).structuredContent as { ports: { service: string; url: string }[] };
    expect(ports.ports.find((p) => p.service === 'backend')?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const logs = (await call('logs', { service: 'db', tail: 5 })).structuredContent as { services: { service: string; lines: string[] }[] };
    expect(logs.services.map((s) => s.service)).toEqual(['db']);
    expect(logs.services[0]!.lines.length).toBeGreaterThan(0);
    expect(logs.services[0]!.lines.length).toBeLessThanOrEqual(5);

    const ex = await call('exec', { service: 'db', command: ['sh', '-c', `echo hello; echo "pw=$POSTGRES_PASSWORD"; echo ${PLANTED}; exit 3`] });
    expect(ex.isError, text(ex)).toBeFalsy();
    const exData = ex.structuredContent as { exitCode: number; output: string; truncated: boolean };
    expect(exData.exitCode).toBe(3);
    expect(exData.output).toContain('hello');
    // The generated database password and the planted token come back redacted.
    expect(exData.output).toMatch(/pw=\[REDACTED:[A-Z_]+\]/);
    expect(exData.output).toContain('[REDACTED:PLANTED_API_TOKEN]');
    expect(exData.truncated).toBe(false);
    // Two changing calls at once on the instance run one after the other, in order.
    const first = call('exec', { service: 'db', command: ['sleep', '2'] }).then(() => Date.now());
    const second = call('exec', { service: 'db', command: ['true'] }).then(() => Date.now());
    const [firstDone, secondDone] = await Promise.all([first, second]);
    expect(secondDone).toBeGreaterThanOrEqual(firstDone);
    const slow = await call('exec', { service: 'backend', command: ['sleep', '30'], timeoutSeconds: 1 });
    expect(slow.isError).toBe(true);
    expect(text(slow)).toContain('SANDSTACK_EXEC_FAILED');
  }, 600_000);

  it('a gate with fresh: true cancelled mid-start tears its throwaway instance down', async () => {
    const controller = new AbortController();
    const messages: string[] = [];
    const pending = call('gate', { fresh: true }, {
      signal: controller.signal,
      onprogress: (p) => {
        messages.push(p.message ?? '');
        // Once a first service of the throwaway instance is up: mid-start, with something to tear down.
        if (/^ready [1-9]/.test(p.message ?? '')) controller.abort();
      },
    });
    await expect(pending).rejects.toThrow();
    const id = messages.map((m) => /throwaway instance (\S+)/.exec(m)?.[1]).find(Boolean);
    expect(id, messages.join('\n')).toMatch(/^demo-gate-/);
    // The server tears it down after the cancellation; the next call on the instance waits for it.
    await until('the cancelled throwaway instance is gone', async () => {
      const l = await labelled(id!);
      return l.containers + l.volumes + l.networks === 0 ? true : undefined;
    }, 120_000, 500);
    const st = await call('status');
    expect(st.isError).toBeFalsy();
  }, 600_000);

  it('gate fresh, test, verify (with progress), evidence, escalate: each result matches its schema', async () => {
    const fresh = await call('gate', { fresh: true });
    expect(fresh.isError, text(fresh)).toBeFalsy();
    expect((fresh.structuredContent as { passed: boolean }).passed).toBe(true);

    const test = await call('test');
    expect(test.isError, text(test)).toBeFalsy();
    expect((test.structuredContent as { passed: boolean }).passed).toBe(true);

    let notifications = 0;
    const verify = await call('verify', {}, { onprogress: () => notifications++ });
    expect(verify.isError, text(verify)).toBeFalsy();
    expect((verify.structuredContent as { passed: boolean }).passed).toBe(true);
    expect(notifications).toBeGreaterThan(5);

    const ev = await call('evidence');
    expect(ev.isError, text(ev)).toBeFalsy();
    const evData = ev.structuredContent as { dir: string; summaryMarkdown: string };
    expect(evData.summaryMarkdown).toContain('demo');
    expect(path.isAbsolute(evData.dir)).toBe(true);

    // The bundle's files and the rendered model as resources.
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri).sort()).toEqual(['sandstack://demo/evidence/latest/gate-report.json', 'sandstack://demo/evidence/latest/report.html', 'sandstack://demo/evidence/latest/summary.md', 'sandstack://demo/model']);
    const summary = await client.readResource({ uri: 'sandstack://demo/evidence/latest/summary.md' });
    seen.push(JSON.stringify(summary));
    expect(summary.contents[0]).toMatchObject({ mimeType: 'text/markdown', text: evData.summaryMarkdown });
    const model = await client.readResource({ uri: 'sandstack://demo/model' });
    seen.push(JSON.stringify(model));
    expect(String(model.contents[0]!.text)).toContain('services:');
    expect(String(model.contents[0]!.text)).toContain('[REDACTED:');
    await expect(client.readResource({ uri: 'sandstack://someone-else/model' })).rejects.toThrow(/SANDSTACK_OUT_OF_SCOPE|bound to instance demo/);

    const esc = await call('escalate', {
      title: 'Need a decision on the schema',
      blocked: 'the migration',
      whyItMatters: 'data loss',
      options: ['keep the column', 'drop it'],
      recommended: 'keep the column',
      decisionNeeded: 'which option',
    });
    expect(esc.isError, text(esc)).toBeFalsy();
    expect((esc.structuredContent as { markdown: string }).markdown).toMatch(/\.md$/);
    const tooFew = await call('escalate', { title: 't', blocked: 'b', whyItMatters: 'w', options: ['one'], recommended: 'r', decisionNeeded: 'd' });
    expect(tooFew.isError).toBe(true);
  }, 1_200_000);

  it('lint reports findings; down stops the services and keeps the data', async () => {
    const lint = await call('lint');
    expect(lint.isError, text(lint)).toBeFalsy();
    // The demo's compose file keeps a fixed container name and host ports on purpose (sandstack neutralises them).
    const found = lint.structuredContent as { summary: { errors: number }; findings: { ruleId: string; severity: string }[] };
    expect(found.summary.errors).toBe(found.findings.filter((f) => f.severity === 'error').length);
    expect(found.findings.length).toBeGreaterThan(0);
    expect(text(lint)).toContain(found.findings[0]!.ruleId);
    const down = await call('down');
    expect(down.isError, text(down)).toBeFalsy();
    expect((down.structuredContent as { stopped: string[] }).stopped).toEqual(expect.arrayContaining(['backend', 'db']));
    const l = await labelled('demo');
    expect(l.containers).toBe(0);
    expect(l.volumes).toBeGreaterThan(0);
  }, 300_000);

  it('destroy of the local instance needs confirm: true, then leaves nothing; no result carried a secret', async () => {
    const refused = await call('destroy');
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain('SANDSTACK_CONFIRMATION_REQUIRED');
    expect(await labelled('demo')).not.toEqual({ containers: 0, volumes: 0, networks: 0 });

    // The generated secret values, read before destroy removes them.
    const { instancePaths } = await import('../../src/state/paths.js');
    const { loadSecrets } = await import('../../src/secrets/secrets.js');
    const secrets = await loadSecrets(instancePaths(sb.home, 'demo').dir);
    expect(secrets.length).toBeGreaterThan(0);

    const done = await call('destroy', { confirm: true });
    expect(done.isError, text(done)).toBeFalsy();
    expect((done.structuredContent as { verified: Record<string, number> }).verified).toEqual({ containers: 0, volumes: 0, networks: 0 });
    expect(await labelled('demo')).toEqual({ containers: 0, volumes: 0, networks: 0 });

    const all = seen.join('\n');
    expect(all).toContain('[REDACTED');
    expect(all).not.toContain(PLANTED);
    for (const s of secrets) expect(all.includes(s.value), `secret ${s.name} in a tool result`).toBe(false);
    // The evidence written through the tools holds no secret either.
    const evidenceRoot = path.join(sb.home, 'evidence');
    const files = await readdir(evidenceRoot, { recursive: true }).catch(() => [] as string[]);
    for (const f of files) {
      const body = await readFile(path.join(evidenceRoot, String(f)), 'utf8').catch(() => '');
      expect(body.includes(PLANTED), String(f)).toBe(false);
    }
    void docker;
  }, 600_000);
});

describe('sandstack mcp --all-instances --allow-new', () => {
  it('offers ls and new, and accepts another instance id', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'mcp', '--all-instances', '--allow-new'],
      cwd: sb.repo,
      env: { ...cleanEnv(), SANDSTACK_HOME: sb.home, NO_COLOR: '1' },
      stderr: 'pipe',
    });
    const supervisor = new Client({ name: 'sandstack-supervisor', version: '0.0.0' });
    await supervisor.connect(transport);
    try {
      const names = (await supervisor.listTools()).tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining(['ls', 'new']));
      const ls = (await supervisor.callTool({ name: 'ls', arguments: {} })) as CallToolResult;
      expect(ls.isError, JSON.stringify(ls.content)).toBeFalsy();
      expect(Array.isArray((ls.structuredContent as { instances: unknown[] }).instances)).toBe(true);
      const other = (await supervisor.callTool({ name: 'ports', arguments: { instance: 'someone-else' } })) as CallToolResult;
      expect(other.isError).toBeFalsy();
      expect((other.structuredContent as { instance: { id: string } }).instance.id).toBe('someone-else');
    } finally {
      await supervisor.close();
    }
  }, 120_000);
});
