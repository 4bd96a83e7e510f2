import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandstackError } from '../../src/errors.js';
import { activeServices, parsePortEntry, toRecord, usesDefaultNetwork, type ComposeModel, type ComposeService } from '../../src/compose/model.js';
import { locateComposeFiles, parseResolvedModel } from '../../src/compose/resolve.js';

describe('parsePortEntry', () => {
  it.each([
    ['8000', [{ target: 8000, published: undefined, hostIp: undefined, protocol: 'tcp' }]],
    ['8000:8000', [{ target: 8000, published: 8000, hostIp: undefined, protocol: 'tcp' }]],
    ['8080:80', [{ target: 80, published: 8080, hostIp: undefined, protocol: 'tcp' }]],
    ['127.0.0.1:8000:8000', [{ target: 8000, published: 8000, hostIp: '127.0.0.1', protocol: 'tcp' }]],
    ['0.0.0.0:5432:5432/udp', [{ target: 5432, published: 5432, hostIp: '0.0.0.0', protocol: 'udp' }]],
    ['[::1]:80:80', [{ target: 80, published: 80, hostIp: '::1', protocol: 'tcp' }]],
    ['127.0.0.1::80', [{ target: 80, published: undefined, hostIp: '127.0.0.1', protocol: 'tcp' }]],
    ['53/udp', [{ target: 53, published: undefined, hostIp: undefined, protocol: 'udp' }]],
    ['80/tcp', [{ target: 80, published: undefined, hostIp: undefined, protocol: 'tcp' }]],
    [
      '8000-8001:9000-9001',
      [
        { target: 9000, published: 8000, hostIp: undefined, protocol: 'tcp' },
        { target: 9001, published: 8001, hostIp: undefined, protocol: 'tcp' },
      ],
    ],
  ])('short form %j', (entry, expected) => {
    const got = parsePortEntry(entry);
    expect(got.map(({ target, published, hostIp, protocol }) => ({ target, published, hostIp, protocol }))).toEqual(expected);
    for (const m of got) expect(m.raw).toBe(entry);
  });

  it('expands a container-only range', () => {
    expect(parsePortEntry('3000-3002').map((m) => m.target)).toEqual([3000, 3001, 3002]);
  });

  it('trims whitespace', () => {
    expect(parsePortEntry(' 8000:80 ')[0]).toMatchObject({ target: 80, published: 8000 });
  });

  it('returns nothing for an entry it cannot read', () => {
    expect(parsePortEntry('abc')).toEqual([]);
  });

  it('reads a number as a container port', () => {
    expect(parsePortEntry(8080)).toEqual([{ target: 8080, protocol: 'tcp', raw: '8080' }]);
  });

  it('reads the long form', () => {
    const entry = { target: 5432, published: 15432, host_ip: '127.0.0.1', protocol: 'udp' };
    const [m, ...rest] = parsePortEntry(entry);
    expect(rest).toEqual([]);
    expect(m).toMatchObject({ target: 5432, published: 15432, hostIp: '127.0.0.1', protocol: 'udp' });
    expect(JSON.parse(m!.raw)).toEqual(entry);
  });

  it('reads the long form with published as a string (Compose v2 output)', () => {
    const [m] = parsePortEntry({ mode: 'ingress', host_ip: '0.0.0.0', target: 8000, published: '8000', protocol: 'tcp' });
    expect(m).toMatchObject({ target: 8000, published: 8000, hostIp: '0.0.0.0', protocol: 'tcp' });
  });

  it('reads the long form without published (random host port)', () => {
    expect(parsePortEntry({ target: 80 })).toMatchObject([{ target: 80, published: undefined, protocol: 'tcp' }]);
    expect(parsePortEntry({ target: 80, published: '' })).toMatchObject([{ target: 80, published: undefined }]);
  });

  it('reads a long form with a published range', () => {
    expect(parsePortEntry({ target: '9000-9001', published: '8000-8001' }).map((m) => [m.published, m.target])).toEqual([
      [8000, 9000],
      [8001, 9001],
    ]);
  });
});

describe('toRecord', () => {
  it('returns {} for undefined', () => {
    expect(toRecord(undefined)).toEqual({});
  });

  it('reads the list form, splitting at the first =', () => {
    expect(toRecord(['A=1', 'B=x=y', 'EMPTY=', 'KEY'])).toEqual({ A: '1', B: 'x=y', EMPTY: '', KEY: null });
  });

  it('reads the map form, turning scalars into strings and keeping null', () => {
    expect(toRecord({ A: 1, B: true, C: 'c', D: null })).toEqual({ A: '1', B: 'true', C: 'c', D: null });
  });
});

