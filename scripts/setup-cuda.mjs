#!/usr/bin/env node
// `npm run setup:cuda`: puts ONNX Runtime's CUDA 13 execution provider next to onnxruntime-node's native library,
// so that `dust-serve serve --device cuda` works on a CUDA 13 host.
//
// onnxruntime-node's own installer fetches CUDA 12 builds from NuGet; the only CUDA 13 build of the provider in the
// npm registry is com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9 (ONNX Runtime 1.29.0 for Unity). A provider
// loads only into the ONNX Runtime release it was built for, which is why package.json pins onnxruntime-node to
// exactly 1.29.0. Checks, in order: platform, onnxruntime-node's version, the provider's ONNX Runtime version and
// CUDA major version (read from the library itself), then copies and asks the loader (`ldd`) whether the CUDA
// libraries it links are found.
//
//   npm run setup:cuda                         download the package with npm (its integrity is checked by npm)
//   npm run setup:cuda -- --from <dir|.tgz>    use the two .so files in <dir>, or a tarball from `npm pack`, offline
//   npm run setup:cuda -- --check              only report what is installed
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

const PACKAGE = 'com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9';
const FILES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];
const IN_PACKAGE = 'package/Plugins/Linux/x64';
const CUDA_MAJOR = '13';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const value = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};

function fail(message) {
  process.stderr.write(`setup:cuda: ${message}\n`);
  process.exit(1);
}
const say = (message) => process.stdout.write(`setup:cuda: ${message}\n`);

if (`${process.platform}/${process.arch}` !== 'linux/x64') fail(`the CUDA provider is set up on linux/x64 only, this is ${process.platform}/${process.arch}`);

const ortPkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
const ortVersion = require('onnxruntime-node/package.json').version;
const binDir = path.join(ortPkg, 'bin', 'napi-v6', 'linux', 'x64');
if (!existsSync(path.join(binDir, 'libonnxruntime.so.1'))) fail(`onnxruntime-node's native library is not in ${binDir}; run \`ONNXRUNTIME_NODE_INSTALL=skip npm ci\` first`);

/**
 * The folder holding the two provider files (given, unpacked from a given tarball, or downloaded with npm) and the
 * temporary folder to remove afterwards, if any.
 */
function providerSource() {
  const from = value('from');
  if (from && statSync(from).isDirectory()) return { src: from, tmp: undefined };
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dust-cuda-'));
  let tgz = from;
  if (!tgz) {
    say(`downloading ${PACKAGE} with npm (about 180 MB)...`);
    const out = execFileSync('npm', ['pack', PACKAGE, '--pack-destination', tmp, '--json', '--silent'], { encoding: 'utf8' });
    tgz = path.join(tmp, JSON.parse(out)[0].filename);
  }
  const dir = path.join(tmp, 'provider');
  extract(tgz, dir, FILES.map((f) => `${IN_PACKAGE}/${f}`));
  return { src: dir, tmp };
}

/**
 * Writes the named entries of a .tgz (ustar, as npm packs it) into dir, flat. In node, so that a build image
 * without tar (the Dockerfile's build stage) can run this.
 */
function extract(tgz, dir, wanted) {
  const tar = gunzipSync(readFileSync(tgz));
  mkdirSync(dir, { recursive: true });
  const text = (at, len) => tar.toString('utf8', at, at + len).replace(/\0.*$/s, '');
  let found = 0;
  for (let at = 0; at + 512 <= tar.length && tar[at] !== 0; ) {
    const name = [text(at + 345, 155), text(at, 100)].filter(Boolean).join('/');
    const size = parseInt(text(at + 124, 12).trim() || '0', 8);
    if (wanted.includes(name)) {
      writeFileSync(path.join(dir, path.basename(name)), tar.subarray(at + 512, at + 512 + size));
      found++;
    }
    at += 512 + Math.ceil(size / 512) * 512;
  }
  if (found !== wanted.length) fail(`${tgz} lacks ${wanted.join(' or ')}`);
}

/** The library holds its ONNX Runtime version (for its own load-time check) as a NUL-terminated string. */
function builtFor(file, version) {
  const bytes = readFileSync(file);
  return {
    ortVersion: bytes.includes(Buffer.from(`\0${version}\0`)),
    cudaMajor: bytes.includes(Buffer.from(`libcudart.so.${CUDA_MAJOR}\0`)) && bytes.includes(Buffer.from(`libcublas.so.${CUDA_MAJOR}\0`)),
  };
}

function unresolved(file) {
  try {
    const out = execFileSync('ldd', [file], { encoding: 'utf8' });
    return [...out.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1]);
  } catch {
    return undefined;
  }
}

function report() {
  const provider = path.join(binDir, FILES[1]);
  const missing = unresolved(provider);
  if (missing === undefined) say('ldd is not available here: cannot check that the CUDA libraries resolve');
  else if (missing.length === 0) say('the loader finds every library the provider links');
  else {
    say(`the loader does not find: ${missing.join(', ')}`);
    say(`install the CUDA ${CUDA_MAJOR} runtime (cuBLAS, cuRAND, cudart, and cuDNN 9 for convolutions), e.g.`);
    say('  pip install nvidia-cublas nvidia-curand nvidia-cuda-runtime nvidia-cudnn-cu13');
    say('and put their lib folders on LD_LIBRARY_PATH (or use a CUDA 13 base image); libcuda.so.1 comes with the NVIDIA driver');
  }
  say(`then check with: dust-serve serve --device cuda (it fails at start with what is missing)`);
}

if (flag('check')) {
  const present = FILES.filter((f) => existsSync(path.join(binDir, f)));
  say(`onnxruntime-node ${ortVersion}; provider files in ${binDir}: ${present.join(', ') || 'none'}`);
  if (present.length === FILES.length) report();
  process.exit(present.length === FILES.length ? 0 : 1);
}

const { src, tmp } = providerSource();
for (const f of FILES) if (!existsSync(path.join(src, f))) fail(`${f} not found in ${src}`);
const built = builtFor(path.join(src, FILES[1]), ortVersion);
if (!built.ortVersion) {
  fail(
    `the provider in ${src} is not built for ONNX Runtime ${ortVersion} (onnxruntime-node's version) and would not load. ` +
      `${PACKAGE} is ONNX Runtime 1.29.0: keep package.json's pin (onnxruntime-node 1.29.0) and run \`ONNXRUNTIME_NODE_INSTALL=skip npm ci\`.`,
  );
}
if (!built.cudaMajor) fail(`the provider in ${src} is not built for CUDA ${CUDA_MAJOR}; on a CUDA 12 host use \`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js\``);
for (const f of FILES) {
  const dest = path.join(binDir, f);
  copyFileSync(path.join(src, f), `${dest}.tmp`);
  renameSync(`${dest}.tmp`, dest);
}
if (tmp) rmSync(tmp, { recursive: true, force: true });
say(`installed the CUDA ${CUDA_MAJOR} provider for ONNX Runtime ${ortVersion} into ${binDir}: ${readdirSync(binDir).filter((f) => f.includes('providers')).join(', ')}`);
report();
