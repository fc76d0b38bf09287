// Keeps only this platform's prebuilt native binaries in production node_modules: onnxruntime-node and
// tokenizers ship every platform's binaries inside one package (about 300 MB the image would never load).
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

const platform = process.platform;
const arch = process.arch;
let freed = 0;
const remove = (p) => {
  freed += du(p);
  rmSync(p, { recursive: true, force: true });
};
const du = (p) => (statSync(p).isDirectory() ? readdirSync(p).reduce((n, f) => n + du(path.join(p, f)), 0) : statSync(p).size);

// onnxruntime-node/bin/napi-v6/<platform>/<arch>/
const ort = 'node_modules/onnxruntime-node/bin/napi-v6';
for (const p of readdirSync(ort)) {
  if (p !== platform) remove(path.join(ort, p));
  else for (const a of readdirSync(path.join(ort, p))) if (a !== arch) remove(path.join(ort, p, a));
}
// tokenizers/tokenizers.<platform>-<arch>[-<abi>].node
const tok = 'node_modules/tokenizers';
for (const f of readdirSync(tok)) {
  if (f.endsWith('.node') && !f.startsWith(`tokenizers.${platform}-${arch}-gnu.`) && !f.startsWith(`tokenizers.${platform}-${arch}.`)) remove(path.join(tok, f));
}
console.log(`pruned ${(freed / 1e6).toFixed(0)} MB of other platforms' native binaries (kept ${platform}-${arch})`);
