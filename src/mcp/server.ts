/**
 * `sandstack mcp`: the agent's interface, an MCP server (official TypeScript SDK) bound to the
 * instance of the worktree it was started in. Every tool calls the same core function as the CLI
 * command of the same name and returns readable text plus `structuredContent` (the `--json` shape,
 * checked against the tool's declared outputSchema). Like the CLI, this is a presentation layer:
 * it maps errors to tool errors (code, message, hint), progress events to MCP progress
 * notifications, MCP cancellation to the operation's AbortSignal, and redacts every secret value
 * the instance knows of from everything it returns.
 */
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, type CallToolResult, type ReadResourceResult, type ServerNotification, type ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import pLimit, { type LimitFunction } from 'p-limit';
import * as z from 'zod';
import { isSandstackError, SandstackError } from '../errors.js';
import { gatherSecrets } from '../evidence/bundle.js';
import { redactText, redactValue, type Secret } from '../evidence/redact.js';
import { gateText, readinessLine } from '../cli/output.js';
import { createContext, type Context, type ProgressEvent } from '../lifecycle/context.js';
import { findRecord, resolveInstance } from '../lifecycle/instance.js';
import { loadSecrets } from '../secrets/secrets.js';
import { instancePaths } from '../state/paths.js';
import { sandstackVersion } from '../version.js';

