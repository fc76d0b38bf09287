import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelPackageError } from '../errors/index.js';
import { checkGraphs, hasFutureStream, parseManifest, type GraphInfo, type Manifest } from './index.js';
import { expectedGraphs } from './package.js';
import { packagePathProblem } from './package-path.js';
import { MAX_PROBLEMS_CHARS } from './manifest-schema.js';

const digest = `sha256:${'a'.repeat(64)}`;
function manifest(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format_version: 1,
    name: 'm',
    version: 1,
    architecture: { family: 'dust' },
    image: { height: 8, width: 8, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    cameras: ['front'],
    text: { max_tokens: 4, tokenizer: 'tokenizer.json', prompt_template: '{instruction}' },
    conditioning: { tokens: 6, dim: 8 },
    action: { horizon: 4, dim: 6 },
    state: { dim: 6 },
    future: { tokens: 2, dim: 4 },
    sampling: { action_steps: 2, vision_steps: 4, max_vision_steps: 16 },
    embodiments: {
      arm: { id: 0, state_dim: 2, action_dim: 3, normalization: { state: { min: [0, 0], max: [1, 1] }, action: { min: [0, 0, 0], max: [1, 1, 1] } } },
    },
    files: { 'vlm.onnx': digest, 'denoiser.onnx': digest },
    ...over,
  };
}

function graphsFor(m: Manifest): Record<'vlm' | 'denoiser', GraphInfo> {
  const e = expectedGraphs(m);
  const info = (g: 'vlm' | 'denoiser'): GraphInfo => ({
    inputs: Object.entries(e[g].inputs).map(([name, [type, dims]]) => ({ name, type, shape: dims })),
    outputs: Object.entries(e[g].outputs).map(([name, [type, dims]]) => ({ name, type, shape: dims })),
  });
  return { vlm: info('vlm'), denoiser: info('denoiser') };
}

describe('parseManifest', () => {
  it('accepts a valid manifest', () => {
    expect(parseManifest(manifest(), 'x').name).toBe('m');
  });
  it('names the wrong fields', () => {
    expect(() => parseManifest(manifest({ format_version: 2 }), 'pkg')).toThrow(/pkg: invalid manifest: format_version/);
    expect(() => parseManifest(manifest({ files: { 'vlm.onnx': 'md5:1' } }), 'pkg')).toThrow(/files.vlm.onnx: must be "sha256/);
    expect(() => parseManifest(manifest({ sampling: { action_steps: 4, vision_steps: 6, max_vision_steps: 16 } }), 'pkg')).toThrow(
      /multiple of sampling.action_steps/,
    );
    const emb = { id: 0, state_dim: 9, action_dim: 3, normalization: { state: { min: [0], max: [1] }, action: { min: [0, 0, 0], max: [1, 1, 1] } } };
    expect(() => parseManifest(manifest({ embodiments: { big: emb } }), 'pkg')).toThrow(/state_dim 9 exceeds state.dim 6.*normalization.state/);
  });
  it('takes the real-time chunking methods a package declares, and refuses one it does not know', () => {
    expect(parseManifest(manifest(), 'x').realtime_chunking).toBeUndefined();
    // The toolchain's record of CUDA-graph hazards: a list of strings when present.
    expect(parseManifest(manifest({ architecture: { family: 'dust', cuda_graph_hazards: [] } }), 'x').architecture.cuda_graph_hazards).toEqual([]);
    expect(() => parseManifest(manifest({ architecture: { family: 'dust', cuda_graph_hazards: 'none' } }), 'x')).toThrow(/cuda_graph_hazards/);
    expect(parseManifest(manifest({ realtime_chunking: ['naive', 'ensemble'] }), 'x').realtime_chunking).toEqual(['naive', 'ensemble']);
    expect(parseManifest(manifest({ realtime_chunking: [] }), 'x').realtime_chunking).toEqual([]);
    expect(() => parseManifest(manifest({ realtime_chunking: ['guided'] }), 'pkg')).toThrow(/realtime_chunking/);
  });
});

/** A manifest without `future` (docs/model-package.md, "Action-only packages"), N_o = N_A. */
function actionOnly(over: Record<string, unknown> = {}): Record<string, unknown> {
  const { future: _future, ...rest } = manifest({ sampling: { action_steps: 4, vision_steps: 4, max_vision_steps: 4 }, ...over });
  return rest;
}

describe('parseManifest of an action-only package', () => {
  it('takes a manifest without future as one with no future stream, of zero tokens', () => {
    const m = parseManifest(actionOnly(), 'x');
    expect(hasFutureStream(m)).toBe(false);
    expect(m.future).toEqual({ tokens: 0, dim: 0 });
    expect(hasFutureStream(parseManifest(manifest(), 'x'))).toBe(true);
  });
  it('refuses vision_steps other than action_steps, naming the field, and takes max_vision_steps as the cap on action steps', () => {
    const parsed = (sampling: object) => () => parseManifest(actionOnly({ sampling }), 'pkg');
    expect(parsed({ action_steps: 4, vision_steps: 8, max_vision_steps: 8 })).toThrow(
      /pkg: invalid manifest: sampling.vision_steps must equal sampling.action_steps in a package without future/,
    );
    expect(parsed({ action_steps: 4, vision_steps: 4, max_vision_steps: 16 })).not.toThrow();
    // The same sampling with a future stream is a DUST package's.
    expect(() => parseManifest(manifest({ sampling: { action_steps: 4, vision_steps: 8, max_vision_steps: 16 } }), 'pkg')).not.toThrow();
  });
  it('still refuses a future stream of zero tokens written out: absent is the only way to say action-only', () => {
    expect(() => parseManifest(manifest({ future: { tokens: 0, dim: 0 } }), 'pkg')).toThrow(/future.tokens/);
  });
});

/** Strings a hostile exporter would try as names, keys and values. */
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom(
    '',
    '..',
    '../',
    '../../etc/passwd',
    '/etc/passwd',
    '/dev/zero',
    'a/../../b',
    'x\0y',
    '\\..\\x',
    '.',
    './',
    '__proto__',
    'constructor',
    'vlm.onnx',
    'tokenizer.json',
  ),
  fc.string({ minLength: 300, maxLength: 2000 }),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  hostileString,
  fc.constantFrom(1e308, -1e308, -1, 0, 0.5, 2 ** 53, null, [], {}, true),
);