describe('usesDefaultNetwork', () => {
  it.each<[string, ComposeService, boolean]>([
    ['no networks', { image: 'x' }, true],
    ['default in list', { networks: ['default', 'back'] }, true],
    ['default in map (v2 output)', { networks: { default: null } }, true],
    ['other networks only (list)', { networks: ['back'] }, false],
    ['other networks only (map)', { networks: { back: { aliases: ['db'] } } }, false],
    ['network_mode host', { network_mode: 'host' }, false],
    ['network_mode service', { network_mode: 'service:web' }, false],
  ])('%s', (_name, svc, expected) => {
    expect(usesDefaultNetwork(svc)).toBe(expected);
  });
});

describe('activeServices', () => {
  const model: ComposeModel = {
    services: {
      web: { image: 'web' },
      db: { image: 'db', profiles: [] },
      debug: { image: 'dbg', profiles: ['debug'] },
      tools: { image: 'tools', profiles: ['tools', 'debug'] },
      docs: { image: 'docs', profiles: ['docs'] },
    },
  };

  it('includes services without profiles only, when no profile is active', () => {
    expect(activeServices(model, []).sort()).toEqual(['db', 'web']);
  });

  it('includes services of any active profile', () => {
    expect(activeServices(model, ['debug']).sort()).toEqual(['db', 'debug', 'tools', 'web']);
    expect(activeServices(model, ['docs', 'tools']).sort()).toEqual(['db', 'docs', 'tools', 'web']);
  });
});

describe('parseResolvedModel', () => {
  it('parses a v2 model and keeps unknown keys', () => {
    const model = parseResolvedModel(`name: shop
services:
  web:
    image: nginx
    x-custom: 1
    ports:
      - target: 80
        published: "8080"
        protocol: tcp
        mode: ingress
x-top: true
`);
    expect(model.name).toBe('shop');
    expect(model.services.web?.image).toBe('nginx');
    expect((model.services.web as Record<string, unknown>)['x-custom']).toBe(1);
    expect((model as Record<string, unknown>)['x-top']).toBe(true);
    expect(model.services.web?.ports?.[0]).toMatchObject({ target: 80, published: '8080', mode: 'ingress' });
  });

  it('resolves YAML anchors and aliases', () => {
    const model = parseResolvedModel(`services:
  a: &svc
    image: base
  b: *svc
`);
    expect(model.services.b?.image).toBe('base');
  });

  it('rejects text that is not YAML', () => {
    expect(() => parseResolvedModel('services: [\n')).toThrow(SandstackError);
    try {
      parseResolvedModel('services: [\n');
    } catch (e) {
      expect((e as SandstackError).code).toBe('SANDSTACK_COMPOSE_INVALID');
    }
  });

  it('rejects a model of the wrong shape, naming the path', () => {
    try {
      parseResolvedModel('services:\n  web:\n    ports: 80\n');
      expect.unreachable();
    } catch (e) {
      expect((e as SandstackError).code).toBe('SANDSTACK_COMPOSE_INVALID');
      expect((e as SandstackError).message).toContain('services.web.ports');
    }
    expect(() => parseResolvedModel('version: "3.9"\n')).toThrow(/services/);
  });
});

describe('locateComposeFiles', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'sandstack-locate-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("returns [] (Compose's own discovery) when a default file exists", async () => {
    await writeFile(path.join(dir, 'docker-compose.yml'), 'services: {}\n');
    expect(await locateComposeFiles(dir, undefined)).toEqual([]);
    expect(await locateComposeFiles(dir, [])).toEqual([]);
  });

  it('throws SANDSTACK_COMPOSE_NOT_FOUND without any compose file', async () => {
    await expect(locateComposeFiles(dir, undefined)).rejects.toMatchObject({ code: 'SANDSTACK_COMPOSE_NOT_FOUND' });
  });

  it('resolves configured files relative to the project dir', async () => {
    await mkdir(path.join(dir, 'deploy'));
    await writeFile(path.join(dir, 'deploy', 'base.yaml'), 'services: {}\n');
    await writeFile(path.join(dir, 'override.yaml'), 'services: {}\n');
    expect(await locateComposeFiles(dir, ['deploy/base.yaml', 'override.yaml'])).toEqual([
      path.join(dir, 'deploy', 'base.yaml'),
      path.join(dir, 'override.yaml'),
    ]);
  });

  it('throws naming a configured file that does not exist', async () => {
    await writeFile(path.join(dir, 'compose.yaml'), 'services: {}\n');
    await expect(locateComposeFiles(dir, ['missing.yaml'])).rejects.toMatchObject({
      code: 'SANDSTACK_COMPOSE_NOT_FOUND',
      message: expect.stringContaining(path.join(dir, 'missing.yaml')),
    });
  });
});
