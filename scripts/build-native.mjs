#!/usr/bin/env node
// `npm run build:native` (part of `npm run build`): compiles the native executor's addon, native/ ->
// native/build/Release/dust_ort.node, with node-gyp against this Node's own headers (no download).
//
// The addon is optional on a CPU host: where it cannot be built, this prints what is missing and how to get it, and
// exits 0, so that the build goes on and the server serves --device cpu on onnxruntime-node (docs/architecture.md,
// "Executors"). Under CI=true a failure fails the build. --device cuda needs the addon.
//
// A binary whose recorded inputs (sources, binding.gyp, the ONNX Runtime header, Node's ABI) match is kept, so that
// repeated builds cost nothing and a binary built elsewhere for the same inputs (a container build without a
// compiler) is used as it is.
//
//   node scripts/build-native.mjs            build when stale
//   node scripts/build-native.mjs --force    rebuild
//   node scripts/build-native.mjs --check    only report whether the binary is current
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NATIVE = path.join(ROOT, 'native');
const BINARY = path.join(NATIVE, 'build', 'Release', 'dust_ort.node');
const STAMP = path.join(NATIVE, 'build', 'Release', 'dust_ort.inputs.json');
const require = createRequire(import.meta.url);

const args = process.argv.slice(2);
const strict = process.env.CI === 'true' || process.env.CI === '1';
const say = (message) => process.stdout.write(`build:native: ${message}\n`);

/** What is missing and how to get it: a failure under CI, a note otherwise. */
function missing(what, fix) {
  const consequence = strict
    ? 'CI=true: failing the build'
    : 'the server still serves --device cpu (and webgpu) on onnxruntime-node; --device cuda needs the addon';
  process.stderr.write(`build:native: cannot build the native executor: ${what}\n  fix: ${fix}\n  ${consequence}\n`);
  process.exit(strict ? 1 : 0);
}

/** The inputs the binary is a function of, hashed: a binary built from the same inputs need not be rebuilt. */
function inputsDigest() {
  const hash = createHash('sha256');
  const files = [
    'binding.gyp',
    ...readdirSync(path.join(NATIVE, 'src')).map((f) => `src/${f}`),
    ...readdirSync(path.join(NATIVE, 'include', 'onnxruntime')).map((f) => `include/onnxruntime/${f}`),
  ].sort();
  for (const f of files) hash.update(`${f}\0`).update(readFileSync(path.join(NATIVE, f)));
  const addonApi = require('node-addon-api/package.json').version;
  hash.update(`node-abi ${process.versions.modules} napi ${process.versions.napi} node-addon-api ${addonApi} ${process.platform}/${process.arch}`);
  return hash.digest('hex');
}

function current(digest) {
  if (!existsSync(BINARY) || !existsSync(STAMP)) return false;
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8')).inputs === digest;
  } catch {
    return false;
  }
}

/** A folder with include/node/node_api.h: node-gyp's --nodedir, so that it downloads nothing. */
function nodeDir() {
  const candidates = [process.env.DUST_NODE_DIR, '/usr', '/usr/local', path.resolve(path.dirname(process.execPath), '..')].filter(Boolean);
  return candidates.find((dir) => existsSync(path.join(dir, 'include', 'node', 'node_api.h')));
}

const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;

function nodeGyp() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const bundled = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    return existsSync(bundled) ? bundled : undefined;
  }
}

/** Loads the fresh binary in a child process: a link or ABI problem shows here, not at the server's start. */
function loads() {
  const r = spawnSync(process.execPath, ['-e', `const a = require(${JSON.stringify(BINARY)}); if (typeof a.init !== 'function') process.exit(2);`], {
    encoding: 'utf8',
  });
  return r.status === 0 ? undefined : (r.stderr || `exit ${r.status}`).trim().split('\n').slice(0, 3).join(' ');
}

async function main() {
  if (process.platform !== 'linux') missing(`the addon is built on Linux only, this is ${process.platform}`, 'use --device cpu');
  let digest;
  try {
    digest = inputsDigest();
  } catch (err) {
    missing(`node-addon-api is not installed (${err.message.split('\n')[0]})`, 'run `npm ci` (it is a devDependency)');
  }
  if (!args.includes('--force') && current(digest)) {
    say(`up to date: ${path.relative(ROOT, BINARY)}`);
    return;
  }
  if (args.includes('--check')) {
    process.stderr.write(`build:native: ${path.relative(ROOT, BINARY)} is missing or stale; run \`npm run build:native\`\n`);
    process.exit(1);
  }
  const dir = nodeDir();
  if (!dir)
    missing(
      "Node.js's C headers (include/node/node_api.h under /usr, /usr/local or node's prefix)",
      'install the headers of this Node.js (Debian: `apt-get install libnode-dev`), or set DUST_NODE_DIR to the prefix that holds include/node',
    );
  const gyp = nodeGyp();
  if (!gyp) missing('node-gyp', 'run `npm ci` (it is a devDependency)');
  const cxx = process.env.CXX ?? 'g++';
  const absent = [
    [cxx, 'a C++17 compiler'],
    ['make', 'make'],
    ['python3', 'Python 3 (node-gyp runs gyp with it)'],
  ].filter(([cmd]) => !which(cmd));
  if (absent.length > 0) missing(absent.map(([, what]) => what).join(', '), 'Debian: `apt-get install g++ make python3`');

  say(`compiling native/src with node-gyp against ${path.join(dir, 'include', 'node')} (Node ABI ${process.versions.modules})...`);
  const t0 = performance.now();
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [gyp, 'rebuild', `--nodedir=${dir}`, '--release', `--jobs=max`], { cwd: NATIVE, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines = [];
    const show = (chunk) => {
      for (const line of String(chunk).split('\n')) {
        if (!line.trim()) continue;
        lines.push(line);
        // Progress: the compiler's steps and its diagnostics; node-gyp's own chatter stays in the log below.
        if (/^\s*(CXX|SOLINK_MODULE|COPY|LINK)\b|error|warning/i.test(line) && !/^gyp info/.test(line)) process.stdout.write(`  ${line.trim()}\n`);
      }
    };
    child.stdout.on('data', show);
    child.stderr.on('data', show);
    child.on('close', (status) => {
      if (status !== 0) process.stderr.write(lines.slice(-40).join('\n') + '\n');
      resolve(status);
    });
  });
  if (code !== 0) missing(`node-gyp failed (exit ${code}; its last lines are above)`, 'fix the error above, then run `npm run build:native`');
  const problem = loads();
  if (problem) missing(`the built addon does not load: ${problem}`, 'run `npm run build:native -- --force`');
  writeFileSync(STAMP, JSON.stringify({ inputs: digest, node: process.versions.node, builtAt: new Date().toISOString() }, null, 2) + '\n');
  say(`built ${path.relative(ROOT, BINARY)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

await main();
