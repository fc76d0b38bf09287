/**
 * Reading a model package from a repository (docs/model-package.md): manifest, sha256 digests, the tokenizer,
 * and the check of the graphs' declared inputs/outputs against the manifest. Every file is read confined to
 * the package folder (confined-file.ts). Each failure is a ModelPackageError that names the file or manifest
 * field and what is wrong, so the log line tells the operator what to fix.
 */
import { createHash } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { ModelPackageError } from '../errors/index.js';
import { checkNormalization, pixelDtypeOf } from '../preprocess/index.js';
import { hashConfined, readConfined, resolveConfined, stallGuard, type ConfinedFileSpec, type StallGuard } from './confined-file.js';
import { hasFutureStream, type Manifest } from './manifest.js';
import { parseManifest } from './manifest-schema.js';
import { DEFAULT_PACKAGE_LIMITS, type PackageLimits } from './package-limits.js';
import { filesField } from './package-path.js';
import { linkProblem, type PackageLocation } from './repository-scan.js';

export interface ModelPackage {
  readonly dir: string;
  readonly manifest: Manifest;
  /** Resolved paths, inside the package folder, of files whose digests were verified. */
  readonly vlmPath: string;
  readonly denoiserPath: string;
  readonly tokenizerPath: string;
  /** The tokenizer file's text as read (and verified, when manifest.files lists it): nothing reads it again. */
  readonly tokenizerJson: string;
}

/** What a graph declares; the inference worker reads it from ONNX Runtime's session metadata. */
export interface ValueInfo {
  readonly name: string;
  readonly type: string;
  readonly shape: ReadonlyArray<number | string>;
}

export interface GraphInfo {
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

export interface ReadPackageOptions {
  /** The repository the package belongs to. @default the folder two levels above the package */
  readonly repository?: string;
  /** Read a package whose folder links out of the repository. @default false */
  readonly allowSymlinks?: boolean;
  readonly limits?: PackageLimits;
}

/** The package folder, resolved; refused when it links out of the repository and that is not allowed. */
async function packageFolder(loc: PackageLocation, options: ReadPackageOptions, guard: StallGuard): Promise<string> {
  const repository = options.repository ?? path.dirname(path.dirname(loc.dir));
  const realRoot = await guard(realpath(repository), 'resolving the repository').catch((err: unknown) => {
    throw new ModelPackageError(`model repository ${repository} cannot be read; check --model-repository`, { cause: err });
  });
  const problem = await linkProblem(realRoot, loc.dir, options.allowSymlinks ?? false, guard);
  if (problem) throw new ModelPackageError(`${loc.dir}: the package folder ${problem.reason}`);
  return guard(realpath(loc.dir), 'resolving the package folder');
}

/** Node's JSON.parse messages quote the text they choke on; a refusal says where, never what. */
function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // No `cause` either: the log's error serializer prints the causes' messages.
    throw new ModelPackageError(`${where}: not valid JSON`);
  }
}

/** Reads the manifest, verifies every listed file's digest and reads the tokenizer, all inside the package folder. */
export async function readPackage(loc: PackageLocation, options: ReadPackageOptions = {}): Promise<ModelPackage> {
  const limits = options.limits ?? DEFAULT_PACKAGE_LIMITS;
  const guard = stallGuard(limits.stallMs, loc.dir);
  const realDir = await packageFolder(loc, options, guard);
  const where = `${loc.dir}/manifest.json`;

  const manifestSpec: ConfinedFileSpec = { realDir, name: 'manifest.json', field: 'manifest.json', limit: limits.manifestBytes };
  const manifestReal = await resolveConfined(manifestSpec, guard, loc.dir);
  const manifestBytes = await readConfined(manifestReal, manifestSpec, guard, loc.dir);
  const manifest = parseManifest(parseJson(manifestBytes.toString('utf8'), where), where);
  if (manifest.name !== loc.name || manifest.version !== loc.version) {
    throw new ModelPackageError(`${where}: manifest says ${manifest.name}@${manifest.version} but the package lives at ${loc.name}/${loc.version}`);
  }
  // Statistics with min > max would serve mirrored actions; refuse them before anything is started.
  for (const [name, emb] of Object.entries(manifest.embodiments)) {
    try {
      checkNormalization(emb, name, { stateDim: manifest.state.dim, actionDim: manifest.action.dim });
    } catch (err) {
      throw new ModelPackageError(`${loc.dir}/${(err as Error).message}`, { cause: err });
    }
  }

  // Every name resolved before any file is read: a package that names an outside file reads nothing.
  const tokenizerSpec: ConfinedFileSpec = { realDir, name: manifest.text.tokenizer, field: 'text.tokenizer', limit: limits.tokenizerBytes };
  const tokenizerPath = await resolveConfined(tokenizerSpec, guard, loc.dir);
  const listed: Array<{ spec: ConfinedFileSpec; real: string; digest: string }> = [];
  for (const [name, digest] of Object.entries(manifest.files)) {
    const spec: ConfinedFileSpec = { realDir, name, field: filesField(name), limit: limits.fileBytes };
    listed.push({ spec, real: await resolveConfined(spec, guard, loc.dir), digest });
  }

  const tokenizerBytes = await readConfined(tokenizerPath, tokenizerSpec, guard, loc.dir);
  for (const { spec, real, digest } of listed) {
    // The tokenizer's digest is checked on the bytes that will be used, not on a second read.
    const actual = real === tokenizerPath ? createHash('sha256').update(tokenizerBytes).digest('hex') : await hashConfined(real, spec, guard, loc.dir);
    if (`sha256:${actual}` !== digest) {
      // Only the expected digest: the actual one would describe whatever the name reaches.
      throw new ModelPackageError(
        `${loc.dir}: ${spec.field}: ${spec.name} has sha256 other than the manifest's ${digest.slice(7, 19)}...; the file is corrupt or the manifest is stale`,
      );
    }
  }
  // parseManifest made sure manifest.files lists both graphs.
  const graphPath = (file: string) => listed.find((l) => l.spec.name === file)!.real;
  return {
    dir: loc.dir,
    manifest,
    vlmPath: graphPath('vlm.onnx'),
    denoiserPath: graphPath('denoiser.onnx'),
    tokenizerPath,
    tokenizerJson: tokenizerBytes.toString('utf8'),
  };
}

