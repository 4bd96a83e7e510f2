/** The snippets `sandstack mcp --print-config <client>` prints, and the agent guide. */
import { describe, expect, it } from 'vitest';
import { AGENT_GUIDE, mcpConfigSnippet } from '../../src/cli/commands/mcp.js';

describe('mcp --print-config', () => {
  it('generic and cursor: an mcpServers entry that starts this Node and CLI in the worktree, with the flags', () => {
    for (const client of ['generic', 'cursor']) {
      const cfg = JSON.parse(mcpConfigSnippet(client, '/work/wt one', ['--allow-new'])) as { mcpServers: Record<string, { command: string; args: string[] }> };
      expect(Object.keys(cfg.mcpServers)).toEqual(['sandstack']);
      const s = cfg.mcpServers.sandstack!;
      expect(s.command).toBe(process.execPath);
      expect(s.args.slice(1)).toEqual(['--cwd', '/work/wt one', 'mcp', '--allow-new']);
    }
  });

  it('vscode: a stdio entry under servers', () => {
    const cfg = JSON.parse(mcpConfigSnippet('vscode', '/w', [])) as { servers: { sandstack: { type: string; args: string[] } } };
    expect(cfg.servers.sandstack.type).toBe('stdio');
    expect(cfg.servers.sandstack.args.slice(-3)).toEqual(['--cwd', '/w', 'mcp']);
  });

  it('claude: a `claude mcp add` command with the paths shell-quoted', () => {
    const line = mcpConfigSnippet('claude', "/w/it's here", ['--all-instances']);
    expect(line).toMatch(/^claude mcp add --scope project sandstack -- /);
    expect(line).toContain(`'/w/it'\\''s here' mcp --all-instances`);
  });

  it('an unknown client is a usage error naming the known ones', () => {
    expect(() => mcpConfigSnippet('emacs', '/w')).toThrow(/Unknown MCP client "emacs"/);
    try {
      mcpConfigSnippet('emacs', '/w');
    } catch (e) {
      expect((e as { code: string; hint: string }).code).toBe('SANDSTACK_USAGE');
      expect((e as { hint: string }).hint).toContain('generic, claude, cursor, vscode');
    }
  });

  it('the agent guide names the loop and the rule never to bypass the gate', () => {
    for (const word of ['up', 'test', 'verify', 'escalate', 'destroy', 'Never bypass the gate']) expect(AGENT_GUIDE).toContain(word);
  });
});