/** Every path to a value of a JSON object, e.g. ['text', 'tokenizer']. */
function pathsOf(v: unknown, prefix: string[] = []): string[][] {
  if (typeof v !== 'object' || v === null) return [prefix];
  return [prefix, ...Object.entries(v).flatMap(([k, child]) => pathsOf(child, [...prefix, k]))];
}

function setAt(root: Record<string, unknown>, at: readonly string[], value: unknown): unknown {
  if (at.length === 0) return value;
  const copy: Record<string, unknown> = Array.isArray(root) ? ([...root] as unknown as Record<string, unknown>) : { ...root };
  copy[at[0]] = setAt((root[at[0]] ?? {}) as Record<string, unknown>, at.slice(1), value);
  return copy;
}

const VALID = manifest();
const PATHS = pathsOf(VALID);

/** A valid manifest with one value replaced, hostile files entries and embodiment names added, through JSON text. */
const hostileManifest = fc
  .record({
    mutate: fc.boolean(),
    at: fc.constantFrom(...PATHS),
    value: hostileValue,
    files: fc.dictionary(hostileString, fc.oneof(fc.constant(digest), hostileValue), { maxKeys: 4 }),
    tokenizer: fc.option(hostileString),
    embodiment: fc.option(hostileString),
  })
  .map(({ mutate, at, value, files, tokenizer, embodiment }) => {
    const m = (mutate ? setAt(VALID, at, value) : structuredClone(VALID)) as Record<string, any>;
    if (typeof m === 'object' && m !== null && !Array.isArray(m)) {
      if (typeof m.files === 'object' && m.files !== null) m.files = { ...m.files, ...files };
      if (tokenizer !== null && typeof m.text === 'object' && m.text !== null) m.text = { ...m.text, tokenizer };
      if (embodiment !== null && typeof m.embodiments === 'object' && m.embodiments !== null)
        m.embodiments = { ...m.embodiments, [embodiment]: VALID.embodiments };
    }
    return JSON.stringify(m);
  });

/** What a refusal may be at most: the location, the problems, and a count of those left out. */
const MAX_REASON_CHARS = 'pkg: invalid manifest: '.length + MAX_PROBLEMS_CHARS + '...; and 99999 more'.length;

function checkParse(text: string): void {
  let m: Manifest;
  try {
    m = parseManifest(JSON.parse(text), 'pkg');
  } catch (err) {
    expect(err).toBeInstanceOf(ModelPackageError);
    expect((err as Error).message.length).toBeLessThanOrEqual(MAX_REASON_CHARS);
    return;
  }
  // Accepted: every name it will read is a path inside the package.
  expect(packagePathProblem(m.text.tokenizer)).toBeUndefined();
  for (const name of Object.keys(m.files)) expect(packagePathProblem(name)).toBeUndefined();
  expect(Object.hasOwn(m.files, 'vlm.onnx') && Object.hasOwn(m.files, 'denoiser.onnx')).toBe(true);
}

describe('parseManifest on hostile input (property)', () => {
  const runs = { numRuns: 400, seed: 20_260_707 };

  it('any JSON value: a Manifest or a ModelPackageError of bounded size, nothing else', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => checkParse(JSON.stringify(v) ?? 'null')),
      runs,
    );
  });

  it('a valid manifest with hostile values, file names and embodiment names: the same, and accepted names stay in the package', () => {
    fc.assert(fc.property(hostileManifest, checkParse), runs);
  });

  it('__proto__ keys in the JSON text neither pass for files nor throw anything else', () => {
    const text = JSON.stringify(manifest({ files: {} })).replace('"files":{}', `"files":{"__proto__":{"vlm.onnx":"${digest}","denoiser.onnx":"${digest}"}}`);
    expect(() => parseManifest(JSON.parse(text), 'pkg')).toThrow(ModelPackageError);
    const embodiments = JSON.stringify(manifest()).replace('"embodiments":{', '"embodiments":{"__proto__":{"id":1},');
    expect(() => parseManifest(JSON.parse(embodiments), 'pkg')).toThrow(ModelPackageError);
  });

  it('thousands of bad entries make one short reason', () => {
    const files = Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`${'../'.repeat(40)}${i}`, digest]));
    const err = (() => {
      try {
        parseManifest(manifest({ files: { ...files, 'vlm.onnx': digest, 'denoiser.onnx': digest } }), 'pkg');
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    })();
    expect(err.message).toMatch(/; and 4992 more$/);
    expect(err.message.length).toBeLessThan(MAX_REASON_CHARS);
  });
});