type Dim = number | 'batch';

/**
 * Whether the denoiser takes a flow time per action position (input `action_times`): exactly the packages whose
 * manifest lists the `condition` method of real-time chunking, which feeds committed positions at time 1.
 */
export function takesPositionTimes(m: Manifest): boolean {
  return m.realtime_chunking?.includes('condition') ?? false;
}

/**
 * The inputs and outputs docs/model-package.md requires, with the manifest's sizes filled in. An action-only package
 * has none of the future stream's (obs_embedding, future, tau_o, v_future): since checkGraphs refuses inputs the
 * contract does not define, a DUST denoiser served under an action-only manifest is refused rather than fed nothing.
 */
export function expectedGraphs(m: Manifest): Record<'vlm' | 'denoiser', { inputs: Record<string, [string, Dim[]]>; outputs: Record<string, [string, Dim[]]> }> {
  const B = 'batch' as const;
  const future = hasFutureStream(m);
  const futureShape: Dim[] = [B, m.future.tokens, m.future.dim];
  return {
    vlm: {
      inputs: {
        pixel_values: [pixelDtypeOf(m), [B, m.cameras.length, 3, m.image.height, m.image.width]],
        input_ids: ['int64', [B, m.text.max_tokens]],
        attention_mask: ['int64', [B, m.text.max_tokens]],
      },
      outputs: {
        vl_embs: ['float32', [B, m.conditioning.tokens, m.conditioning.dim]],
        ...(future && { obs_embedding: ['float32', futureShape] as [string, Dim[]] }),
      },
    },
    denoiser: {
      inputs: {
        vl_embs: ['float32', [B, m.conditioning.tokens, m.conditioning.dim]],
        state: ['float32', [B, m.state.dim]],
        actions: ['float32', [B, m.action.horizon, m.action.dim]],
        ...(future && { future: ['float32', futureShape] as [string, Dim[]] }),
        tau_a: ['float32', [B]],
        ...(future && { tau_o: ['float32', [B]] as [string, Dim[]] }),
        embodiment_id: ['int64', [B]],
        ...(takesPositionTimes(m) ? { action_times: ['float32', [B, m.action.horizon]] as [string, Dim[]] } : {}),
      },
      outputs: {
        v_actions: ['float32', [B, m.action.horizon, m.action.dim]],
        ...(future && { v_future: ['float32', futureShape] as [string, Dim[]] }),
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
        if (v.type !== type) {
          // The decode threads build the rows the manifest promises: a graph that takes another type would be fed wrong bytes.
          const why =
            name === 'pixel_values'
              ? ` (manifest image.pixel_dtype ${m.image.pixel_dtype ?? 'absent, meaning float32'}; re-export the package or correct the field)`
              : '';
          problems.push(`${graph}.onnx ${name} is ${v.type}, expected ${type}${why}`);
        }
        const shapeOk =
          v.shape.length === dims.length && dims.every((d, i) => (d === 'batch' ? typeof v.shape[i] === 'string' || v.shape[i] === -1 : v.shape[i] === d));
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
