import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SandstackError } from '../../src/errors.js';
import {
  branchSlug,
  deriveInstanceId,
  instanceEnvironment,
  homeLabelValue,
  instanceLabels,
  LABELS,
  MAX_ID_LENGTH,
  mergeOtelAttributes,
  sanitizeInstanceId,
  validateExplicitId,
  type InstanceIdentity,
} from '../../src/identity/identity.js';

/** A valid Compose project name, as Compose itself checks it. */
const COMPOSE_NAME = /^[a-z0-9][a-z0-9_-]*$/;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SandstackError);
    return (e as SandstackError).code;
  }
  return undefined;
}

const identity: InstanceIdentity = { id: 'feat-a', worktree: '/home/dev/shop-feat-a', kind: 'sandbox' };

describe('sanitizeInstanceId', () => {
  it.each([
    ['MyProject', 'myproject'],
    ['My Project', 'my-project'],
    ['feature/login form', 'feature-login-form'],
    ['a//b\\c', 'a-b-c'],
    ['Café Résumé', 'cafe-resume'],
    ['ÅNGSTRÖM', 'angstrom'],
    ['..hidden', 'hidden'],
    ['--dash-first', 'dash-first'],
    ['_under', 'under'],
    ['trailing--', 'trailing'],
    ['trailing__', 'trailing'],
    ['keep_under_score', 'keep_under_score'],
    ['a   b', 'a-b'],
    ['v1.2.3', 'v1-2-3'],
    ['日本語abc', 'abc'],
  ])('%j -> %j', (raw, expected) => {
    const id = sanitizeInstanceId(raw);
    expect(id).toBe(expected);
    expect(id).toMatch(COMPOSE_NAME);
  });

  it.each(['', '   ', '---', '...', '/', '日本語', '!!!'])('rejects %j, which has no letters or digits', (raw) => {
    expect(codeOf(() => sanitizeInstanceId(raw))).toBe('SANDSTACK_INSTANCE_ID_INVALID');
  });

  it('the error for an unusable name carries a hint about --instance', () => {
    try {
      sanitizeInstanceId('???');
      expect.unreachable();
    } catch (e) {
      expect((e as SandstackError).hint).toMatch(/--instance/);
      expect((e as SandstackError).exitCode).toBe(2);
    }
  });

  it('cuts long names to MAX_ID_LENGTH with a stable 8-hex hash of the original', () => {
    const raw = `Feature/${'x'.repeat(80)}`;
    const id = sanitizeInstanceId(raw);
    expect(id.length).toBeLessThanOrEqual(MAX_ID_LENGTH);
    expect(id).toMatch(COMPOSE_NAME);
    const hash = createHash('sha256').update(raw).digest('hex').slice(0, 8);
    expect(id.endsWith(`-${hash}`)).toBe(true);
    expect(id.startsWith('feature-xxxx')).toBe(true);
    expect(sanitizeInstanceId(raw)).toBe(id);
  });

  it('gives two long names sharing a 60-character prefix different ids', () => {
    const prefix = 'a-very-long-branch-name-that-goes-on-and-on-and-on-forever-x';
    expect(prefix.length).toBe(60);
    const a = sanitizeInstanceId(`${prefix}-first`);
    const b = sanitizeInstanceId(`${prefix}-second`);
    expect(a).not.toBe(b);
    for (const id of [a, b]) {
      expect(id.length).toBeLessThanOrEqual(MAX_ID_LENGTH);
      expect(id).toMatch(/-[0-9a-f]{8}$/);
      expect(id).toMatch(COMPOSE_NAME);
    }
  });

  it('does not leave a dash before the hash when the cut lands on separators', () => {
    // 38 letters then many dashes: the cut at 39 characters ends with '-'.
    const raw = `${'b'.repeat(38)}${'-'.repeat(5)}${'c'.repeat(20)}`;
    const id = sanitizeInstanceId(raw);
    expect(id).not.toMatch(/--/);
    expect(id).toMatch(/^b{38}-[0-9a-f]{8}$/);
  });

  it('leaves names of exactly MAX_ID_LENGTH alone', () => {
    const raw = 'k'.repeat(MAX_ID_LENGTH);
    expect(sanitizeInstanceId(raw)).toBe(raw);
    expect(sanitizeInstanceId(`${raw}k`)).not.toBe(`${raw}k`);
    expect(sanitizeInstanceId(`${raw}k`).length).toBe(MAX_ID_LENGTH);
  });

  it('is deterministic', () => {
    for (const raw of ['Some Folder', 'x'.repeat(100), 'Ünïcödé/Branch']) {
      expect(sanitizeInstanceId(raw)).toBe(sanitizeInstanceId(raw));
    }
  });
});

