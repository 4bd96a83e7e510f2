/** sandstack as a library: the same operations the CLI runs, returning typed results. */
export { createContext, type Context, type ProgressEvent } from './lifecycle/context.js';
export { up, down, destroy, status, type UpResult, type DownResult, type DestroyResult, type StatusResult } from './lifecycle/operations.js';
export { listInstances, type ListedInstance, type ServiceStatus, type ServicePort, type InstanceSummary } from './lifecycle/status.js';
export { init, newWorktree, render, ports, logs, shell } from './lifecycle/workspace.js';
export { resolveInstance, prepareInstance } from './lifecycle/instance.js';
export { renderIsolated, type RenderReport } from './compose/render.js';
export { detectCompose, type ComposeCli } from './compose/cli.js';
export { ConfigSchema, configJsonSchema, type SandstackConfig } from './config/schema.js';
export { loadConfig, parseConfig } from './config/load.js';
export { sanitizeInstanceId, deriveInstanceId, instanceLabels, instanceEnvironment, LABELS } from './identity/identity.js';
export { allocatePorts } from './ports/leases.js';
export { SandstackError, ExitCode, type ErrorCode } from './errors.js';