export interface McpServerOptions {
  /** The worktree (or project folder) the server was started in. */
  cwd: string;
  configFile?: string;
  /** `--instance` given to `sandstack mcp`: the instance to bind to instead of the worktree's. */
  instance?: string;
  /** Lift the scope: tools accept any instance id, and `ls` is offered. */
  allInstances?: boolean;
  /** Offer `new` (a sibling worktree for a sub-task). */
  allowNew?: boolean;
  env?: NodeJS.ProcessEnv;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** A loose object schema: the named keys are checked, anything else the `--json` shape has passes. */
const loose = <T extends z.ZodRawShape>(shape: T) => z.looseObject(shape);
const instanceRef = loose({ id: z.string() });
const gateReport = loose({ passed: z.boolean(), mode: z.enum(['up', 'check', 'fresh']), instance: instanceRef, stages: z.array(loose({ name: z.string(), status: z.string() })) });
const errorShape = loose({ code: z.string(), message: z.string(), hint: z.string().optional() });
const instanceArg = z.string().optional().describe("The instance id; default and (without --all-instances) only allowed value: the server's own instance");

/** The text of a tool error: code, message, hint (what an agent needs to act on it). */
function errorText(e: unknown): string {
  if (isSandstackError(e)) return `error [${e.code}]: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`;
  return `error [SANDSTACK_INTERNAL]: ${(e as Error)?.message ?? String(e)}\nhint: this is a bug in sandstack; please report it with the tool call that caused it.`;
}

function errorJson(e: unknown): z.infer<typeof errorShape> {
  return isSandstackError(e) ? { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } : { code: 'SANDSTACK_INTERNAL', message: (e as Error)?.message ?? String(e) };
}

/** A progress event as one line (what the CLI prints on stderr). */
function progressLine(e: ProgressEvent): string | undefined {
  switch (e.type) {
    case 'step':
    case 'notice':
      return e.message;
    case 'stage':
      return e.status === 'running' ? `${e.name} ...` : `${e.name} ${e.status}${e.durationMs !== undefined ? ` ${(e.durationMs / 1000).toFixed(1)}s` : ''}${e.message ? ` — ${e.message}` : ''}`;
    case 'services':
      return readinessLine(e);
    default:
      return undefined;
  }
}

export interface SandstackMcp {
  server: McpServer;
  /** The instance the server is bound to. */
  instanceId: string;
}

export async function createMcpServer(opts: McpServerOptions): Promise<SandstackMcp> {
  const env = opts.env ?? process.env;
  const base = createContext({ cwd: opts.cwd, configFile: opts.configFile, instanceFlag: opts.instance, env });
  const bound = await resolveInstance(base);
  const boundId = bound.identity.id;
  const server = new McpServer(
    { name: 'sandstack', version: sandstackVersion() },
    {
      instructions:
        `sandstack runs this worktree's Docker Compose stack as instance ${boundId}: isolated (own ports on 127.0.0.1, volumes, networks), ` +
        'proved by the Startability Gate, tested inside the stack, with evidence a reviewer can trust. The loop: up, test, verify before a PR, ' +
        'escalate with the packet when blocked, destroy when done; never bypass the gate.',
    },
  );
  // Input the SDK rejects (schema validation) becomes a tool error with sandstack's code and a hint,
  // like every other error. The SDK has no hook for it: its error builder is replaced on the instance.
  (server as unknown as { createToolError: (message: string) => CallToolResult }).createToolError = (message: string) => ({
    isError: true,
    content: [{ type: 'text', text: errorText(new SandstackError('SANDSTACK_USAGE', message.replace(/^MCP error -?\d+: /, ''), { hint: "Call the tool with arguments that match its inputSchema (see tools/list)." })) }],
  });

  // One call at a time per instance for the tools that change it; the read-only ones run at once.
  const queues = new Map<string, LimitFunction>();
  const queueFor = (id: string) => {
    let q = queues.get(id);
    if (!q) queues.set(id, (q = pLimit(1)));
    return q;
  };

  /** The context of one tool call: the instance it may act on, its cancellation and progress. */
  const callContext = (instance: string | undefined, extra: Extra): Context => {
    if (instance !== undefined && instance !== boundId && !opts.allInstances) {
      throw new SandstackError('SANDSTACK_OUT_OF_SCOPE', `This sandstack MCP server is bound to instance ${boundId}; it does not act on ${instance}.`, {
        hint: 'Call it without `instance`, or start the server of that worktree (or `sandstack mcp --all-instances` for a supervising agent).',
      });
    }
    const token = extra._meta?.progressToken;
    let n = 0;
    const onProgress = (e: ProgressEvent) => {
      const message = token !== undefined ? progressLine(e) : undefined;
      if (message === undefined) return;
      void extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token!, progress: ++n, message } }).catch(() => undefined);
    };
    return createContext({ cwd: opts.cwd, configFile: opts.configFile, instanceFlag: instance ?? boundId, env, signal: extra.signal, onProgress, engine: base.engine });
  };

  /** Every secret value the instance knows of (its generated secrets, secret-like variables of the host and .env). */
  const secretsOf = async (ctx: Context): Promise<Secret[]> => {
    const id = ctx.instanceFlag ?? boundId;
    const inst = id === boundId ? bound : await resolveInstance(ctx).catch(() => bound);
    return [...(await loadSecrets(instancePaths(ctx.home, id).dir)), ...(await gatherSecrets(ctx, inst, undefined).catch(() => []))];
  };

  interface ToolSpec<I extends z.ZodRawShape, O extends z.ZodRawShape> {
    title: string;
    description: string;
    input: I;
    output: O;
    /** Changes the instance: serialised with the other such calls on it. */
    changes: boolean;
    readOnly?: boolean;
    destructive?: boolean;
    run: (ctx: Context, args: z.infer<z.ZodObject<I>>) => Promise<{ data: Record<string, unknown>; text: string }>;
  }

  const tool = <I extends z.ZodRawShape, O extends z.ZodRawShape>(name: string, spec: ToolSpec<I, O>) => {
    server.registerTool(
      name,
      {
        title: spec.title,
        description: spec.description,
        inputSchema: spec.input,
        outputSchema: z.looseObject(spec.output),
        annotations: { readOnlyHint: spec.readOnly ?? !spec.changes, destructiveHint: spec.destructive ?? false, openWorldHint: false },
      },
      // The SDK's callback type is generic over the schemas; the arguments it passes are validated.
      (async (args: z.infer<z.ZodObject<I>>, extra: Extra): Promise<CallToolResult> => {
        let ctx: Context | undefined;
        try {
          ctx = callContext((args as { instance?: string }).instance, extra);
          const c = ctx;
          const id = c.instanceFlag!;
          const r = spec.changes ? await queueFor(id)(() => spec.run(c, args)) : await spec.run(c, args);
          const secrets = await secretsOf(c);
          const data = redactValue(JSON.parse(JSON.stringify(r.data)) as Record<string, unknown>, secrets);
          return { content: [{ type: 'text', text: redactText(r.text, secrets).text }], structuredContent: data };
        } catch (e) {
          const secrets = ctx ? await secretsOf(ctx).catch(() => []) : [];
          return { isError: true, content: [{ type: 'text', text: redactText(errorText(e), secrets).text }] };
        }
      }) as never,
    );
  };

  const gateLine = (r: { passed: boolean; failure?: { message?: string } }) => `gate ${r.passed ? 'PASSED' : 'FAILED'}${r.failure?.message ? `: ${r.failure.message}` : ''}`;

  tool('status', {
    title: 'Instance status',
    description: "Reads this instance's state: services (state, health, published URLs), expiry, observability links, data. Changes nothing.",
    input: { instance: instanceArg },
    output: { instance: loose({ id: z.string(), state: z.string(), kind: z.string() }), services: z.array(loose({ name: z.string(), state: z.string() })) },
    changes: false,
    run: async (ctx) => {
      const { status } = await import('../lifecycle/operations.js');
      const r = await status(ctx);
      const lines = [`instance ${r.instance.id} (${r.instance.kind}) ${r.instance.state}`, ...r.services.map((s) => `  ${s.name}: ${s.state}${s.health ? ` (${s.health})` : ''}${s.ports.map((p) => ` ${p.url ?? `${p.hostIp}:${p.host}`}`).join('')}`)];
      return { data: r as unknown as Record<string, unknown>, text: lines.join('\n') };
    },
  });

  tool('up', {
    title: 'Start the stack',
    description:
      "Builds (content-addressed images are reused) and starts this instance's stack, then runs the Startability Gate (on by default). Creates or updates containers, volumes, networks and port leases of this instance only. Reports progress stage by stage; cancelling rolls back what it started.",
    input: { instance: instanceArg, build: z.boolean().default(true).describe('Build images first (default true)'), gate: z.boolean().default(true).describe('Run the probes and isolation stages (default true)') },
    output: { instance: loose({ id: z.string(), state: z.string() }), services: z.array(loose({ name: z.string(), state: z.string() })), gate: gateReport },
    changes: true,
    run: async (ctx, a) => {
      const { up } = await import('../lifecycle/operations.js');
      const r = await up(ctx, { build: a.build, gate: a.gate });
      return { data: r as unknown as Record<string, unknown>, text: `${gateText(r.gate)}\nready in ${(r.timings.totalMs / 1000).toFixed(1)} s; ${r.services.map((s) => `${s.name} ${s.state}`).join(', ')}` };
    },
  });

  tool('down', {
    title: 'Stop the stack',
    description: "Stops and removes this instance's containers; keeps its volumes (data), secrets and port leases for the next up.",
    input: { instance: instanceArg },
    output: { instance: instanceRef, stopped: z.array(z.string()) },
    changes: true,
    destructive: true,
    run: async (ctx) => {
      const { down } = await import('../lifecycle/operations.js');
      const r = await down(ctx);
      return { data: r as unknown as Record<string, unknown>, text: r.stopped.length ? `stopped ${r.instance.id}: ${r.stopped.join(', ')} (volumes and ports kept)` : `instance ${r.instance.id} was not running` };
    },
  });

  tool('destroy', {
    title: 'Destroy the instance',
    description:
      "Removes everything of this instance: containers, volumes (its data), networks, its images, secrets and state, releases its ports, then verifies that nothing labelled with it remains. An interactive (local) instance needs confirm: true. A worktree made by `new` is removed too unless keepWorktree.",
    input: { instance: instanceArg, confirm: z.boolean().default(false).describe('Required (true) to destroy a local (interactive) instance'), keepWorktree: z.boolean().default(false) },
    output: { instance: instanceRef, removed: loose({ containers: z.array(z.string()), volumes: z.array(z.string()), networks: z.array(z.string()) }), verified: loose({ containers: z.number(), volumes: z.number(), networks: z.number() }) },
    changes: true,
    destructive: true,
    run: async (ctx, a) => {
      const { destroy } = await import('../lifecycle/operations.js');
      const inst = await resolveInstance(ctx);
      const { record } = await findRecord(ctx, inst.identity.id);
      const kind = record?.kind ?? inst.identity.kind;
      if (kind === 'local' && !a.confirm) {
        throw new SandstackError('SANDSTACK_CONFIRMATION_REQUIRED', `Instance ${inst.identity.id} is a local (interactive) instance: destroying it deletes its data.`, {
          hint: 'Call destroy again with confirm: true if that is intended, or use down to stop it and keep the data.',
        });
      }
      const r = await destroy(ctx, { keepWorktree: a.keepWorktree });
      return { data: r as unknown as Record<string, unknown>, text: `destroyed ${r.instance.id}: ${r.removed.containers.length} containers, ${r.removed.volumes.length} volumes, ${r.removed.networks.length} networks removed; verified: nothing labelled remains` };
    },
  });

  tool('gate', {
    title: 'Startability Gate',
    description:
      'Runs the Startability Gate. fresh: false checks the running instance (changes nothing); fresh: true starts a new throwaway instance of this worktree from scratch, gates it and tears it down (also when cancelled). The result says which stage failed and why.',
    input: { instance: instanceArg, fresh: z.boolean().default(false), build: z.boolean().default(true).describe('With fresh: build images first (default true)') },
    output: { passed: z.boolean(), report: gateReport, error: errorShape.optional() },
    changes: true,
    run: async (ctx, a) => {
      const { gateCheck, gateFresh } = await import('../gate/run.js');
      const { report, error } = a.fresh ? await gateFresh(ctx, { build: a.build }) : await gateCheck(ctx);
      if (error !== undefined && isSandstackError(error) && error.code === 'SANDSTACK_INTERRUPTED') throw error;
      return { data: { passed: report.passed, report, ...(error !== undefined ? { error: errorJson(error) } : {}) }, text: `${gateText(report)}\n${gateLine(report)}` };
    },
  });

  tool('test', {
    title: 'Run the tests in the stack',
    description: "Runs the test suites declared in sandstack.yaml inside this instance's running stack (unit and E2E), with JUnit results and artifacts. Starts one-off test containers; changes no service.",
    input: { instance: instanceArg },
    output: { passed: z.boolean(), totals: loose({ passed: z.number(), failed: z.number() }), dir: z.string() },
    changes: true,
    run: async (ctx) => {
      const { runTests } = await import('../testing/runner.js');
      const r = await runTests(ctx);
      return { data: r as unknown as Record<string, unknown>, text: `tests ${r.passed ? 'PASSED' : 'FAILED'}: ${r.totals.passed} passed, ${r.totals.failed} failed, ${r.totals.skipped} skipped; artifacts ${r.dir}` };
    },
  });

  tool('verify', {
    title: 'Verify before a PR',
    description:
      'The pre-PR loop on a new throwaway instance of this worktree: gate --fresh, the tests in that stack, teardown, and an evidence bundle. Leaves nothing running (also when cancelled).',
    input: { build: z.boolean().default(true) },
    output: { passed: z.boolean(), gate: gateReport, problems: z.array(loose({ step: z.string(), code: z.string(), message: z.string() })) },
    changes: true,
    run: async (ctx, a) => {
      const { verify } = await import('../verify/verify.js');
      const r = await verify(ctx, { build: a.build });
      const { error, ...data } = r;
      if (error !== undefined && isSandstackError(error) && error.code === 'SANDSTACK_INTERRUPTED') throw error;
      return {
        data: { ...data, ...(error !== undefined ? { error: errorJson(error) } : {}) } as Record<string, unknown>,
        text: `verify ${r.passed ? 'PASSED' : 'FAILED'}${r.problems.length ? `: ${r.problems.map((p) => `${p.step}: ${p.message.split('\n')[0]}`).join('; ')}` : ''}${r.evidence ? `\nevidence: ${r.evidence.summary}` : ''}`,
      };
    },
  });

  tool('evidence', {
    title: 'Evidence bundle',
    description: "Writes this instance's evidence bundle from its latest gate and test runs (redacted; report.html, summary.md, manifest) and returns its path and summary.",
    input: { instance: instanceArg },
    output: { dir: z.string(), summary: z.string(), report: z.string(), summaryMarkdown: z.string(), manifest: loose({ result: loose({ passed: z.boolean().nullable().optional() }) }) },
    changes: true,
    run: async (ctx) => {
      const { writeEvidence } = await import('../evidence/bundle.js');
      const { readFile } = await import('node:fs/promises');
      const inst = await resolveInstance(ctx);
      const r = await writeEvidence(ctx, { inst });
      const md = await readFile(r.summaryFile, 'utf8');
      return { data: { dir: r.dir, summary: r.summaryFile, report: r.htmlFile, summaryMarkdown: md, manifest: r.manifest }, text: md };
    },
  });

  tool('logs', {
    title: 'Service logs',
    description: "Reads the last log lines of this instance's containers (one service, or all), optionally only those of the last sinceSeconds. Changes nothing.",
    input: {
      instance: instanceArg,
      service: z.string().optional(),
      tail: z.number().int().min(1).max(5000).default(100),
      sinceSeconds: z.number().int().min(1).optional(),
    },
    output: { instance: instanceRef, services: z.array(loose({ service: z.string(), container: z.string(), lines: z.array(z.string()) })) },
    changes: false,
    run: async (ctx, a) => {
      const { logTail } = await import('../lifecycle/workspace.js');
      const r = await logTail(ctx, { service: a.service, tail: a.tail, sinceSeconds: a.sinceSeconds });
      return { data: r as unknown as Record<string, unknown>, text: r.services.map((s) => [`== ${s.service} (${s.container}, ${s.state})`, ...s.lines].join('\n')).join('\n') || 'no containers' };
    },
  });

  tool('exec', {
    title: 'Run a command in a service',
    description: "Runs a command (an argument list, no shell, no terminal, no input) in a running container of this instance's service, within a time limit; returns its exit code and output (the last 64 KB). It can change what that container holds.",
    input: {
      instance: instanceArg,
      service: z.string(),
      command: z.array(z.string()).min(1).describe('The command and its arguments, e.g. ["python3", "-c", "print(1)"]'),
      timeoutSeconds: z.number().int().min(1).max(600).default(60),
    },
    output: { service: z.string(), exitCode: z.number(), output: z.string(), truncated: z.boolean() },
    changes: true,
    destructive: true,
    run: async (ctx, a) => {
      const { execInService } = await import('../lifecycle/workspace.js');
      const r = await execInService(ctx, { service: a.service, command: a.command, timeoutSeconds: a.timeoutSeconds });
      return { data: r as unknown as Record<string, unknown>, text: `${r.output}${r.truncated ? '\n(output truncated: its last 64 KB)' : ''}\nexit ${r.exitCode}` };
    },
  });

  tool('ports', {
    title: 'Leased ports',
    description: "Lists this instance's leased host ports (127.0.0.1) and URLs. Changes nothing.",
    input: { instance: instanceArg },
    output: { instance: instanceRef, ports: z.array(loose({ service: z.string(), container: z.number(), host: z.number() })) },
    changes: false,
    run: async (ctx) => {
      const { ports } = await import('../lifecycle/workspace.js');
      const r = await ports(ctx);
      return { data: r as unknown as Record<string, unknown>, text: r.ports.map((p) => `${p.service}:${p.container}/${p.protocol} -> ${p.url ?? `${p.hostIp}:${p.host}`}`).join('\n') || 'no leased ports' };
    },
  });

  tool('lint', {
    title: 'Guardrails lint',
    description: "Checks the worktree's compose files against sandstack's guardrails. With fix: true it rewrites the files where a fix is safe (the only case where it changes files).",
    input: { fix: z.boolean().default(false) },
    output: { summary: loose({ errors: z.number(), warnings: z.number() }), findings: z.array(loose({ ruleId: z.string() })) },
    changes: true,
    run: async (ctx, a) => {
      const { lint } = await import('../lifecycle/workspace.js');
      const { lintTextLines } = await import('../policy/check.js');
      const r = await lint(ctx, { fix: a.fix });
      return { data: { summary: r.summary, findings: r.findings, fixes: r.fixes, allowances: r.allowances, files: r.files } as unknown as Record<string, unknown>, text: lintTextLines(r).join('\n') };
    },
  });

  tool('escalate', {
    title: 'Escalate to a human',
    description:
      "Writes an escalation packet (the seeds' six fields) into this instance's evidence, with the latest evidence attached, for a human to decide. Use it when blocked instead of working around the gate.",
    input: {
      title: z.string().min(1),
      blocked: z.string().min(1).describe('What is blocked'),
      whyItMatters: z.string().min(1),
      options: z.array(z.string().min(1)).min(2).describe('At least two options'),
      recommended: z.string().min(1),
      decisionNeeded: z.string().min(1),
      evidence: z.array(z.string()).optional().describe('Paths of extra evidence files'),
    },
    output: { dir: z.string(), markdown: z.string(), json: z.string(), packet: loose({ title: z.string() }) },
    changes: true,
    run: async (ctx, a) => {
      const { escalate } = await import('../evidence/escalate.js');
      const r = await escalate(ctx, a);
      return { data: { dir: r.dir, markdown: r.markdown, json: r.json, packet: r.packet } as unknown as Record<string, unknown>, text: `escalation written: ${r.markdown}` };
    },
  });

  if (opts.allowNew) {
    tool('new', {
      title: 'New sibling worktree',
      description: 'Creates a sibling git worktree on a new branch for a sub-task, with its own instance id and port leases (start it with its own server). Creates a folder and a branch.',
      input: { branch: z.string().min(1), base: z.string().default('HEAD') },
      output: { instance: loose({ id: z.string(), worktree: z.string(), branch: z.string() }) },
      changes: true,
      run: async (ctx, a) => {
        const { newWorktree } = await import('../lifecycle/workspace.js');
        const r = await newWorktree({ ...ctx, instanceFlag: undefined }, a.branch, { base: a.base });
        return { data: r as unknown as Record<string, unknown>, text: `created instance ${r.instance.id} in ${r.instance.worktree} [${r.instance.branch}]` };
      },
    });
  }

  if (opts.allInstances) {
    tool('ls', {
      title: 'All instances',
      description: 'Lists every instance of this state home with its state and worktree (only with --all-instances). Changes nothing.',
      input: {},
      output: { instances: z.array(loose({ id: z.string(), state: z.string() })) },
      changes: false,
      run: async (ctx) => {
        const { listInstances } = await import('../lifecycle/status.js');
        const r = await listInstances(ctx);
        return { data: r as unknown as Record<string, unknown>, text: r.instances.map((i) => `${i.id} ${i.state} ${i.worktree}`).join('\n') || 'no instances' };
      },
    });
  }

  // Resources: the latest evidence bundle's files and the rendered model, at stable URIs an agent can
  // quote (sandstack://<instance>/evidence/latest/summary.md, sandstack://<instance>/model).
  const EVIDENCE_FILES: Record<string, string> = { 'summary.md': 'text/markdown', 'gate-report.json': 'application/json', 'report.html': 'text/html' };
  const scoped = (instance: string | string[] | undefined, extra: Extra): Context => callContext(Array.isArray(instance) ? instance[0] : instance, extra);
  const readAs = async (ctx: Context, uri: URL, mimeType: string, body: string): Promise<ReadResourceResult> => ({
    contents: [{ uri: uri.href, mimeType, text: redactText(body, await secretsOf(ctx)).text }],
  });
  /** A resource read that fails answers with sandstack's error text (code, message, hint). */
  const reading =
    (read: (uri: URL, vars: Record<string, string | string[]>, extra: Extra) => Promise<ReadResourceResult>) =>
    async (uri: URL, vars: Record<string, string | string[]>, extra: Extra): Promise<ReadResourceResult> => {
      try {
        return await read(uri, vars, extra);
      } catch (e) {
        throw new McpError(ErrorCode.InvalidParams, errorText(e));
      }
    };
  server.registerResource(
    'evidence',
    new ResourceTemplate('sandstack://{instance}/evidence/latest/{file}', {
      list: async () => ({
        resources: Object.entries(EVIDENCE_FILES).map(([file, mimeType]) => ({ uri: `sandstack://${boundId}/evidence/latest/${file}`, name: `${boundId} evidence ${file}`, mimeType })),
      }),
    }),
    { title: 'Latest evidence bundle', description: "Files of the instance's latest evidence bundle (summary.md, gate-report.json, report.html), redacted" },
    reading(async (uri, vars, extra) => {
      const ctx = scoped(vars.instance, extra);
      const file = String(vars.file);
      const mimeType = EVIDENCE_FILES[file];
      if (!mimeType) throw new SandstackError('SANDSTACK_USAGE', `No evidence file ${file}.`, { hint: `Evidence resources: ${Object.keys(EVIDENCE_FILES).join(', ')}.` });
      const { evidenceRoot, latestRunDir } = await import('../testing/runner.js');
      const { readFile } = await import('node:fs/promises');
      const inst = await resolveInstance(ctx);
      const dir = await latestRunDir(evidenceRoot(ctx, inst), inst.identity.id);
      const body = dir ? await readFile(`${dir}/${file}`, 'utf8').catch(() => undefined) : undefined;
      if (body === undefined) {
        throw new SandstackError('SANDSTACK_USAGE', `Instance ${inst.identity.id} has no ${file} in its latest evidence${dir ? ` (${dir})` : ''}.`, { hint: 'Run the evidence tool (or verify) first.' });
      }
      return readAs(ctx, uri, mimeType, body);
    }),
  );
  server.registerResource(
    'model',
    new ResourceTemplate('sandstack://{instance}/model', { list: async () => ({ resources: [{ uri: `sandstack://${boundId}/model`, name: `${boundId} rendered model`, mimeType: 'application/yaml' }] }) }),
    { title: 'Rendered model', description: 'The isolated Compose model sandstack runs for the instance (secret values redacted)' },
    reading(async (uri, vars, extra) => {
      const ctx = scoped(vars.instance, extra);
      const { renderInstance } = await import('../lifecycle/operations.js');
      return readAs(ctx, uri, 'application/yaml', (await renderInstance(ctx)).yaml);
    }),
  );

  return { server, instanceId: boundId };
}
