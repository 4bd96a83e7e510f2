/**
 * Who owns a throwaway instance: the sandstack process that created it, identified so that a
 * reused process id is not mistaken for it (the process's start time, in clock ticks since boot)
 * and a reboot ends every ownership (the kernel's boot id). Written as the `dev.sandstack.owner`
 * label (`<pid>@<start ticks>@<boot id>`) and in the registry; an instance whose owner is gone is an
 * orphan (see lifecycle/reap.ts).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export interface Owner {
  pid: number;
  /** Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22). */
  start: string;
  bootId: string;
}

/** Field 22 of /proc/<pid>/stat (the text after the command name, which may hold spaces or parentheses). */
export function startTicksFromStat(stat: string): string | undefined {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19].
  return rest[19];
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

let self: Owner | undefined;

/** This process as an owner. */
export function currentOwner(): Owner {
  if (!self) {
    let start = '0';
    try {
      start = startTicksFromStat(readFileSync(`/proc/${process.pid}/stat`, 'utf8')) ?? '0';
    } catch {
      start = String(Math.round(Date.now() / 1000 - process.uptime()));
    }
    self = { pid: process.pid, start, bootId: readBootId() };
  }
  return self;
}

export function formatOwner(o: Owner): string {
  return `${o.pid}@${o.start}@${o.bootId}`;
}

export function parseOwner(value: string | undefined): Owner | undefined {
  const m = /^(\d+)@([^@]+)@(.+)$/.exec(value ?? '');
  return m ? { pid: Number(m[1]), start: m[2]!, bootId: m[3]! } : undefined;
}

/**
 * Whether the owner still runs: same boot, and a process with that pid and start time. Without
 * /proc (not Linux) a process with that pid counts as the owner.
 */
export async function ownerAlive(o: Owner, current: Owner = currentOwner()): Promise<boolean> {
  if (o.bootId !== current.bootId && o.bootId !== 'unknown' && current.bootId !== 'unknown') return false;
  try {
    const stat = await readFile(`/proc/${o.pid}/stat`, 'utf8');
    return startTicksFromStat(stat) === o.start;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && current.bootId !== 'unknown') return false;
    try {
      process.kill(o.pid, 0);
      return true;
    } catch (k) {
      return (k as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
}
