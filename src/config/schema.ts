/**
 * The sandstack.yaml schema, defined once. `npm run schema` emits schema/sandstack.schema.json from
 * it, and a unit test fails when the two drift.
 */
import ms from 'ms';
import * as z from 'zod';
import { RULES } from '../policy/rules.js';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name');
const serviceName = z.string().min(1).regex(/^[a-zA-Z0-9._-]+$/, 'a Compose service name');

export const PublishSchema = z
  .strictObject({
    service: serviceName.describe('Compose service whose container port gets a host port'),
    port: z.number().int().min(1).max(65535).describe('Container port to publish'),
    protocol: z
      .enum(['http', 'https', 'tcp', 'udp'])
      .default('http')
      .describe('http/https give a URL in status output; udp publishes a UDP port'),
    name: z.string().min(1).optional().describe('A label for this port, shown in `ports`'),
    check: z
      .boolean()
      .optional()
      .describe('Whether the gate checks that this port answers on its host port (a TCP connection; an HTTP response for http/https); default true'),
  })
  .describe('A container port that gets a leased host port bound to 127.0.0.1');

export const PortRangeSchema = z
  .strictObject({
    from: z.number().int().min(1024).max(65535),
    to: z.number().int().min(1024).max(65535),
  })
  .refine((r) => r.from <= r.to, { message: '`from` must not be greater than `to`' })
  .describe('Host ports are leased from this inclusive range');

const JsonAssertionSchema = z
  .strictObject({
    path: z.string().min(1).describe('Dot path into the JSON body, e.g. `count` or `workers.0.name`'),
    equals: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional(),
    gte: z.number().optional(),
    lte: z.number().optional(),
    exists: z.boolean().optional(),
  })
  .refine((a) => a.equals !== undefined || a.gte !== undefined || a.lte !== undefined || a.exists !== undefined, {
    message: 'give at least one of equals, gte, lte, exists',
  });

export const ProbeSchema = z
  .strictObject({
    name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -'),
    timeoutSeconds: z.number().min(1).max(600).default(15).describe('How long the probe is retried before it fails'),
    http: z
      .strictObject({
        service: serviceName,
        port: z.number().int().min(1).max(65535).describe('Container port; it must be listed under ports.publish'),
        path: z.string().startsWith('/').default('/'),
        method: z.enum(['GET', 'HEAD']).default('GET'),
        expectStatus: z.number().int().min(100).max(599).default(200),
        json: z.array(JsonAssertionSchema).default([]),
      })
      .optional()
      .describe('An HTTP request to a published service port on 127.0.0.1'),
    exec: z
      .strictObject({ service: serviceName, command: z.array(z.string()).min(1) })
      .optional()
      .describe('A command run inside a running service container; passes on exit code 0'),
    tcp: z
      .strictObject({
        service: serviceName,
        port: z.number().int().min(1).max(65535),
        from: serviceName.optional().describe('Service whose container makes the connection (needs bash); default: the target'),
      })
      .optional()
      .describe('A TCP connect from inside the stack network'),
    command: z
      .strictObject({ run: z.string().min(1), cwd: z.string().optional() })
      .optional()
      .describe('A shell command on the host (cwd relative to sandstack.yaml); passes on exit code 0'),
  })
  .refine((p) => [p.http, p.exec, p.tcp, p.command].filter((x) => x !== undefined).length === 1, {
    message: 'a probe has exactly one of http, exec, tcp, command',
  });
export type ProbeSpec = z.output<typeof ProbeSchema>;

export const UnitTestSchema = z.strictObject({
  name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -'),
  run: z.string().min(1).describe('Shell command (sh -c); exit code 0 means passed'),
  service: serviceName.optional().describe('Run inside this running service container; default: on the host, in the project folder'),
  junit: z
    .string()
    .min(1)
    .optional()
    .describe('JUnit XML the command writes: a path in the container (with service), else relative to $SANDSTACK_ARTIFACTS_DIR'),
  timeoutSeconds: z.number().int().min(1).max(7200).default(600),
});

