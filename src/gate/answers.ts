/**
 * The gate's implicit check that published ports answer: every tcp/http/https port published by
 * `ports.publish` (unless `check: false`) must accept a connection on its 127.0.0.1 host port and
 * keep it (Docker's port proxy accepts and then drops connections when nothing listens behind
 * it), and an http/https port must answer an HTTP request with an HTTP response (any status).
 * Retried while the service is starting; when it never answers, the container's listening sockets
 * say whether it listens only on its own loopback (reachable from nowhere).
 */
import net from 'node:net';
import tls from 'node:tls';
import type Docker from 'dockerode';
import { execInContainer, instanceContainers } from '../engine/docker.js';
import type { Lease } from '../state/registry.js';
import { reachPort } from '../ports/leases.js';

export type PortFailureReason = 'not-listening' | 'loopback-only' | 'not-http';

export interface PortCheckResult {
  service: string;
  containerPort: number;
  hostPort: number;
  scheme: Lease['scheme'];
  passed: boolean;
  attempts: number;
  durationMs: number;
  /** What the last attempt saw. */
  observed: string;
  reason?: PortFailureReason;
}

/** One attempt: `answered`, or how it failed. */
export interface Knock {
  answered: boolean;
  /** refused: no connection; closed: accepted, then dropped with nothing said; silent: open, no HTTP answer; not-http: answered something else. */
  failure?: 'refused' | 'closed' | 'silent' | 'not-http';
  observed: string;
}

/** Consecutive non-HTTP answers after which an http/https port fails without waiting out its window. */
const NOT_HTTP_ANSWERS = 3;
/** While a port does not answer, how often the container's own sockets are looked at. */
const LOOK_INSIDE_EVERY_MS = 2000;

/** How long an accepted connection must stay open (or answer) to count as a real listener. */
const HOLD_MS = 300;

function printable(buf: Buffer): string {
  return JSON.stringify(buf.subarray(0, 60).toString('latin1'));
}

/** One connection attempt to 127.0.0.1:port; for http/https an HTTP request. */
export function knock(port: number, scheme: Lease['scheme'], timeoutMs: number): Promise<Knock> {
  const http = scheme === 'http' || scheme === 'https';
  return new Promise<Knock>((resolve) => {
    let settled = false;
    let received = Buffer.alloc(0);
    const socket: net.Socket =
      scheme === 'https' ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }) : net.connect({ host: '127.0.0.1', port });
    const finish = (k: Knock) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(hold);
      socket.destroy();
      resolve(k);
    };
    let hold: NodeJS.Timeout | undefined;
    const timer = setTimeout(
      () => finish(connected || tcpConnected ? { answered: false, failure: 'silent', observed: `accepted the connection but sent no HTTP response within ${(timeoutMs / 1000).toFixed(1)} s` } : { answered: false, failure: 'refused', observed: `no connection within ${(timeoutMs / 1000).toFixed(1)} s` }),
      timeoutMs,
    );
    let connected = false;
    // TLS sockets emit `connect` at the TCP level too: an accepted connection that never handshakes is silent, not refused.
    let tcpConnected = false;
    socket.once('connect', () => {
      tcpConnected = true;
    });
    socket.once(scheme === 'https' ? 'secureConnect' : 'connect', () => {
      connected = true;
      if (http) socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sandstack-gate\r\nAccept: */*\r\nConnection: close\r\n\r\n');
      else hold = setTimeout(() => finish({ answered: true, observed: `accepted a TCP connection and kept it open` }), HOLD_MS);
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!http) return finish({ answered: true, observed: `accepted a TCP connection and sent ${printable(received)}` });
      const text = received.toString('latin1');
      const status = /^HTTP\/\d(?:\.\d)? (\d{3})[^\r\n]*/.exec(text);
      if (status) return finish({ answered: true, observed: status[0].trim() });
      if (received.length >= 12 || text.includes('\n')) return finish({ answered: false, failure: 'not-http', observed: `answered, but not with HTTP: ${printable(received)}` });
    });
    socket.on('end', () => {
      if (received.length > 0) finish({ answered: false, failure: 'not-http', observed: `answered, but not with HTTP: ${printable(received)}` });
      else finish({ answered: false, failure: 'closed', observed: 'accepted the connection and closed it at once, with nothing said (nothing listens behind the published port)' });
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (connected && received.length > 0) return finish({ answered: false, failure: 'not-http', observed: `answered, but not with HTTP: ${printable(received)}` });
      if (e.code === 'ECONNREFUSED') return finish({ answered: false, failure: 'refused', observed: 'connection refused' });
      if (scheme === 'https' && !connected && e.code !== 'ECONNRESET') return finish({ answered: false, failure: 'not-http', observed: `no TLS handshake: ${e.message}` });
      finish({ answered: false, failure: 'closed', observed: `the connection was dropped (${e.code ?? e.message}) with nothing said (nothing listens behind the published port)` });
    });
  });
}

