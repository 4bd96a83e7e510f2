/** Is a host port free? Tries to bind it on 127.0.0.1 and on all addresses (where Docker publishes). */
import net from 'node:net';
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';

function tryListenTcp(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function tryBindUdp(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.unref();
    sock.once('error', () => {
      sock.close();
      resolve(false);
    });
    sock.bind({ port, address: host, exclusive: true }, () => sock.close(() => resolve(true)));
  });
}

export async function isPortFree(port: number, protocol: 'tcp' | 'udp' = 'tcp'): Promise<boolean> {
  const tryIt = protocol === 'udp' ? tryBindUdp : tryListenTcp;
  return (await tryIt(port, '127.0.0.1')) && (await tryIt(port, '0.0.0.0'));
}

export interface PortHolder {
  pid: number;
  command: string;
}

/**
 * Best effort on Linux: which process listens on a TCP port (from /proc/net/tcp{,6} and /proc/<pid>/fd).
 * Returns undefined when it cannot be told (another OS, or the process belongs to another user).
 */
export async function findPortHolder(port: number): Promise<PortHolder | undefined> {
  const inodes = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const local = cols[1];
      if (!local || cols[3] !== '0A') continue; // 0A = LISTEN
      const hexPort = local.split(':').pop();
      if (hexPort && parseInt(hexPort, 16) === port && cols[9]) inodes.add(cols[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  const { readdir, readlink } = await import('node:fs/promises');
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const target = await readlink(`/proc/${pid}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(target);
        if (m && inodes.has(m[1]!)) {
          const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0/g, ' ').trim();
          return { pid: Number(pid), command: cmd.slice(0, 200) };
        }
      } catch {
        // process went away or not ours
      }
    }
  }
  return undefined;
}
