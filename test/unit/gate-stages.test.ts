import { describe, expect, it } from 'vitest';
import { validateExplicitId, MAX_ID_LENGTH } from '../../src/identity/identity.js';
import { freshInstanceId } from '../../src/gate/run.js';
import { attributeBuildFailure, deadlineFrom, parseBuildFailure } from '../../src/gate/stages.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Compose v1 with the legacy builder: `docker-compose build` output ending in a failed RUN. */
const V1 = [
  'Building backend',
  'Step 1/5 : FROM debian:bookworm-slim',
  ' ---> 6f2d1b2c3a4e',
  'Step 2/5 : RUN apt-get update',
  ' ---> Using cache',
  ' ---> 1a2b3c4d5e6f',
  'Step 3/5 : RUN apt-get install -y nope',
  ' ---> Running in 0f9e8d7c6b5a',
  'Reading package lists...',
  'Building dependency tree...',
  'E: Unable to locate package nope',
  "ERROR: Service 'backend' failed to build : The command '/bin/sh -c apt-get install -y nope' returned a non-zero code: 100",
];

/** Compose v2 with BuildKit (2.20+): the error line names the target. */
const V2 = [
  '#0 building with "default" instance using docker driver',
  '#5 [backend 2/4] COPY Makefile .',
  '#5 DONE 0.0s',
  '#6 [backend 3/4] RUN make',
  '#6 0.211 make: *** No rule to make target \'all\'.  Stop.',
  '#6 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2',
  '------',
  ' > [backend 3/4] RUN make:',
  '------',
  'failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2',
  'target backend: failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2',
];

describe('parseBuildFailure', () => {
  it('reads service, last step and exit code from Compose v1 legacy-builder output', () => {
    expect(parseBuildFailure(V1)).toEqual({ service: 'backend', step: '/bin/sh -c apt-get install -y nope', exitCode: 100 });
  });

  it('reads service, step and exit code from Compose v2 BuildKit output', () => {
    expect(parseBuildFailure(V2)).toEqual({ service: 'backend', step: '/bin/sh -c make', instruction: 'RUN make', exitCode: 2 });
  });

  it('reads the single v2 error line on its own', () => {
    expect(parseBuildFailure(['target api.v2: failed to solve: process "/bin/sh -c npm ci" did not complete successfully: exit code: 137'])).toEqual({
      service: 'api.v2',
      step: '/bin/sh -c npm ci',
      exitCode: 137,
    });
  });

  it('names the failing command from the error line, even when parallel builds interleave Step lines', () => {
    const r = parseBuildFailure([
      'Step 1/2 : FROM alpine',
      'Step 2/2 : RUN false',
      'Step 5/5 : LABEL dev.sandstack.instance=x',
      "ERROR: Service 'web' failed to build : The command '/bin/sh -c false' returned a non-zero code: 1",
    ]);
    expect(r.step).toBe('/bin/sh -c false');
    expect(r.service).toBe('web');
    expect(r.exitCode).toBe(1);
  });

  it('falls back to the last Step line when the error does not name the command', () => {
    expect(parseBuildFailure(['Step 1/2 : FROM alpine', 'Step 2/2 : RUN false', "ERROR: Service 'web' failed to build"]).step).toBe('RUN false');
  });

  it('ignores Step text that is not at the start of a line', () => {
    const r = parseBuildFailure(['#4 echo "Step 9/9 : fake"', 'target web: failed to solve: process "/bin/sh -c ./build.sh" did not complete successfully: exit code: 3']);
    expect(r.step).toBe('/bin/sh -c ./build.sh');
  });

  it('finds the service in "failed to build <service>" wording', () => {
    expect(parseBuildFailure(['Failed to build worker', 'exit code: 4']).service).toBe('worker');
  });

  it('finds an exit code without service or step (older BuildKit wording)', () => {
    expect(parseBuildFailure(['failed to solve: executor failed running [/bin/sh -c make]: exit code: 2'])).toEqual({ service: undefined, step: undefined, exitCode: 2 });
  });

  it('returns nothing for output it does not understand', () => {
    expect(parseBuildFailure([])).toEqual({ service: undefined, step: undefined, exitCode: undefined });
    expect(parseBuildFailure(['error during connect: Cannot connect to the Docker daemon'])).toEqual({ service: undefined, step: undefined, exitCode: undefined });
  });
});

describe('deadlineFrom', () => {
  it('is `seconds` from now', () => {
    const before = Date.now();
    const d = deadlineFrom(30);
    expect(d.seconds).toBe(30);
    expect(d.at).toBeGreaterThanOrEqual(before + 30_000);
    expect(d.at).toBeLessThanOrEqual(Date.now() + 30_000);
  });
});

