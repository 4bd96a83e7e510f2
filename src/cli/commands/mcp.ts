/** `sandstack mcp` (the MCP server over stdio, or the snippet that registers it) and `sandstack agent-guide`. */
import path from 'node:path';
import { SandstackError } from '../../errors.js';
import type { Action } from '../register.js';

const CLIENTS = ['generic', 'claude', 'cursor', 'vscode'] as const;

/** How an MCP client should start this server: this Node and this CLI, in this worktree (no PATH lookup). */
function launch(cwd: string, flags: string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: [path.resolve(process.argv[1] ?? 'sandstack'), '--cwd', cwd, 'mcp', ...flags] };
}

export function mcpConfigSnippet(client: string, cwd: string, flags: string[] = []): string {
  const l = launch(cwd, flags);
  switch (client) {
    case 'generic':
    case 'cursor':
      // The `mcpServers` entry most clients read (Cursor: .cursor/mcp.json; Claude Desktop: claude_desktop_config.json).
      return `${JSON.stringify({ mcpServers: { sandstack: { command: l.command, args: l.args } } }, null, 2)}\n`;
    case 'vscode':
      // VS Code: .vscode/mcp.json
      return `${JSON.stringify({ servers: { sandstack: { type: 'stdio', command: l.command, args: l.args } } }, null, 2)}\n`;
    case 'claude':
      // Claude Code, run in the worktree (project scope writes .mcp.json).
      return `claude mcp add --scope project sandstack -- ${[l.command, ...l.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}\n`;
    default:
      throw new SandstackError('SANDSTACK_USAGE', `Unknown MCP client "${client}".`, { hint: `Use one of: ${CLIENTS.join(', ')}.` });
  }
}

export const mcp: Action = async (ctx, _out, cmd) => {
  const o = cmd.opts<{ allInstances?: boolean; allowNew?: boolean; printConfig?: string }>();
  const flags = [...(o.allInstances ? ['--all-instances'] : []), ...(o.allowNew ? ['--allow-new'] : [])];
  if (o.printConfig !== undefined) {
    process.stdout.write(mcpConfigSnippet(o.printConfig, ctx.cwd, flags));
    return 0;
  }
  const [{ createMcpServer }, { StdioServerTransport }] = await Promise.all([import('../../mcp/server.js'), import('@modelcontextprotocol/sdk/server/stdio.js')]);
  // stdout carries the protocol: nothing else may write there. Progress goes out as MCP notifications.
  const { server, instanceId } = await createMcpServer({ cwd: ctx.cwd, configFile: ctx.configFile, instance: ctx.instanceFlag, allInstances: o.allInstances, allowNew: o.allowNew, env: ctx.env });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once('end', () => resolve());
    ctx.signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  await server.connect(transport);
  process.stderr.write(`sandstack mcp: serving instance ${instanceId} over stdio${o.allInstances ? ' (all instances)' : ''}\n`);
  await closed;
  await server.close().catch(() => undefined);
  return 0;
};

export const AGENT_GUIDE = `# Working agreement: sandstack

This worktree's Docker Compose stack runs as its own sandstack instance: its own ports (on 127.0.0.1),
volumes and networks, never shared with another worktree. Use it through the \`sandstack\` MCP server
(\`sandstack mcp\`) or the CLI (\`--json\` for machine-readable output).

1. **Start** with \`up\` (CLI: \`sandstack up\`). It builds, starts and runs the Startability Gate. If the
   gate fails, read the failed stage and the log tail it gives; fix the cause. Do not work around it.
2. **Look** with \`status\`, \`logs\` and \`ports\`; run one-off commands with \`exec\`.
3. **Test** inside the stack with \`test\` after each meaningful change.
4. **Before a PR**, run \`verify\`: a fresh throwaway stack from scratch, the gate, the tests, teardown and
   an evidence bundle. Quote the bundle's \`summary.md\` in the PR body. A PR without a passing
   \`verify\` is not ready.
5. **When blocked** (a decision, a credential, something outside the worktree), call \`escalate\` with
   the six fields (title, what is blocked, why it matters, at least two options, your recommendation,
   the decision needed); the latest evidence is attached. Then stop and wait.
6. **Never bypass the gate**: no \`--no-gate\`, no editing sandstack.yaml to skip a failing probe, no
   fixed host ports or container names. Guardrail exceptions need a written reason in sandstack.yaml.
7. **Finish** with \`down\` (keeps data) or \`destroy\` (removes everything of this instance). Never touch
   Docker resources that are not this instance's.
`;

export const agentGuide: Action = async () => {
  process.stdout.write(AGENT_GUIDE);
  return 0;
};
