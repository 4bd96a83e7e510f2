/**
 * The CLI starts fast because its entry point imports only the command table and the renderer: each
 * command's implementation (and the core modules, Docker client and libraries it uses) is imported
 * with `await import()` when that command runs. These tests follow the static imports of the sources
 * (type-only imports and dynamic `import()` are not followed) and fail when a heavy module creeps in.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(__dirname, '../../src');

/** The specifiers a file imports at load time: static imports and re-exports that are not type-only. */
function staticImports(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, false);
  const found: string[] = [];
  for (const st of source.statements) {
    if (ts.isImportDeclaration(st) && ts.isStringLiteral(st.moduleSpecifier)) {
      const clause = st.importClause;
      if (clause?.isTypeOnly) continue;
      const named = clause?.namedBindings;
      const onlyTypes = clause !== undefined && clause.name === undefined && named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
      if (!onlyTypes) found.push(st.moduleSpecifier.text);
    } else if (ts.isExportDeclaration(st) && st.moduleSpecifier && ts.isStringLiteral(st.moduleSpecifier) && !st.isTypeOnly) {
      found.push(st.moduleSpecifier.text);
    }
  }
  return found;
}

/** Every source file and package loaded when `entry` is loaded (packages by name, files relative to src/). */
function loadGraph(entry: string): { files: string[]; packages: string[] } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string): void => {
    const rel = path.relative(SRC, file);
    if (files.has(rel)) return;
    files.add(rel);
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  };
  visit(path.join(SRC, entry));
  return { files: [...files].sort(), packages: [...packages].sort() };
}

describe('CLI load graph', () => {
  it('the entry point loads the renderer and the version, nothing of the core; the command line adds commander and the command table', () => {
    // A new entry here makes every invocation (--version, --help) slower: import it in the command's
    // module (src/cli/commands/) or with `await import()` where it is used, or use `import type`.
    const main = loadGraph('cli/main.ts');
    expect(main.files).toEqual(['cli/main.ts', 'cli/output.ts', 'errors.ts', 'version.ts']);
    expect(main.packages).toEqual(['picocolors']);
    const program = loadGraph('cli/program.ts');
    expect(program.files).toEqual(['cli/output.ts', 'cli/program.ts', 'cli/register.ts', 'errors.ts', 'policy/rules.ts', 'version.ts']);
    expect(program.packages).toEqual(['commander', 'picocolors']);
  });

  it('ls loads the status module, the registry and the engine client, not the config, Compose or gate machinery', () => {
    const g = loadGraph('cli/commands/ls.ts');
    expect(g.files).toContain('lifecycle/status.ts');
    const heavy = g.files.filter((f) => /^(lifecycle\/(instance|operations|workspace)|compose|config|gate|data|evidence|testing|verify|observability|policy|secrets|git)\b/.test(f));
    expect(heavy).toEqual([]);
    expect(g.packages.filter((p) => ['execa', 'yaml', 'dotenv', 'fast-xml-parser', 'bytes'].includes(p))).toEqual([]);
  });

  it('every command module is only imported dynamically by the command table', () => {
    const register = loadGraph('cli/register.ts');
    expect(register.files.filter((f) => f.startsWith('cli/commands/'))).toEqual([]);
    const text = readFileSync(path.join(SRC, 'cli/register.ts'), 'utf8');
    const lazy = [...text.matchAll(/\.action\(run\(async \(\) => \(await import\('\.\/commands\/([a-z]+)\.js'\)\)\.([A-Za-z]+)\)\)/g)].map((m) => `${m[1]}.${m[2]}`);
    const actions = (text.match(/\.action\(/g) ?? []).length;
    expect(lazy.length).toBe(actions);
    expect(actions).toBeGreaterThanOrEqual(27);
  });
});