describe('freshInstanceId', () => {
  const FORMAT = /^(.+)-gate-[0-9a-f]{6}$/;

  it('is <base>-gate-<6 hex>', () => {
    const id = freshInstanceId('feat-login');
    expect(id).toMatch(FORMAT);
    expect(FORMAT.exec(id)![1]).toBe('feat-login');
    expect(validateExplicitId(id)).toBe(id);
  });

  it('is different on each call', () => {
    const ids = new Set(Array.from({ length: 20 }, () => freshInstanceId('feat-login')));
    expect(ids.size).toBe(20);
  });

  it('stays within the id length limit and valid for a 48-character base', () => {
    const base = 'a'.repeat(20) + '-' + 'b'.repeat(27);
    expect(base).toHaveLength(MAX_ID_LENGTH);
    for (let i = 0; i < 10; i++) {
      const id = freshInstanceId(base);
      expect(id.length).toBeLessThanOrEqual(MAX_ID_LENGTH);
      expect(id).toMatch(FORMAT);
      expect(base.startsWith(FORMAT.exec(id)![1]!)).toBe(true);
      expect(validateExplicitId(id)).toBe(id);
    }
  });

  it('does not leave a separator before -gate- when the base is cut at one', () => {
    // 35 chars then '-' at index 35: the cut (36 chars) ends with '-'
    const base = `${'x'.repeat(35)}-${'y'.repeat(12)}`;
    const id = freshInstanceId(base);
    expect(id).toMatch(new RegExp(`^x{35}-gate-[0-9a-f]{6}$`));
    expect(id.length).toBeLessThanOrEqual(MAX_ID_LENGTH);
  });

  it('keeps underscores of a valid base', () => {
    const id = freshInstanceId('my_app_2');
    expect(id).toMatch(/^my_app_2-gate-[0-9a-f]{6}$/);
    expect(validateExplicitId(id)).toBe(id);
  });
});

/** Real `compose build` output captured on Docker 26.1 / buildx 0.13 (see test/unit/build-output/). */
describe('parseBuildFailure on captured output', () => {
  const fixture = (name: string) => readFileSync(path.join(__dirname, 'build-output', name), 'utf8').split('\n');

  it('Compose v2 + BuildKit, one service: `[web 3/3] RUN exit 7`', () => {
    expect(parseBuildFailure(fixture('v2-buildkit-single.txt'))).toEqual({ service: 'web', step: '/bin/sh -c exit 7', instruction: 'RUN exit 7', exitCode: 7 });
  });

  it('Compose v2 + BuildKit, two services, failing in a named stage, quoted command', () => {
    expect(parseBuildFailure(fixture('v2-buildkit-multistage.txt'))).toEqual({
      service: 'worker',
      step: `/bin/sh -c sh -c 'echo "fail \\"quoted\\"" >&2; exit 7'`,
      instruction: `RUN sh -c 'echo "fail \\"quoted\\"" >&2; exit 7'`,
      exitCode: 7,
    });
  });

  it('Compose v1 + BuildKit (its default CLI build): the stage in brackets is not taken for the service', () => {
    expect(parseBuildFailure(fixture('v1-buildkit-single.txt'))).toEqual({ service: 'web', step: '/bin/sh -c exit 7', instruction: 'RUN exit 7', exitCode: 7 });
    const r = parseBuildFailure(fixture('v1-buildkit-parallel.txt'));
    expect(r).toMatchObject({ service: 'worker', exitCode: 7, instruction: `RUN sh -c 'echo "fail \\"quoted\\"" >&2; exit 7'` });
  });

  it('Compose v1 with the classic builder (COMPOSE_DOCKER_CLI_BUILD=0), parallel', () => {
    expect(parseBuildFailure(fixture('v1-classic-parallel.txt'))).toMatchObject({ service: 'worker', step: `/bin/sh -c sh -c 'echo "fail \\"quoted\\"" >&2; exit 7'`, exitCode: 7 });
  });

  it('Compose v2 with DOCKER_BUILDKIT=0 (no service named anywhere; ANSI colour codes in the output)', () => {
    expect(parseBuildFailure(fixture('v2-legacy-single.txt'))).toEqual({ service: undefined, step: '/bin/sh -c exit 7', exitCode: 7 });
    expect(parseBuildFailure(fixture('v2-legacy-parallel.txt'))).toMatchObject({ service: undefined, step: `/bin/sh -c sh -c 'echo "fail \\"quoted\\"" >&2; exit 7'`, exitCode: 7 });
  });
});

describe('attributeBuildFailure', () => {
  const dockerfiles = {
    api: 'FROM debian:bookworm-slim AS base\nRUN echo ok\n',
    worker: `FROM debian:bookworm-slim AS builder\nRUN echo building\nRUN sh -c 'echo "fail \\"quoted\\"" >&2; exit 7'\n`,
  };

  it('finds the one service whose Dockerfile has the failing command', () => {
    expect(attributeBuildFailure(`/bin/sh -c sh -c 'echo "fail \\"quoted\\"" >&2; exit 7'`, dockerfiles)).toBe('worker');
  });

  it('returns nothing when no or several Dockerfiles match', () => {
    expect(attributeBuildFailure('/bin/sh -c make', dockerfiles)).toBeUndefined();
    expect(attributeBuildFailure('/bin/sh -c echo ok', { a: 'RUN echo ok', b: 'RUN  echo ok' })).toBeUndefined();
  });

  it('reads RUN lines with continuations', () => {
    expect(attributeBuildFailure('/bin/sh -c apt-get update &&     apt-get install -y x', { a: 'RUN apt-get update && \\\n    apt-get install -y x' })).toBe('a');
  });
});
