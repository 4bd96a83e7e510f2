#!/usr/bin/env node
/**
 * Bundles the CLI (src/cli/main.ts) with esbuild into dist/cli/main.js plus shared chunks in
 * dist/cli/chunks/, replacing tsc's dist/cli/main.js (the library, dist/index.js, stays tsc's).
 *
 * Why: Node 20 resolves and compiles every ESM file separately and has no compile cache; the CLI's
 * modules and its dependencies are several hundred files (zod, yaml, dockerode, execa), and loading
 * them cost ~0.6 s for `gate` and ~0.35 s for `ls` on these machines. Code splitting keeps the
 * commands lazy: each command's chunk loads when it runs (register.ts imports them with import()).
 *
 * ssh2 and cpu-features carry native addons and stay external (loaded from node_modules when used);
 * the banner gives the ESM chunks the `require`, `__filename` and `__dirname` of CommonJS, which
 * bundled CommonJS dependencies use (dockerode's require of built-ins, write-file-atomic's __filename).
 * Run by `npm run build` after tsc.
 */
import { build } from 'esbuild';
import { readFileSync, rmSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const outdir = path.join(root, 'dist/cli');

/**
 * Two dependencies of the Docker client that sandstack does not use on its paths load heavy modules
 * at require time: dockerode's BuildKit session and progress decoder (gRPC and protobuf, ~1 MB;
 * sandstack builds through Compose) and docker-modem's SSH transport (ssh2, a native addon). They are replaced by shims that
 * require the real module from node_modules on first call, so they cost nothing unless used, and
 * still work when used (the real files find their own assets beside them).
 */
const lazyShims = {
  name: 'lazy-shims',
  setup(b) {
    const shims = [
      { importer: /node_modules[\\/]dockerode[\\/]lib[\\/]docker\.js$/, path: './session', real: 'dockerode/lib/session.js' },
      { importer: /node_modules[\\/]docker-modem[\\/]lib[\\/]modem\.js$/, path: './ssh', real: 'docker-modem/lib/ssh.js' },
    ];
    // dockerode requires its BuildKit progress decoder (protobufjs) only inside a function: external.
    b.onResolve({ filter: /^\.\/buildkit$/ }, (args) =>
      /node_modules[\\/]dockerode[\\/]lib[\\/]docker\.js$/.test(args.importer) ? { path: 'dockerode/lib/buildkit.js', external: true } : undefined,
    );
    b.onResolve({ filter: /^\.\/(session|ssh)$/ }, (args) => {
      const shim = shims.find((s) => s.path === args.path && s.importer.test(args.importer));
      return shim ? { path: shim.real, namespace: 'lazy-shim' } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-shim' }, (args) => ({
      contents: `let real; module.exports = function (...a) { real ??= require(${JSON.stringify(args.path)}); return real.apply(this, a); };`,
      loader: 'js',
    }));
  },
};

rmSync(path.join(outdir, 'chunks'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'src/cli/main.ts' },
  outdir,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['ssh2', 'cpu-features', 'dockerode/lib/session.js', 'docker-modem/lib/ssh.js'],
  plugins: [lazyShims],
  define: { __SANDSTACK_VERSION__: JSON.stringify(version) },
  banner: {
    js: [
      "import { createRequire as __sandstackCreateRequire } from 'node:module';",
      "import { fileURLToPath as __sandstackFileURLToPath } from 'node:url';",
      'const require = __sandstackCreateRequire(import.meta.url);',
      'const __filename = __sandstackFileURLToPath(import.meta.url);',
      "const __dirname = __sandstackFileURLToPath(new URL('.', import.meta.url));",
    ].join('\n'),
  },
  allowOverwrite: true,
  legalComments: 'none',
  logLevel: 'warning',
});
chmodSync(path.join(outdir, 'main.js'), 0o755);