export const E2eTestSchema = z.strictObject({
  service: serviceName.describe('Compose service (usually under a profile) run as a one-off container inside the stack'),
  artifactsPath: z.string().startsWith('/').default('/artifacts').describe('Where the run\'s artifacts directory is mounted in the container; JUnit XML written there is parsed'),
  timeoutSeconds: z.number().int().min(1).max(7200).default(600),
});

export const ConfigSchema = z
  .strictObject({
    version: z.literal(1).default(1).describe('Config format version'),
    engine: z
      .string()
      .min(1)
      .optional()
      .describe('The Docker engine instances of this project run on: `local`, an engine name from the user config, an ssh://[user@]host[:port] URL or a Docker context; `--engine` and SANDSTACK_ENGINE override it'),
    compose: z
      .strictObject({
        files: z
          .array(z.string().min(1))
          .min(1)
          .optional()
          .describe('Compose files, relative to sandstack.yaml; default: compose.yaml, docker-compose.yml, ...'),
        profiles: z.array(z.string().min(1)).default([]).describe('Compose profiles activated by `up`'),
      })
      .prefault({}),
    instance: z
      .strictObject({
        idFrom: z
          .enum(['folder', 'branch'])
          .default('folder')
          .describe('Derive the instance id from the worktree folder name or the git branch'),
        kind: z
          .enum(['local', 'sandbox'])
          .default('local')
          .describe('Environment kind: interactive `local` or agent `sandbox`'),
        ttl: z
          .string()
          .refine((v) => {
            const n = ms(v as ms.StringValue) as number | undefined;
            return typeof n === 'number' && Number.isFinite(n) && n > 0;
          }, 'a duration such as 2h, 30m or 7d')
          .optional()
          .describe('Remove the instance after this long without use (up, gate, test); `sandstack gc` and the next up/gate --fresh/verify/new do it. `up --ttl` overrides'),
      })
      .prefault({}),
    ports: z
      .strictObject({
        range: PortRangeSchema.default({ from: 20000, to: 29999 }),
        publish: z
          .array(PublishSchema)
          .default([])
          .superRefine((list, ctx) => {
            const seen = new Map<string, number>();
            list.forEach((p, i) => {
              const key = `${p.service}:${p.port}/${p.protocol === 'udp' ? 'udp' : 'tcp'}`;
              const first = seen.get(key);
              if (first !== undefined) {
                ctx.addIssue({ code: 'custom', path: [i], message: `publishes ${key} again (already entry ${first}); a container port gets one host port` });
              } else seen.set(key, i);
            });
          }),
      })
      .prefault({}),
    external: z
      .strictObject({
        volumes: z.array(z.string().min(1)).default([]).describe('External volumes allowed by name'),
        networks: z.array(z.string().min(1)).default([]).describe('External networks allowed by name'),
      })
      .prefault({})
      .describe('External (shared, unscoped) volumes and networks are refused unless allowed here by name'),
    env: z
      .strictObject({
        required: z
          .array(envName)
          .default([])
          .describe('Variables that must be set in the environment of sandstack (checked by the gate\'s config stage); implies allow'),
        allow: z
          .array(envName)
          .default([])
          .describe('Host environment variables Compose may see (interpolation, pass-through entries); no others are passed'),
      })
      .prefault({}),
    secrets: z
      .array(
        z.strictObject({
          name: envName.describe('Variable name; use it in compose files as ${NAME} or read the file ${SANDSTACK_SECRETS_DIR}/NAME'),
          length: z.number().int().min(16).max(256).default(32).describe('Characters of the generated value'),
        }),
      )
      .default([])
      .superRefine((list, ctx) => {
        list.forEach((s, i) => {
          if (list.findIndex((x) => x.name === s.name) !== i) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `secret ${s.name} is declared twice` });
        });
      })
      .describe('Secrets generated per instance (random, never shared, stored 0600, never printed, deleted on destroy)'),
    services: z
      .record(
        serviceName,
        z.strictObject({
          egress: z.enum(['default', 'none']).default('default').describe('none: only an internal network of the instance (peers yes, host and outside no)'),
        }),
      )
      .default({})
      .describe('Per-service settings'),
    tests: z
      .strictObject({
        unit: z.array(UnitTestSchema).default([]),
        e2e: z.array(E2eTestSchema).default([]),
      })
      .prefault({})
      .describe('What `sandstack test` runs'),
    evidence: z
      .strictObject({
        root: z.string().min(1).optional().describe('Folder for runs and bundles, relative to sandstack.yaml; default <state home>/evidence'),
      })
      .prefault({}),
    policy: z
      .strictObject({
        allow: z
          .array(
            z.strictObject({
              rule: z
                .string()
                .refine((r) => RULES.some((x) => x.id === r || x.name === r), {
                  message: `an unknown rule; rules: ${RULES.map((r) => `${r.id} (${r.name})`).join(', ')}`,
                })
                .describe('Rule id (SS005) or name (privileged)'),
              service: serviceName.describe('The service the finding is about'),
              reason: z.string().trim().min(10, 'give a written reason (at least 10 characters)').describe('Why this is acceptable; shown by status and recorded in evidence'),
            }),
          )
          .default([])
          .describe('Error-level lint findings allowed for one service each, with a reason; up and the gate refuse all others'),
      })
      .prefault({}),
    data: z
      .strictObject({
        shared: z
          .array(
            z
              .strictObject({
                name: z.string().min(1).regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ -').describe('Dataset name'),
                host: z
                  .string()
                  .min(1)
                  .refine((h) => !h.startsWith('~') && !h.includes('$'), { message: 'an absolute path, or one relative to sandstack.yaml (no ~ or ${VAR})' })
                  .describe('Host folder or file: absolute, or relative to the folder of sandstack.yaml'),
                services: z.array(serviceName).min(1).describe('Services that mount it'),
                target: z.string().startsWith('/').describe('Path in the container'),
                mode: z.enum(['ro', 'rw']).default('ro').describe('ro (default) or rw; a rw dataset is shared, writable, by every instance'),
                reason: z.string().trim().min(10, 'give a written reason (at least 10 characters)').optional().describe('Why it is shared; required when mode is rw'),
              })
              .refine((d) => d.mode !== 'rw' || d.reason !== undefined, { message: 'a rw dataset needs a reason', path: ['reason'] }),
          )
          .default([])
          .superRefine((list, ctx) => {
            list.forEach((d, i) => {
              if (list.findIndex((x) => x.name === d.name) !== i) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `dataset ${d.name} is declared twice` });
            });
          })
          .describe('Host data mounted on purpose into every instance (the same host path for all of them); lint accepts these bind mounts'),
        root: z
          .strictObject({
            template: z
              .string()
              .min(1)
              .refine((h) => !h.startsWith('~') && !h.includes('$'), { message: 'an absolute path, or one relative to sandstack.yaml (no ~ or ${VAR})' })
              .describe('Folder copied (copy-on-write where the filesystem allows) into a new instance\'s data root: absolute, or relative to the folder of sandstack.yaml'),
          })
          .optional()
          .describe('The per-instance data root (${SANDSTACK_DATA_ROOT} in compose files): seeded from a template folder when the instance is created'),
        seed: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a snapshot name: letters, digits, . _ -')
          .optional()
          .describe('Snapshot (`sandstack snapshot save`) that fills a new instance\'s fresh volumes before its services start, as `up --from` does; an instance that already has its volumes keeps them'),
      })
      .prefault({})
      .describe('Data shared by instances, and each instance\'s own data root'),
    observability: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('Join the shared observability stack (`sandstack obs up`): OTLP endpoint in every container, metrics scraped by the shared Prometheus'),
        services: z
          .array(serviceName)
          .optional()
          .describe('Services that join the instance telemetry network (reach the OTLP endpoint, can be scraped); default: every service'),
        metrics: z
          .array(
            z.strictObject({
              service: serviceName.describe('Service exposing Prometheus metrics'),
              port: z.number().int().min(1).max(65535).describe('Container port of the metrics endpoint'),
              path: z.string().startsWith('/').default('/metrics').describe('HTTP path of the metrics endpoint'),
            }),
          )
          .default([])
          .describe('Prometheus endpoints the shared Prometheus scrapes, labelled instance_id, environment and service'),
        traceService: serviceName.optional().describe('Service whose traces the `status` link opens in Jaeger; default: the first metrics service, else the first published service'),
      })
      .prefault({})
      .describe('Shared observability (Prometheus, Grafana, Jaeger) with every signal labelled by instance'),
    snapshot: z
      .strictObject({
        before: z
          .strictObject({
            service: serviceName.describe('Service the command runs in (it must be running)'),
            command: z.array(z.string()).min(1).describe('Command (exec form), e.g. ["psql", "-U", "app", "-c", "CHECKPOINT"]'),
            timeoutSeconds: z.number().int().min(1).max(3600).default(120).describe('How long it may take'),
          })
          .optional()
          .describe('Runs first when `sandstack snapshot save` captures the volumes (a database checkpoint, a flush); a non-zero exit stops the snapshot'),
        rekey: z
          .strictObject({
            service: serviceName.describe('Service holding the seeded data (a database); it alone is started for the hook, before the rest'),
            command: z
              .array(z.string())
              .min(1)
              .describe('Command (exec form) that gives the data the new credentials; it sees each re-keyed secret as NAME (new value) and NAME_PREVIOUS (the snapshot\'s), e.g. psql\'s ALTER USER … PASSWORD through sh -c'),
            secrets: z.array(envName).min(1).describe('Secrets (declared under secrets) this hook re-keys: a seeded instance generates its own values for them instead of taking the snapshot\'s'),
            timeoutSeconds: z.number().int().min(1).max(3600).default(60).describe('How long the hook may take'),
          })
          .optional()
          .describe('Re-key hook for seeded instances (`up --from`, data.seed): runs in its service, started alone on the seeded data, so each instance gets its own credentials; without it a seeded instance reuses the snapshot\'s secret values'),
      })
      .prefault({})
      .describe('Snapshots of the instance\'s volumes (`sandstack snapshot save`)'),
    gate: z
      .strictObject({
        timeoutSeconds: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(180)
          .describe('Deadline for the whole gate (and for `up` to become healthy)'),
        stableSeconds: z
          .number()
          .min(0)
          .max(600)
          .default(3)
          .describe('A long-running service counts as ready only after it has stayed running this long since its start, without a restart (0: as soon as it runs, or is healthy)'),
        services: z
          .record(
            serviceName,
            z.strictObject({
              stableSeconds: z.number().min(0).max(600).optional().describe('Overrides gate.stableSeconds for this service'),
              job: z
                .boolean()
                .optional()
                .describe('true: a one-shot job, accepted when it exits 0; false: a long-running service, whose exit (even 0) fails the gate'),
            }),
          )
          .default({})
          .describe('Per-service gate settings'),
        probes: z.array(ProbeSchema).default([]).describe('Checks run as soon as their service is ready (command probes once all are)'),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    for (const [i, name] of (c.snapshot.rekey?.secrets ?? []).entries()) {
      if (!c.secrets.some((s) => s.name === name)) ctx.addIssue({ code: 'custom', path: ['snapshot', 'rekey', 'secrets', i], message: `${name} is not a declared secret (declare it under secrets)` });
    }
  })
  .describe('sandstack.yaml: how sandstack runs this Compose project as isolated instances');

export type SandstackConfig = z.output<typeof ConfigSchema>;
export type PublishSpec = z.output<typeof PublishSchema>;

export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ConfigSchema, { io: 'input' }) as Record<string, unknown>;
}
