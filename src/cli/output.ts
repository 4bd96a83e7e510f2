/**
 * Rendering for the CLI: results on stdout (one JSON document with --json), progress and logs on
 * stderr (a live line per step on a TTY, plain lines otherwise), errors with code, hint and exit code.
 */
import pc from 'picocolors';
import { isSandstackError, ExitCode, type ExitCodeValue } from '../errors.js';
import type { GateReport } from '../gate/report.js';
import type { ProgressEvent } from '../lifecycle/context.js';

export interface OutputOptions {
  json: boolean;
  verbose: boolean;
}

/** `ready 2/4; waiting for backend (health: starting), ...`: a readiness change, as the CLI and the MCP server report it. */
export function readinessLine(e: Extract<ProgressEvent, { type: 'services' }>): string {
  const waiting = e.waiting.map((w) => `${w.service} (${w.state})`).join(', ');
  return `ready ${e.ready.length}/${e.ready.length + e.waiting.length}${waiting ? `; waiting for ${waiting}` : ''}`;
}

export class Output {
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly started = Date.now();
  constructor(readonly opts: OutputOptions) {}

  private elapsed(): string {
    return `${((Date.now() - this.started) / 1000).toFixed(1)}s`;
  }

  progress = (e: ProgressEvent): void => {
    switch (e.type) {
      case 'step':
        process.stderr.write(`${pc.dim(`[${this.elapsed()}]`)} ${e.message}\n`);
        break;
      case 'notice':
        process.stderr.write(`${pc.yellow('notice:')} ${e.message}\n`);
        break;
      case 'log':
        if (this.opts.verbose) process.stderr.write(`${pc.dim(`  ${e.source}| ${e.line}`)}\n`);
        break;
      case 'stage': {
        if (e.status === 'running') {
          process.stderr.write(`${pc.dim(`[${this.elapsed()}]`)} ${pc.bold(e.name)} ...\n`);
          break;
        }
        const mark = { passed: pc.green('✓'), warning: pc.yellow('!'), failed: pc.red('✗'), skipped: pc.dim('-') }[e.status];
        const took = e.durationMs !== undefined && e.status !== 'skipped' ? ` ${(e.durationMs / 1000).toFixed(1)}s` : '';
        process.stderr.write(`${pc.dim(`[${this.elapsed()}]`)} ${mark} ${e.name}${took}${e.message ? pc.dim(` — ${e.message}`) : ''}\n`);
        break;
      }
      case 'services':
        process.stderr.write(`${pc.dim(`[${this.elapsed()}]`)} ${readinessLine(e)}\n`);
        break;
    }
  };

  notices(list: string[] | undefined): void {
    for (const n of list ?? []) this.progress({ type: 'notice', message: n });
  }

  /** Prints the result: JSON on --json, else the text renderer's lines. */
  result(data: unknown, text: () => string): void {
    if (this.opts.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    else {
      const t = text();
      if (t) process.stdout.write(t.endsWith('\n') ? t : `${t}\n`);
    }
  }

  /** Renders an error on stderr (and as JSON on stdout with --json unless printJson is false). */
  error(e: unknown, opts: { printJson?: boolean } = {}): ExitCodeValue {
    const printJson = this.opts.json && opts.printJson !== false;
    if (isSandstackError(e)) {
      if (printJson) {
        process.stdout.write(`${JSON.stringify({ ok: false, error: e.toJSON() }, null, 2)}\n`);
      }
      process.stderr.write(`${pc.red('error')} ${pc.dim(`[${e.code}]`)}: ${e.message}\n`);
      const gate = e.details?.gate as GateReport | undefined;
      if (gate && !this.opts.json) process.stderr.write(`${gateText(gate)}\n`);
      const failure = e.details?.failure as { logTail?: string[]; healthLog?: { exitCode: number; output: string }[] } | undefined;
      if (failure?.healthLog?.length) {
        process.stderr.write(`${pc.dim('last healthcheck results:')}\n${failure.healthLog.map((h) => `  exit ${h.exitCode}: ${h.output}`).join('\n')}\n`);
      }
      if (failure?.logTail?.length) {
        process.stderr.write(`${pc.dim(`last ${failure.logTail.length} log lines:`)}\n${failure.logTail.map((l) => `  ${l}`).join('\n')}\n`);
      }
      const probes = (e.details?.probes ?? []) as { name: string; passed: boolean; observed: string }[];
      for (const p of probes.filter((x) => !x.passed)) process.stderr.write(`  probe ${p.name}: ${p.observed}\n`);
      if (e.hint) process.stderr.write(`${pc.cyan('hint')}: ${e.hint}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    if (printJson) {
      process.stdout.write(`${JSON.stringify({ ok: false, error: { code: 'SANDSTACK_INTERNAL', message: err?.message ?? String(e) } }, null, 2)}\n`);
    }
    process.stderr.write(`${pc.red('internal error')}: ${err?.stack ?? String(e)}\n`);
    process.stderr.write(`${pc.cyan('hint')}: this is a bug in sandstack; please report it with the command you ran.\n`);
    return ExitCode.failed;
  }

  get isTTY(): boolean {
    return this.tty;
  }
}

/** A plain table: columns padded to the widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [pc.bold(fmt(headers)), ...rows.map(fmt)].join('\n');
}

/** The gate report as a stage table. */
export function gateText(g: GateReport): string {
  const rows = g.stages.map((s) => [s.name, s.status, s.status === 'skipped' ? '-' : `${(s.durationMs / 1000).toFixed(1)}s`, String((s.details.summary ?? s.details.reason ?? (s.details.error as { message?: string } | undefined)?.message ?? '')).split('\n')[0]!]);
  const head = `gate ${g.passed ? 'PASSED' : 'FAILED'} (${g.mode}, ${g.instance.id}) in ${(g.durationMs / 1000).toFixed(1)} s`;
  const f = g.failure;
  const failure = f
    ? `failed at ${f.stage}${f.service ? `: ${f.service}` : ''}${f.reason ? ` ${f.reason}` : ''}${f.exitCode !== undefined ? ` (exit code ${f.exitCode})` : ''}${f.detectedAfterMs !== undefined ? `, detected ${f.detectedAfterMs} ms after the container event` : ''}`
    : '';
  return [head, table(['STAGE', 'STATUS', 'TIME', 'DETAILS'], rows), failure, g.reportFile ? `report: ${g.reportFile}` : ''].filter(Boolean).join('\n');
}