describe('checkGraphs', () => {
  const m = parseManifest(manifest(), 'x');
  it('accepts graphs that declare exactly the manifest shapes with a dynamic batch', () => {
    expect(() => checkGraphs(m, graphsFor(m))).not.toThrow();
  });
  it('refuses a fixed batch axis, a wrong size, a wrong dtype and a missing output', () => {
    const g = graphsFor(m);
    const vlm = { ...g.vlm, outputs: g.vlm.outputs.filter((o) => o.name !== 'obs_embedding') };
    const denoiser = {
      ...g.denoiser,
      inputs: g.denoiser.inputs.map((i) =>
        i.name === 'state'
          ? { ...i, shape: [1, 6] }
          : i.name === 'future'
            ? { ...i, shape: ['batch', 2, 5] }
            : i.name === 'embodiment_id'
              ? { ...i, type: 'int32' }
              : i,
      ),
    };
    expect(() => checkGraphs(m, { vlm, denoiser })).toThrow(
      /vlm.onnx lacks output obs_embedding.*state has shape \[1, 6\].*future has shape \[batch, 2, 5\].*embodiment_id is int32/,
    );
  });
  it('expects per-position action times exactly from a package listing the condition method', () => {
    const trained = parseManifest(manifest({ realtime_chunking: ['condition', 'inpaint'] }), 'x');
    const g = graphsFor(trained);
    expect(g.denoiser.inputs.find((i) => i.name === 'action_times')).toMatchObject({ type: 'float32', shape: ['batch', trained.action.horizon] });
    expect(() => checkGraphs(trained, g)).not.toThrow();
    // The method without the input, and the input without the method, are both refused before READY.
    expect(() => checkGraphs(trained, graphsFor(m))).toThrow(/denoiser.onnx lacks input action_times/);
    expect(() => checkGraphs(m, g)).toThrow(/denoiser.onnx has an input action_times the contract does not define/);
  });
  it('expects no future stream in the graphs of an action-only package, and refuses a DUST denoiser under its manifest', () => {
    const only = parseManifest(actionOnly(), 'x');
    const g = graphsFor(only);
    expect(g.vlm.outputs.map((o) => o.name)).toEqual(['vl_embs']);
    expect(g.denoiser.inputs.map((i) => i.name).sort()).toEqual(['actions', 'embodiment_id', 'state', 'tau_a', 'vl_embs']);
    expect(g.denoiser.outputs.map((o) => o.name)).toEqual(['v_actions']);
    expect(() => checkGraphs(only, g)).not.toThrow();
    // A graph with the stream's inputs would be fed nothing for them; one without them cannot serve a DUST manifest.
    const dust = parseManifest(manifest({ sampling: only.sampling }), 'x');
    expect(() => checkGraphs(only, graphsFor(dust))).toThrow(/denoiser.onnx has an input future the contract does not define.*has an input tau_o/);
    expect(() => checkGraphs(dust, g)).toThrow(
      /vlm.onnx lacks output obs_embedding.*denoiser.onnx lacks input future.*lacks input tau_o.*lacks output v_future/,
    );
    // A VLM that still computes obs_embedding serves an action-only package: outputs nobody reads are allowed.
    expect(() => checkGraphs(only, { ...g, vlm: graphsFor(dust).vlm })).not.toThrow();
  });
  it("expects the pixel_values type the manifest's image.pixel_dtype names (float32 when absent), and says so when the graph differs", () => {
    const uint8 = parseManifest(manifest({ image: { ...(manifest().image as object), pixel_dtype: 'uint8' } }), 'x');
    const g = graphsFor(uint8);
    expect(g.vlm.inputs.find((i) => i.name === 'pixel_values')).toMatchObject({ type: 'uint8' });
    expect(() => checkGraphs(uint8, g)).not.toThrow();
    expect(() => checkGraphs(uint8, graphsFor(m))).toThrow(/vlm.onnx pixel_values is float32, expected uint8 \(manifest image.pixel_dtype uint8; /);
    expect(() => checkGraphs(m, g)).toThrow(/vlm.onnx pixel_values is uint8, expected float32 \(manifest image.pixel_dtype absent, meaning float32; /);
    expect(() => parseManifest(manifest({ image: { ...(manifest().image as object), pixel_dtype: 'float16' } }), 'x')).toThrow(/image.pixel_dtype/);
  });
});
