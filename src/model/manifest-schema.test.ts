import { describe, expect, it } from 'vitest';
import { checkGraphs, expectedGraphs, parseManifest, type GraphInfo, type Manifest } from './index.js';

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
    expect(() => parseManifest(manifest({ sampling: { action_steps: 4, vision_steps: 6, max_vision_steps: 16 } }), 'pkg')).toThrow(/multiple of sampling.action_steps/);
    const emb = { id: 0, state_dim: 9, action_dim: 3, normalization: { state: { min: [0], max: [1] }, action: { min: [0, 0, 0], max: [1, 1, 1] } } };
    expect(() => parseManifest(manifest({ embodiments: { big: emb } }), 'pkg')).toThrow(/state_dim 9 exceeds state.dim 6.*normalization.state/);
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
        i.name === 'state' ? { ...i, shape: [1, 6] } : i.name === 'future' ? { ...i, shape: ['batch', 2, 5] } : i.name === 'embodiment_id' ? { ...i, type: 'int32' } : i,
      ),
    };
    expect(() => checkGraphs(m, { vlm, denoiser })).toThrow(/vlm.onnx lacks output obs_embedding.*state has shape \[1, 6\].*future has shape \[batch, 2, 5\].*embodiment_id is int32/);
  });
});
