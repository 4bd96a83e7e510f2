/**
 * Typed errors with stable codes. Core modules throw these; only the CLI layer maps them to exit
 * codes and renders them.
 */

/** Exit codes, documented in the README. */
export const ExitCode = {
  ok: 0,
  /** The operation ran and failed (a service crashed, a gate failed, teardown incomplete). */
  failed: 1,
  /** Bad input: invalid config or compose file, unknown instance, clash, already running. */
  badInput: 2,
  /** Environment problem: Docker or Compose missing or not answering. */
  environment: 3,
  /** Interrupted by a signal (Ctrl-C); whatever was started has been rolled back. */
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

const codeExit = {
  SANDSTACK_CONFIG_INVALID: ExitCode.badInput,
  SANDSTACK_CONFIG_EXISTS: ExitCode.badInput,
  SANDSTACK_COMPOSE_NOT_FOUND: ExitCode.badInput,
  SANDSTACK_COMPOSE_INVALID: ExitCode.badInput,
  SANDSTACK_EXTERNAL_NOT_ALLOWED: ExitCode.badInput,
  SANDSTACK_UNKNOWN_SERVICE: ExitCode.badInput,
  SANDSTACK_INSTANCE_ID_INVALID: ExitCode.badInput,
  SANDSTACK_INSTANCE_CLASH: ExitCode.badInput,
  SANDSTACK_INSTANCE_NOT_FOUND: ExitCode.badInput,
  SANDSTACK_ALREADY_RUNNING: ExitCode.badInput,
  SANDSTACK_NOT_RUNNING: ExitCode.badInput,
  SANDSTACK_NOT_A_GIT_REPO: ExitCode.badInput,
  SANDSTACK_BRANCH_EXISTS: ExitCode.badInput,
  SANDSTACK_WORKTREE_EXISTS: ExitCode.badInput,
  SANDSTACK_USAGE: ExitCode.badInput,
  SANDSTACK_SNAPSHOT_NOT_FOUND: ExitCode.badInput,
  SANDSTACK_SNAPSHOT_INVALID: ExitCode.badInput,
  SANDSTACK_SNAPSHOT_INCOMPATIBLE: ExitCode.badInput,
  SANDSTACK_SNAPSHOT_EXISTS: ExitCode.badInput,
  SANDSTACK_SNAPSHOT_SECRET_MISMATCH: ExitCode.failed,
  SANDSTACK_SNAPSHOT_FAILED: ExitCode.failed,
  SANDSTACK_REKEY_FAILED: ExitCode.failed,
  SANDSTACK_PORT_IN_USE: ExitCode.failed,
  SANDSTACK_PORT_RANGE_EXHAUSTED: ExitCode.failed,
  SANDSTACK_REGISTRY_LOCKED: ExitCode.failed,
  SANDSTACK_COMPOSE_FAILED: ExitCode.failed,
  SANDSTACK_SERVICE_FAILED: ExitCode.failed,
  SANDSTACK_OBS_FAILED: ExitCode.failed,
  SANDSTACK_PROBE_FAILED: ExitCode.failed,
  SANDSTACK_PORT_NOT_ANSWERING: ExitCode.failed,
  SANDSTACK_ISOLATION_FAILED: ExitCode.failed,
  SANDSTACK_BUILD_FAILED: ExitCode.failed,
  SANDSTACK_MISSING_ENV: ExitCode.badInput,
  SANDSTACK_NO_TESTS: ExitCode.badInput,
  SANDSTACK_POLICY_VIOLATION: ExitCode.badInput,
  SANDSTACK_LINT_FAILED: ExitCode.failed,
  SANDSTACK_TESTS_FAILED: ExitCode.failed,
  SANDSTACK_VERIFY_FAILED: ExitCode.failed,
  SANDSTACK_TIMEOUT: ExitCode.failed,
  SANDSTACK_DESTROY_INCOMPLETE: ExitCode.failed,
  SANDSTACK_GIT_FAILED: ExitCode.failed,
  SANDSTACK_EXEC_FAILED: ExitCode.failed,
  /** An MCP tool asked about another instance than the server's own. */
  SANDSTACK_OUT_OF_SCOPE: ExitCode.badInput,
  /** An action that needs an explicit confirmation (MCP destroy of a local instance). */
  SANDSTACK_CONFIRMATION_REQUIRED: ExitCode.badInput,
  /** `--engine`/SANDSTACK_ENGINE/`engine:` names no engine (not in the user config, not a URL or Docker context). */
  SANDSTACK_ENGINE_UNKNOWN: ExitCode.badInput,
  /** The instance lives on another engine than the one asked for. */
  SANDSTACK_ENGINE_MISMATCH: ExitCode.badInput,
  /** A remote engine does not answer (SSH refused, host down, no Docker there). */
  SANDSTACK_ENGINE_UNREACHABLE: ExitCode.environment,
  /** No engine of the pool is reachable with room for another instance. */
  SANDSTACK_POOL_FULL: ExitCode.environment,
  SANDSTACK_DOCKER_UNAVAILABLE: ExitCode.environment,
  SANDSTACK_COMPOSE_UNAVAILABLE: ExitCode.environment,
  SANDSTACK_INTERRUPTED: ExitCode.interrupted,
  SANDSTACK_INTERNAL: ExitCode.failed,
} as const;
export type ErrorCode = keyof typeof codeExit;

export interface ErrorOptions {
  /** What to do about it, in one sentence. */
  hint?: string;
  /** Structured facts for --json output and evidence (never secrets). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class SandstackError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SandstackError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get exitCode(): ExitCodeValue {
    return codeExit[this.code];
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }
}

export function isSandstackError(e: unknown): e is SandstackError {
  return e instanceof SandstackError;
}

/** Throws SANDSTACK_INTERRUPTED when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) {
    throw new SandstackError('SANDSTACK_INTERRUPTED', `Interrupted while ${what}.`);
  }
}
