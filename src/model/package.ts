/**
 * Reading a model package from a repository (docs/model-package.md): layout, manifest, sha256
 * digests, and the check of the graphs' declared inputs/outputs against the manifest. Each failure is a
 * ModelPackageError that names the file and what is wrong, so the log line tells the operator what to fix.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ModelPackageError } from '../errors/index.js';
import { checkNormalization } from '../preprocess/index.js';
import type { Manifest } from './manifest.js';
import { parseManifest } from './manifest-schema.js';

export interface ModelPackage {
  readonly dir: string;
  readonly manifest: Manifest;
  readonly vlmPath: string;
  readonly denoiserPath: string;
  readonly tokenizerPath: string;
}

/** A version directory found in the repository: `<repository>/<name>/<version>/`. */
export interface PackageLocation {
  readonly name: string;
  readonly version: number;
  readonly dir: string;
}

/** What a loaded graph declares; the inference worker reads it from ONNX Runtime's session metadata. */
export interface ValueInfo {
  readonly name: string;
  readonly type: string;
  readonly shape: ReadonlyArray<number | string>;
}

export interface GraphInfo {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

/** Every `<name>/<positive integer>/` directory with a manifest.json. */
export async function scanRepository(root: string): Promise<PackageLocation[]> {
  const found: PackageLocation[] = [];
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    throw new ModelPackageError(`model repository ${root} cannot be read; check --model-repository`, { cause: err });
  }
  for (const name of names.sort()) {
    const modelDir = path.join(root, name);
    if (!(await stat(modelDir)).isDirectory()) continue;
    for (const v of await readdir(modelDir)) {
      if (!/^[1-9][0-9]*$/.test(v)) continue;
      const dir = path.join(modelDir, v);
      const hasManifest = await stat(path.join(dir, 'manifest.json')).then((s) => s.isFile(), () => false);
      if (hasManifest) found.push({ name, version: Number(v), dir });
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name) || a.version - b.version);
}

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Reads the manifest and verifies every listed file's digest. */
export async function readPackage(loc: PackageLocation): Promise<ModelPackage> {
  const where = `${loc.dir}/manifest.json`;
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path.join(loc.dir, 'manifest.json'), 'utf8'));
  } catch (err) {
    throw new ModelPackageError(`${where}: not readable JSON (${(err as Error).message})`, { cause: err });
  }
  const manifest = parseManifest(json, where);
  if (manifest.name !== loc.name || manifest.version !== loc.version) {
    throw new ModelPackageError(
      `${where}: manifest says ${manifest.name}@${manifest.version} but the package lives at ${loc.name}/${loc.version}`,
    );
  }
  // Statistics with min > max would serve mirrored actions; refuse them before anything is started.
  for (const [name, emb] of Object.entries(manifest.embodiments)) {
    try {
      checkNormalization(emb, name, { stateDim: manifest.state.dim, actionDim: manifest.action.dim });
    } catch (err) {
      throw new ModelPackageError(`${loc.dir}/${(err as Error).message}`, { cause: err });
    }
  }
  for (const [file, digest] of Object.entries(manifest.files)) {
    const full = path.join(loc.dir, file);
    const actual = await sha256(full).catch((err: Error) => {
      throw new ModelPackageError(`${loc.dir}: ${file} is listed in manifest.files but cannot be read (${err.message})`, { cause: err });
    });
    if (`sha256:${actual}` !== digest) {
      throw new ModelPackageError(`${loc.dir}: ${file} has sha256 ${actual}, the manifest expects ${digest.slice(7)}; the file is corrupt or the manifest is stale`);
    }
  }
  const tokenizerPath = path.join(loc.dir, manifest.text.tokenizer);
  if (!(await stat(tokenizerPath).then((s) => s.isFile(), () => false))) {
    throw new ModelPackageError(`${loc.dir}: text.tokenizer names ${manifest.text.tokenizer}, which does not exist`);
  }
  return {
    dir: loc.dir,
    manifest,
    vlmPath: path.join(loc.dir, 'vlm.onnx'),
    denoiserPath: path.join(loc.dir, 'denoiser.onnx'),
    tokenizerPath,
  };
}

type Dim = number | 'batch';

/** The inputs and outputs docs/model-package.md requires, with the manifest's sizes filled in. */
export function expectedGraphs(m: Manifest): Record<'vlm' | 'denoiser', { inputs: Record<string, [string, Dim[]]>; outputs: Record<string, [string, Dim[]]> }> {
  const B = 'batch' as const;
  return {
    vlm: {
      inputs: {
        pixel_values: ['float32', [B, m.cameras.length, 3, m.image.height, m.image.width]],
        input_ids: ['int64', [B, m.text.max_tokens]],
        attention_mask: ['int64', [B, m.text.max_tokens]],
      },
      outputs: {
        vl_embs: ['float32', [B, m.conditioning.tokens, m.conditioning.dim]],
        obs_embedding: ['float32', [B, m.future.tokens, m.future.dim]],
      },
    },
    denoiser: {
      inputs: {
        vl_embs: ['float32', [B, m.conditioning.tokens, m.conditioning.dim]],
        state: ['float32', [B, m.state.dim]],
        actions: ['float32', [B, m.action.horizon, m.action.dim]],
        future: ['float32', [B, m.future.tokens, m.future.dim]],
        tau_a: ['float32', [B]],
        tau_o: ['float32', [B]],
        embodiment_id: ['int64', [B]],
      },
      outputs: {
        v_actions: ['float32', [B, m.action.horizon, m.action.dim]],
        v_future: ['float32', [B, m.future.tokens, m.future.dim]],
      },
    },
  };
}

/**
 * Checks the graphs' declared inputs/outputs against the manifest before a version becomes READY. The batch
 * axis must be dynamic (symbolic); every other axis must equal the manifest's size.
 */
export function checkGraphs(m: Manifest, graphs: Record<'vlm' | 'denoiser', GraphInfo>): void {
  const problems: string[] = [];
  const expected = expectedGraphs(m);
  for (const graph of ['vlm', 'denoiser'] as const) {
    for (const side of ['inputs', 'outputs'] as const) {
      const declared = new Map(graphs[graph][side].map((v) => [v.name, v]));
      for (const [name, [type, dims]] of Object.entries(expected[graph][side])) {
        const v = declared.get(name);
        if (!v) {
          problems.push(`${graph}.onnx lacks ${side === 'inputs' ? 'input' : 'output'} ${name}`);
          continue;
        }
        if (v.type !== type) problems.push(`${graph}.onnx ${name} is ${v.type}, expected ${type}`);
        const shapeOk =
          v.shape.length === dims.length &&
          dims.every((d, i) => (d === 'batch' ? typeof v.shape[i] === 'string' || v.shape[i] === -1 : v.shape[i] === d));
        if (!shapeOk) {
          problems.push(`${graph}.onnx ${name} has shape [${v.shape.join(', ')}], the manifest implies [${dims.join(', ')}] (batch dynamic)`);
        }
      }
      if (side === 'inputs') {
        for (const name of declared.keys()) {
          if (!(name in expected[graph].inputs)) problems.push(`${graph}.onnx has an input ${name} the contract does not define`);
        }
      }
    }
  }
  if (problems.length > 0) throw new ModelPackageError(`${m.name}@${m.version}: graphs do not match the manifest: ${problems.join('; ')}`);
}
