import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { LABELS } from '../../src/identity/identity.js';
import { findExpired, findOrphans, type HomeSnapshot } from '../../src/lifecycle/reap.js';
import { currentOwner, formatOwner, ownerAlive, parseOwner, startTicksFromStat } from '../../src/state/owner.js';
import type { InstanceRecord } from '../../src/state/registry.js';

describe('owner', () => {
  it('reads the start time (field 22) even when the command name holds spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3)); // field 3 onwards
    const stat = `4242 (node (worker) x) ${fields.join(' ')}`;
    expect(startTicksFromStat(stat)).toBe('22');
  });

  it('formats and parses an owner label value', () => {
    const o = { pid: 31337, start: '987654', bootId: '0d5e6a8c-1b2c-4d3e-8f90-123456789abc' };
    expect(formatOwner(o)).toBe('31337@987654@0d5e6a8c-1b2c-4d3e-8f90-123456789abc');
    expect(parseOwner(formatOwner(o))).toEqual(o);
    expect(parseOwner('not an owner')).toBeUndefined();
    expect(parseOwner(undefined)).toBeUndefined();
  });

  it('this process is its own live owner; a different start time or boot is not', async () => {
    const me = currentOwner();
    expect(me.pid).toBe(process.pid);
    expect(await ownerAlive(me)).toBe(true);
    expect(await ownerAlive({ ...me, start: String(Number(me.start) + 1) })).toBe(false);
    expect(await ownerAlive({ ...me, bootId: 'another-boot' })).toBe(false);
  });

  it('a process that has exited is not alive, and a reused pid with another start time is not the owner', async () => {
    const child = spawn('sleep', ['30']);
    await new Promise((r) => child.once('spawn', r));
    const { readFile } = await import('node:fs/promises');
    const start = startTicksFromStat(await readFile(`/proc/${child.pid}/stat`, 'utf8'))!;
    const owner = { pid: child.pid!, start, bootId: currentOwner().bootId };
    expect(await ownerAlive(owner)).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await ownerAlive(owner)).toBe(false);
  });
});

describe('findOrphans', () => {
  const me = currentOwner();
  const dead = formatOwner({ ...me, start: String(Number(me.start) + 1) });
  const alive = formatOwner(me);
  const res = (id: string, owner?: string) => ({ id: `c-${id}`, name: id, labels: { [LABELS.instance]: id, ...(owner ? { [LABELS.owner]: owner } : {}) } });
  const rec = (id: string, owner?: string): InstanceRecord => ({ id, worktree: '/w', projectDir: '/w', kind: 'sandbox', createdAt: '2026-01-01T00:00:00Z', createdBy: 'up', leases: [], ...(owner ? { owner } : {}) });
  const snap = (containers: ReturnType<typeof res>[], records: InstanceRecord[]): HomeSnapshot => ({
    containers,
    volumes: [],
    networks: [],
    registry: { version: 1, instances: Object.fromEntries(records.map((r) => [r.id, r])) },
  });

  it('finds instances whose owner is gone, from labels or the record alone, and leaves live owners alone', async () => {
    const found = await findOrphans(snap([res('a', dead), res('b', alive), res('c')], [rec('a', dead), rec('b', alive), rec('c'), rec('d', dead)]));
    expect(found.map((o) => o.id).sort()).toEqual(['a', 'd']);
    expect(found.find((o) => o.id === 'a')!.pid).toBe(me.pid);
  });

  it('an instance handed over after its start (record without owner) is no orphan, though its containers keep the owner label', async () => {
    expect(await findOrphans(snap([res('t', dead)], [rec('t')]))).toEqual([]);
  });

  it('labelled resources whose record is gone are still an orphan of their dead owner', async () => {
    expect((await findOrphans(snap([res('x', dead)], []))).map((o) => o.id)).toEqual(['x']);
  });

  it('findExpired: past its ttl and no live owner; an instance whose owner still runs (being created) is not expired yet', async () => {
    const old = { createdAt: '2026-01-01T00:00:00Z', ttlMs: 1000 };
    const records = [{ ...rec('gone', dead), ...old }, { ...rec('creating', alive), ...old }, { ...rec('handed-over'), ...old }, { ...rec('fresh'), ttlMs: 3_600_000, createdAt: new Date().toISOString() }, rec('no-ttl')];
    const found = await findExpired(snap([], records));
    expect(found.map((e) => e.id).sort()).toEqual(['gone', 'handed-over']);
    expect(found[0]!.why).toContain('ttl 1 second without use');
  });
});
