/**
 * How the gate judges each service, from the compose model and sandstack.yaml: its stability
 * window, and whether it is a one-shot job or must stay up (and why).
 */
import type { ComposeModel } from '../compose/model.js';
import type { SandstackConfig } from '../config/schema.js';
import type { ServicePolicies, ServicePolicy } from '../engine/readiness.js';

/** A service's dependencies as `{ name: condition }` (short-form `depends_on` means service_started). */
export function dependencyConditions(service: unknown): Record<string, string> {
  const deps = (service as { depends_on?: unknown } | undefined)?.depends_on;
  const out: Record<string, string> = {};
  if (Array.isArray(deps)) for (const d of deps) out[String(d)] = 'service_started';
  else if (deps && typeof deps === 'object') {
    for (const [name, v] of Object.entries(deps as Record<string, { condition?: string } | null>)) out[name] = v?.condition ?? 'service_started';
  }
  return out;
}

/**
 * A service is a one-shot job when sandstack.yaml says so (gate.services.<name>.job) or another
 * service waits for it with `service_completed_successfully`. It must stay up (its exit, even 0,
 * fails the gate) when a dependent needs it started or healthy, it has a published port, a
 * healthcheck or a restart policy of always/unless-stopped. Otherwise an exit 0 counts as a
 * finished one-shot.
 */
export function servicePolicies(model: ComposeModel, services: string[], config: Pick<SandstackConfig, 'gate' | 'ports'>): ServicePolicies {
  const completedBy = new Map<string, string>();
  const neededUpBy = new Map<string, string>();
  for (const name of services) {
    for (const [dep, condition] of Object.entries(dependencyConditions(model.services[name]))) {
      if (condition === 'service_completed_successfully') completedBy.set(dep, completedBy.get(dep) ?? name);
      else neededUpBy.set(dep, neededUpBy.get(dep) ?? `${name} depends on it with ${condition}`);
    }
  }
  const out: ServicePolicies = {};
  for (const name of services) {
    const svc = (model.services[name] ?? {}) as { healthcheck?: { disable?: boolean; test?: unknown }; restart?: string; deploy?: { restart_policy?: { condition?: string } } };
    const own = config.gate.services[name] ?? {};
    const restart = svc.restart ?? (svc.deploy?.restart_policy?.condition === 'any' ? 'always' : svc.deploy?.restart_policy?.condition);
    const healthcheck = svc.healthcheck && !svc.healthcheck.disable && !(Array.isArray(svc.healthcheck.test) && svc.healthcheck.test[0] === 'NONE');
    const published = config.ports.publish.filter((p) => p.service === name);
    const reasons = [
      neededUpBy.get(name),
      published.length ? `it publishes port ${published.map((p) => p.port).join(', ')}` : undefined,
      healthcheck ? 'it has a healthcheck' : undefined,
      restart === 'always' || restart === 'unless-stopped' ? `restart: ${restart}` : undefined,
    ].filter((r): r is string => r !== undefined);
    const job = own.job ?? (completedBy.has(name) ? true : undefined);
    const policy: ServicePolicy = { stableMs: (own.stableSeconds ?? config.gate.stableSeconds) * 1000 };
    if (job !== undefined) policy.job = job;
    if (job !== true && (reasons.length || job === false)) policy.mustStayUp = reasons.join('; ') || 'gate.services.' + name + '.job is false';
    if (restart) policy.restart = restart;
    out[name] = policy;
  }
  return out;
}