describe('validateExplicitId', () => {
  it.each(['a', 'feat-a', 'x_1', '0abc', 'k'.repeat(MAX_ID_LENGTH)])('accepts %j unchanged', (id) => {
    expect(validateExplicitId(id)).toBe(id);
  });

  it.each(['Feat', 'has space', '-lead', '_lead', 'a/b', 'a.b', '', 'k'.repeat(MAX_ID_LENGTH + 1)])('rejects %j', (id) => {
    expect(codeOf(() => validateExplicitId(id))).toBe('SANDSTACK_INSTANCE_ID_INVALID');
  });

  it('suggests the sanitised form in the hint', () => {
    try {
      validateExplicitId('My Feature');
      expect.unreachable();
    } catch (e) {
      expect((e as SandstackError).message).toMatch(/Invalid instance id "My Feature"/);
      expect((e as SandstackError).hint).toContain('my-feature');
    }
  });

  // BUG (src/identity/identity.ts, validateExplicitId): building the hint calls
  // sanitizeInstanceId(id), which itself throws for an id without letters or digits ("---"), so the
  // user gets "Cannot derive an instance id from ..." instead of the "Invalid instance id" message.
  it('reports "Invalid instance id" for an explicit id without letters or digits', () => {
    try {
      validateExplicitId('---');
      expect.unreachable();
    } catch (e) {
      expect((e as SandstackError).message).toMatch(/^Invalid instance id "---"/);
    }
  });
});

describe('branchSlug', () => {
  it('turns a branch name into a slug', () => {
    expect(branchSlug('feat/Operation Metrics')).toBe('feat-operation-metrics');
    expect(branchSlug('user/JIRA-123/fix_it')).toBe('user-jira-123-fix_it');
    expect(branchSlug('main')).toBe('main');
  });
});

describe('deriveInstanceId', () => {
  const base = { worktree: '/home/dev/Shop Feature', branch: 'feat/Login', idFrom: 'folder' as const };

  it('prefers the --instance flag over everything', () => {
    expect(deriveInstanceId({ ...base, flag: 'from-flag', env: 'from-env', idFrom: 'branch' })).toBe('from-flag');
  });

  it('uses SANDSTACK_INSTANCE when there is no flag', () => {
    expect(deriveInstanceId({ ...base, env: 'from-env', idFrom: 'branch' })).toBe('from-env');
  });

  it('validates explicit ids instead of sanitising them', () => {
    expect(codeOf(() => deriveInstanceId({ ...base, flag: 'Not Valid' }))).toBe('SANDSTACK_INSTANCE_ID_INVALID');
    expect(codeOf(() => deriveInstanceId({ ...base, env: 'Not Valid' }))).toBe('SANDSTACK_INSTANCE_ID_INVALID');
  });

  it('derives from the worktree folder name', () => {
    expect(deriveInstanceId(base)).toBe('shop-feature');
    expect(deriveInstanceId({ ...base, worktree: '/home/dev/Shop Feature/' })).toBe('shop-feature');
    expect(deriveInstanceId({ ...base, worktree: 'C:\\Users\\dev\\My Repo' })).toBe('my-repo');
  });

  it('derives from the branch in branch mode', () => {
    expect(deriveInstanceId({ ...base, idFrom: 'branch' })).toBe('feat-login');
  });

  it('throws in branch mode when there is no branch', () => {
    expect(codeOf(() => deriveInstanceId({ ...base, idFrom: 'branch', branch: undefined }))).toBe('SANDSTACK_INSTANCE_ID_INVALID');
  });

  it('throws when the folder name has no letters or digits', () => {
    expect(codeOf(() => deriveInstanceId({ idFrom: 'folder', worktree: '/' }))).toBe('SANDSTACK_INSTANCE_ID_INVALID');
  });
});

