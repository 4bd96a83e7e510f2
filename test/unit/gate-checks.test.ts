import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Docker from 'dockerode';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProbeSchema, PublishSchema } from '../../src/config/schema.js';
import { ReadyChecks } from '../../src/gate/checks.js';
import type { Lease } from '../../src/state/registry.js';

/** A 127.0.0.1 server that answers 503 until `healthy` is set, then 200. */
let server: http.Server;
let port = 0;
let healthy = false;
let hits = 0;

beforeEach(async () => {
  healthy = false;
  hits = 0;
  server = http.createServer((_req, res) => {
    hits++;
    res.writeHead(healthy ? 200 : 503).end(healthy ? 'ok' : 'warming up');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

function checks(deadlineMs = 20_000): ReadyChecks {
  const lease: Lease = { service: 'api', containerPort: 8000, protocol: 'tcp', hostPort: port, scheme: 'http' };
  return new ReadyChecks({
    docker: {} as Docker,
    instanceId: 'feat-a',
    leases: [lease],
    // The port answer check is not what this test looks at.
    publish: [PublishSchema.parse({ service: 'api', port: 8000, check: false })],
    probes: [ProbeSchema.parse({ name: 'health', timeoutSeconds: 1, http: { service: 'api', port: 8000, path: '/health' } })],
    projectDir: '/',
    env: {},
    deadline: Date.now() + deadlineMs,
  });
}

describe('ReadyChecks', () => {
  it('gives a probe that failed while other services were still starting its window again once all are ready', async () => {
    const c = checks();
    c.serviceReady('api');
    // The probe's 1 s window passes while another service is still starting.
    await new Promise((r) => setTimeout(r, 1800));
    const before = hits;
    expect(before).toBeGreaterThan(0);
    healthy = true;
    const { probes } = await c.settle();
    expect(probes).toHaveLength(1);
    expect(probes[0]!.passed).toBe(true);
    expect(probes[0]!.observed).toBe('HTTP 200');
    expect(hits).toBeGreaterThan(before);
  });

  it('keeps the failure of a probe that failed after every service was ready', async () => {
    const c = checks();
    c.serviceReady('api');
    c.allReady();
    const { probes } = await c.settle();
    expect(probes[0]!.passed).toBe(false);
    expect(probes[0]!.observed).toContain('HTTP 503');
  });

  it('does not retry past the gate deadline', async () => {
    const c = checks(1500);
    c.serviceReady('api');
    await new Promise((r) => setTimeout(r, 1700));
    const before = hits;
    healthy = true;
    const { probes } = await c.settle();
    expect(probes[0]!.passed).toBe(false);
    expect(hits).toBe(before);
  });
});
