import { describe, expect, it } from 'vitest';
import type { ContainerView } from '../../src/engine/docker.js';
import { evaluateReadiness, hintFor, type FailureDiagnosis } from '../../src/engine/readiness.js';
import { containerView } from './fixtures.js';

const SINCE = Date.parse('2025-01-01T12:00:00Z');
const BEFORE = '2025-01-01T11:00:00.123456789Z';
const AFTER = '2025-01-01T12:00:05.123456789Z';
/** What Docker reports as FinishedAt for a container that never stopped. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

function container(service: string, over: Partial<ContainerView> = {}): ContainerView {
  return containerView(service, { startedAt: '2025-01-01T12:00:01Z', finishedAt: ZERO_TIME, ...over });
}

function evaluate(c: ContainerView, upFinished = true) {
  return evaluateReadiness([c.service], [c], { since: SINCE, upFinished });
}

describe('evaluateReadiness', () => {
  it('counts a healthy container as ready', () => {
    expect(evaluate(container('db', { health: 'healthy' }))).toEqual({ ready: ['db'], waiting: [] });
  });

  it('counts a running container without healthcheck as ready', () => {
    expect(evaluate(container('web'))).toEqual({ ready: ['web'], waiting: [] });
  });

  it('waits while the healthcheck is starting', () => {
    const v = evaluate(container('db', { health: 'starting' }));
    expect(v.ready).toEqual([]);
    expect(v.waiting).toEqual([{ service: 'db', state: 'health: starting' }]);
    expect(v.failure).toBeUndefined();
  });

  it('fails an unhealthy container', () => {
    const v = evaluate(container('db', { health: 'unhealthy' }));
    expect(v.failure).toMatchObject({ service: 'db', container: 'feat-a-db-1', reason: 'unhealthy' });
    expect(v.ready).toEqual([]);
  });

  it('counts a one-shot that exited 0 during this run as ready', () => {
    const v = evaluate(container('migrate', { state: 'exited', exitCode: 0, finishedAt: AFTER }));
    expect(v).toEqual({ ready: ['migrate'], waiting: [] });
  });

  it('fails a container that exited non-zero during this run', () => {
    const v = evaluate(container('api', { state: 'exited', exitCode: 1, finishedAt: AFTER }));
    expect(v.failure).toMatchObject({ service: 'api', reason: 'exited', exitCode: 1 });
    expect(v.failure?.message).toContain('code 1');
  });

  it('waits for a container left over (exited) from an earlier run', () => {
    const v = evaluate(container('api', { state: 'exited', exitCode: 1, finishedAt: BEFORE }));
    expect(v.failure).toBeUndefined();
    expect(v.ready).toEqual([]);
    expect(v.waiting).toEqual([{ service: 'api', state: 'exited' }]);
  });

  it('does not count an old successful exit as ready', () => {
    const v = evaluate(container('migrate', { state: 'exited', exitCode: 0, finishedAt: BEFORE }));
    expect(v.ready).toEqual([]);
    expect(v.waiting).toHaveLength(1);
  });

  it('fails a restarting container as an exit, naming the crash loop', () => {
    const v = evaluate(container('api', { state: 'restarting', exitCode: 3, restartCount: 4 }));
    expect(v.failure).toMatchObject({ reason: 'exited', exitCode: 3 });
    expect(v.failure!.message).toContain('crash-looping');
  });

  it('reports an OOM kill', () => {
    const v = evaluate(container('api', { state: 'exited', exitCode: 137, oomKilled: true, finishedAt: AFTER }));
    expect(v.failure).toMatchObject({ reason: 'oom-killed', exitCode: 137 });
  });

  it('reports an OOM kill even with exit code 0', () => {
    const v = evaluate(container('api', { state: 'exited', exitCode: 0, oomKilled: true, finishedAt: AFTER }));
    expect(v.failure?.reason).toBe('oom-killed');
    expect(v.ready).toEqual([]);
  });

  it('fails a dead container', () => {
    const v = evaluate(container('api', { state: 'dead', exitCode: 0, finishedAt: AFTER }));
    expect(v.failure?.reason).toBe('dead');
  });

  it('waits for a created container', () => {
    expect(evaluate(container('api', { state: 'created' })).waiting).toEqual([{ service: 'api', state: 'created' }]);
  });

  it('waits for a missing container while compose up runs, and fails after', () => {
    const before = evaluateReadiness(['web'], [], { since: SINCE, upFinished: false });
    expect(before.failure).toBeUndefined();
    expect(before.waiting).toEqual([{ service: 'web', state: 'not created' }]);
    const after = evaluateReadiness(['web'], [], { since: SINCE, upFinished: true });
    expect(after.failure).toMatchObject({ service: 'web', reason: 'missing', container: '' });
  });

  it('judges the newest container of a service', () => {
    const old = container('api', { id: 'old', name: 'old', state: 'exited', exitCode: 1, startedAt: '2025-01-01T11:59:00Z', finishedAt: AFTER });
    const fresh = container('api', { id: 'new', name: 'new', startedAt: '2025-01-01T12:00:02Z' });
    expect(evaluateReadiness(['api'], [old, fresh], { since: SINCE, upFinished: true })).toEqual({ ready: ['api'], waiting: [] });
    expect(evaluateReadiness(['api'], [fresh, old], { since: SINCE, upFinished: true })).toEqual({ ready: ['api'], waiting: [] });
  });

  it('ignores containers of services it does not wait for', () => {
    const v = evaluateReadiness(['web'], [container('web'), container('other', { state: 'exited', exitCode: 1, finishedAt: AFTER })], {
      since: SINCE,
      upFinished: true,
    });
    expect(v).toEqual({ ready: ['web'], waiting: [] });
  });

  it('keeps the first failure and still sorts the other services', () => {
    const v = evaluateReadiness(
      ['a', 'b', 'c', 'd'],
      [
        container('a', { health: 'unhealthy' }),
        container('b', { state: 'exited', exitCode: 2, finishedAt: AFTER }),
        container('c'),
        container('d', { health: 'starting' }),
      ],
      { since: SINCE, upFinished: true },
    );
    expect(v.failure?.service).toBe('a');
    expect(v.ready).toEqual(['c']);
    expect(v.waiting).toEqual([{ service: 'd', state: 'health: starting' }]);
  });
});

describe('hintFor', () => {
  function diag(over: Partial<FailureDiagnosis>): FailureDiagnosis {
    return { service: 'api', container: 'feat-a-api-1', reason: 'exited', exitCode: 1, message: 'm', logTail: [], healthLog: [], ...over };
  }

  it('recognises a port in use', () => {
    expect(hintFor(diag({ logTail: ['Error: listen EADDRINUSE: address already in use :::3000'] }))).toMatch(/port .* is taken/);
    expect(hintFor(diag({ logTail: ['Bind for 0.0.0.0:80 failed: port is already allocated'] }))).toMatch(/port .* is taken/);
  });

  it('recognises a refused connection', () => {
    for (const line of ['connect ECONNREFUSED 127.0.0.1:5432', 'could not translate host name "db" to address', 'Connection refused']) {
      expect(hintFor(diag({ logTail: ['starting', line] }))).toMatch(/cannot reach a service/);
    }
  });

  it('recognises an OOM kill before looking at the logs', () => {
    expect(hintFor(diag({ reason: 'oom-killed', logTail: ['address already in use'] }))).toMatch(/more memory/);
  });

  it('points at the healthcheck for an unhealthy service', () => {
    expect(hintFor(diag({ reason: 'unhealthy' }))).toMatch(/healthcheck/);
  });

  it('falls back to the logs', () => {
    const hint = hintFor(diag({ logTail: ['panic: something else'] }));
    expect(hint).toContain('sandstack logs api');
    expect(hint).not.toMatch(/more memory|is taken|cannot reach/);
  });
});