describe('mergeOtelAttributes', () => {
  it('adds sandstack attributes to nothing', () => {
    expect(mergeOtelAttributes(undefined, identity)).toBe('sandstack.instance.id=feat-a,deployment.environment=sandbox');
    expect(mergeOtelAttributes('', identity)).toBe('sandstack.instance.id=feat-a,deployment.environment=sandbox');
  });

  it("keeps the project's attributes and replaces sandstack's keys", () => {
    const merged = mergeOtelAttributes('service.name=api, deployment.environment = prod ,team=core,sandstack.instance.id=old', identity);
    const entries = merged.split(',');
    expect(entries).toContain('service.name=api');
    expect(entries).toContain('team=core');
    expect(entries.filter((e) => e.startsWith('deployment.environment'))).toEqual(['deployment.environment=sandbox']);
    expect(entries.filter((e) => e.startsWith('sandstack.instance.id'))).toEqual(['sandstack.instance.id=feat-a']);
    expect(merged).not.toContain('prod');
    expect(merged).not.toContain('old');
  });

  it('leaves no empty entries', () => {
    const merged = mergeOtelAttributes(',, a=1,,b=2 ,', identity);
    expect(merged.split(',').every((e) => e.length > 0)).toBe(true);
    expect(merged).toBe('a=1,b=2,sandstack.instance.id=feat-a,deployment.environment=sandbox');
  });

  it('is idempotent', () => {
    const once = mergeOtelAttributes('service.name=api', identity);
    expect(mergeOtelAttributes(once, identity)).toBe(once);
  });
});

describe('instanceLabels', () => {
  it('labels the instance, worktree, kind and managed flag', () => {
    expect(instanceLabels(identity)).toEqual({
      [LABELS.instance]: 'feat-a',
      [LABELS.worktree]: '/home/dev/shop-feat-a',
      [LABELS.kind]: 'sandbox',
      [LABELS.managed]: 'true',
    });
    expect(LABELS.instance).toBe('dev.sandstack.instance');
  });

  it('adds the leases label only when there are leases', () => {
    expect(instanceLabels(identity, '')).not.toHaveProperty(LABELS.leases);
    expect(instanceLabels(identity, 'web:80/tcp=20001')[LABELS.leases]).toBe('web:80/tcp=20001');
  });
});

describe('instanceEnvironment', () => {
  it('injects the id, kind and OTEL attributes', () => {
    expect(instanceEnvironment({ ...identity, kind: 'local' })).toEqual({
      SANDSTACK_INSTANCE_ID: 'feat-a',
      SANDSTACK_ENVIRONMENT: 'local',
      OTEL_RESOURCE_ATTRIBUTES: 'sandstack.instance.id=feat-a,deployment.environment=local',
    });
  });

  it('merges with existing OTEL attributes', () => {
    expect(instanceEnvironment(identity, 'service.name=web').OTEL_RESOURCE_ATTRIBUTES).toBe(
      'service.name=web,sandstack.instance.id=feat-a,deployment.environment=sandbox',
    );
  });
});

describe('state home label', () => {
  it('is a short stable hash of the absolute state home path', () => {
    expect(homeLabelValue('/tmp/home-a')).toMatch(/^[0-9a-f]{12}$/);
    expect(homeLabelValue('/tmp/home-a')).toBe(homeLabelValue('/tmp/home-a/'));
    expect(homeLabelValue('/tmp/home-a')).not.toBe(homeLabelValue('/tmp/home-b'));
    expect(homeLabelValue('relative/home')).toBe(homeLabelValue(`${process.cwd()}/relative/home`));
  });

  it('labels every resource of an instance whose identity names its home', () => {
    const identity = { id: 'feat-a', worktree: '/w/feat-a', kind: 'local' as const, home: homeLabelValue('/tmp/home-a') };
    expect(instanceLabels(identity)[LABELS.home]).toBe(homeLabelValue('/tmp/home-a'));
    expect(instanceLabels({ id: 'x', worktree: '/w/x', kind: 'local' })).not.toHaveProperty(LABELS.home);
  });
});
