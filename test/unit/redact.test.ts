import { describe, expect, it } from 'vitest';
import { collectSecrets, isRedactable, redactModel, redactText } from '../../src/evidence/redact.js';

describe('isRedactable', () => {
  it('refuses short values and boolean-, null- or number-like words', () => {
    for (const v of ['true', 'false', 'yes', 'no', 'on', 'off', 'null', 'TRUE', 'abc', 'short7!', '12345678', '1e10', '3.14159265', '-1000000']) {
      expect(isRedactable(v), v).toBe(false);
    }
    for (const v of ['s3cr3t-value', 'correct horse', 'ab12cd34']) expect(isRedactable(v), v).toBe(true);
  });
});

describe('collectSecrets', () => {
  it('keeps only redactable values of secret-like names', () => {
    const s = collectSecrets([
      { name: 'ENABLE_AUTH', value: 'true' },
      { name: 'DB_PASSWORD', value: 'hunter2' },
      { name: 'API_TOKEN', value: 'tok-1234567890' },
      { name: 'PLAIN', value: 'tok-abcdefghij' },
      { name: 'GENERATED', value: 'generated-secret-1', always: true },
    ]);
    expect(s.map((x) => x.name).sort()).toEqual(['API_TOKEN', 'GENERATED']);
  });
});

describe('redactText', () => {
  it('never replaces a short or boolean-like value, even if asked to', () => {
    expect(redactText('managed=true', [{ name: 'AUTH', value: 'true' }]).text).toBe('managed=true');
  });
});

describe('redactModel', () => {
  const model = {
    services: {
      'app-secretvalue1': {
        image: 'registry.local/secretvalue1:latest',
        environment: { DB_PASSWORD: 'secretvalue1', DATABASE_URL: 'postgres://u:secretvalue1@db/x', AUTH_ENABLED: 'true', COPY: 'secretvalue1' },
        labels: { 'dev.sandstack.instance': 'feat-secretvalue1', 'dev.sandstack.managed': 'true', other: 'secretvalue1' },
        volumes: ['/home/dev/secretvalue1/data:/data:rw', { type: 'bind', source: '/srv/secretvalue1', target: '/x' }],
        build: { context: '/home/dev/secretvalue1', args: { NPM_TOKEN: 'secretvalue1', OTHER: 'x' }, labels: { a: 'secretvalue1' } },
        command: ['run', 'secretvalue1', '--password=secretvalue1'],
      },
    },
    volumes: { data: { name: 'feat_secretvalue1', labels: { x: 'secretvalue1' } } },
  };
  const secrets = [
    { name: 'DB_PASSWORD', value: 'secretvalue1' },
    { name: 'AUTH_ENABLED', value: 'true' },
  ];
  const { model: out, count } = redactModel(model, secrets);
  const app = (out as typeof model).services['app-secretvalue1'];

  it('replaces secret values in environment values and build args, also inside a longer value', () => {
    expect(app.environment.DB_PASSWORD).toBe('[REDACTED:DB_PASSWORD]');
    expect(app.environment.DATABASE_URL).toBe('postgres://u:[REDACTED:DB_PASSWORD]@db/x');
    expect(app.environment.COPY).toBe('[REDACTED:DB_PASSWORD]');
    expect(app.build.args.NPM_TOKEN).toBe('[REDACTED:DB_PASSWORD]');
    expect(app.build.args.OTHER).toBe('x');
  });

  it('replaces secret values in other values too (command), so that none leaks', () => {
    expect(app.command).toEqual(['run', '[REDACTED:DB_PASSWORD]', '--password=[REDACTED:DB_PASSWORD]']);
  });

  it('leaves keys, labels, image names, resource names and paths alone', () => {
    expect(Object.keys((out as typeof model).services)).toEqual(['app-secretvalue1']);
    expect(app.image).toBe('registry.local/secretvalue1:latest');
    expect(app.labels).toEqual(model.services['app-secretvalue1'].labels);
    expect(app.volumes).toEqual(model.services['app-secretvalue1'].volumes);
    expect(app.build.context).toBe('/home/dev/secretvalue1');
    expect(app.build.labels).toEqual({ a: 'secretvalue1' });
    expect((out as typeof model).volumes).toEqual(model.volumes);
  });

  it('never redacts a boolean-like value', () => {
    expect(app.environment.AUTH_ENABLED).toBe('true');
    expect(app.labels['dev.sandstack.managed']).toBe('true');
  });

  it('counts replacements and does not change the input', () => {
    expect(count).toBe(6);
    expect(model.services['app-secretvalue1'].environment.DB_PASSWORD).toBe('secretvalue1');
  });

  it('redacts list-form environment entries by value only', () => {
    const r = redactModel({ services: { a: { environment: ['DB_PASSWORD=secretvalue1', 'secretvalue1_NAME=x'] } } }, secrets);
    expect((r.model as { services: { a: { environment: string[] } } }).services.a.environment).toEqual(['DB_PASSWORD=[REDACTED:DB_PASSWORD]', 'secretvalue1_NAME=x']);
  });
});