/** A listening TCP socket of a container, from /proc/net/tcp and /proc/net/tcp6. */
export interface Listener {
  address: string;
  port: number;
  loopback: boolean;
}

/** Parses /proc/net/tcp{,6} text into its LISTEN sockets. */
export function parseListeners(procNetTcp: string): Listener[] {
  const out: Listener[] = [];
  for (const line of procNetTcp.split('\n')) {
    const m = /^\s*\d+:\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+[0-9A-Fa-f]+:[0-9A-Fa-f]{4}\s+([0-9A-Fa-f]{2})\s/.exec(line);
    if (!m || m[3]!.toUpperCase() !== '0A') continue;
    const hex = m[1]!.toUpperCase();
    const port = parseInt(m[2]!, 16);
    if (hex.length === 8) {
      // IPv4, little-endian: 0100007F is 127.0.0.1.
      const octets = [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16));
      out.push({ address: octets.join('.'), port, loopback: octets[0] === 127 });
    } else if (hex.length === 32) {
      const loopback6 = hex === '00000000000000000000000001000000';
      const mapped = hex.startsWith('0000000000000000FFFF0000') ? [30, 28, 26, 24].map((i) => parseInt(hex.slice(i, i + 2), 16)) : undefined;
      const address = loopback6 ? '::1' : mapped ? `::ffff:${mapped.join('.')}` : hex === '0'.repeat(32) ? '::' : hex;
      out.push({ address, port, loopback: loopback6 || mapped?.[0] === 127 });
    }
  }
  return out;
}

export interface PortCheckEnv {
  docker: Docker;
  instanceId: string;
  /** Give up at this time (ms since the epoch). */
  until: number;
  signal?: AbortSignal;
}

/** The container's own view: listening sockets on the port, if its /proc can be read. */
async function listenersInContainer(env: PortCheckEnv, service: string, port: number): Promise<Listener[] | undefined> {
  const c = (await instanceContainers(env.docker, env.instanceId).catch(() => [])).find((x) => x.service === service && x.state === 'running');
  if (!c) return undefined;
  const r = await execInContainer(env.docker, c.id, ['cat', '/proc/net/tcp', '/proc/net/tcp6'], 5000).catch(() => undefined);
  if (!r || !r.output.includes('local_address')) return undefined;
  return parseListeners(r.output).filter((l) => l.port === port);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/** Knocks on a published port until it answers or `until`; on failure, finds out why. */
export async function checkPortAnswers(lease: Lease, env: PortCheckEnv): Promise<PortCheckResult> {
  const t0 = Date.now();
  let attempts = 0;
  let last: Knock = { answered: false, failure: 'refused', observed: 'not tried' };
  let notHttpInARow = 0;
  let loopbackOnly: Listener[] | undefined;
  let lastLook = t0;
  for (;;) {
    attempts++;
    last = await knock(reachPort(lease), lease.scheme, Math.max(500, Math.min(3000, env.until - Date.now())));
    if (last.answered || env.signal?.aborted || Date.now() + 250 >= env.until) break;
    // Answers that are definite do not wait out the window: a port that keeps answering something
    // other than HTTP, or a service that listens, but only on its container's loopback.
    notHttpInARow = last.failure === 'not-http' ? notHttpInARow + 1 : 0;
    if (notHttpInARow >= NOT_HTTP_ANSWERS) break;
    if ((last.failure === 'closed' || last.failure === 'refused') && Date.now() - lastLook >= LOOK_INSIDE_EVERY_MS) {
      lastLook = Date.now();
      const listeners = await listenersInContainer(env, lease.service, lease.containerPort);
      if (listeners && listeners.length > 0 && listeners.every((l) => l.loopback)) {
        loopbackOnly = listeners;
        break;
      }
    }
    await sleep(250, env.signal);
  }
  const result: PortCheckResult = {
    service: lease.service,
    containerPort: lease.containerPort,
    hostPort: lease.hostPort,
    scheme: lease.scheme,
    passed: last.answered,
    attempts,
    durationMs: Date.now() - t0,
    observed: last.observed,
  };
  if (last.answered || env.signal?.aborted) return result;
  if (last.failure === 'not-http' || (last.failure === 'silent' && lease.scheme !== 'tcp')) {
    result.reason = 'not-http';
    return result;
  }
  result.reason = 'not-listening';
  const listeners = loopbackOnly ?? (await listenersInContainer(env, lease.service, lease.containerPort));
  if (listeners && listeners.length > 0 && listeners.every((l) => l.loopback)) {
    result.reason = 'loopback-only';
    result.observed = `${last.observed}; inside its container, ${lease.service} listens on port ${lease.containerPort} only on ${[...new Set(listeners.map((l) => l.address))].join(' and ')}`;
  } else if (listeners && listeners.length === 0) {
    result.observed = `${last.observed}; inside its container, nothing listens on port ${lease.containerPort}`;
  }
  return result;
}
