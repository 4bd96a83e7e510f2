/**
 * The sandstack.yaml schema, defined once. `npm run schema` emits schema/sandstack.schema.json from
 * it, and a unit test fails when the two drift.
 */
import { z } from 'zod';

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
  })
  .describe('A container port that gets a leased host port bound to 127.0.0.1');

export const PortRangeSchema = z
  .strictObject({
    from: z.number().int().min(1024).max(65535),
    to: z.number().int().min(1024).max(65535),
  })
  .refine((r) => r.from <= r.to, { message: '`from` must not be greater than `to`' })
  .describe('Host ports are leased from this inclusive range');

export const ConfigSchema = z
  .strictObject({
    version: z.literal(1).default(1).describe('Config format version'),
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
    wait: z
      .strictObject({
        timeoutSeconds: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(180)
          .describe('Deadline for services to become healthy after start'),
      })
      .prefault({}),
  })
  .describe('sandstack.yaml: how sandstack runs this Compose project as isolated instances');

export type SandstackConfig = z.output<typeof ConfigSchema>;
export type PublishSpec = z.output<typeof PublishSchema>;

export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ConfigSchema, { io: 'input' }) as Record<string, unknown>;
}
