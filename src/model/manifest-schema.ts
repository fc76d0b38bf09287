/**
 * Validation of manifest.json (docs/model-package.md, format_version 1) with zod, so a bad package
 * is refused with a message naming the field that is wrong.
 */
import { z } from 'zod';
import { ModelPackageError, quote } from '../errors/index.js';
import { hasFutureStream, NO_FUTURE_STREAM, type Manifest } from './manifest.js';
import { filesField, packagePathProblem } from './package-path.js';

/**
 * Problems named in one refusal; the rest are counted. A hostile manifest (thousands of bad entries) then
 * makes a reason of bounded size in ListModels and the log.
 */
export const MAX_LISTED_PROBLEMS = 8;
/** Longest list of problems in one refusal, in characters, whatever the names quoted in it. */
export const MAX_PROBLEMS_CHARS = 2048;

const positiveInt = z.number().int().positive();
const finite = z.number().finite();

const minMax = z.object({ min: z.array(finite), max: z.array(finite) });

const embodiment = z.object({
  id: z.number().int().nonnegative(),
  state_dim: positiveInt,
  action_dim: positiveInt,
  normalization: z.object({ state: minMax, action: minMax }),
});

const schema = z
  .object({
    format_version: z.literal(1),
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only'),
    version: positiveInt,
    description: z.string().optional(),
    architecture: z.object({ family: z.string(), cuda_graph_hazards: z.array(z.string()).optional() }).passthrough(),
    image: z.object({
      height: positiveInt,
      width: positiveInt,
      mean: z.tuple([finite, finite, finite]),
      std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
      pixel_dtype: z.enum(['float32', 'uint8']).optional(),
    }),
    cameras: z.array(z.string().min(1)).min(1),
    text: z.object({ max_tokens: positiveInt, tokenizer: z.string().min(1), prompt_template: z.string() }),
    conditioning: z.object({ tokens: positiveInt, dim: positiveInt }),
    action: z.object({ horizon: positiveInt, dim: positiveInt }),
    state: z.object({ dim: positiveInt }),
    // Absent: an action-only package (docs/model-package.md, "Action-only packages").
    future: z.object({ tokens: positiveInt, dim: positiveInt }).optional(),
    sampling: z.object({ action_steps: positiveInt, vision_steps: positiveInt, max_vision_steps: positiveInt }),
    embodiments: z.record(embodiment).refine((e) => Object.keys(e).length > 0, 'at least one embodiment'),
    realtime_chunking: z.array(z.enum(['condition', 'inpaint', 'naive', 'ensemble'])).optional(),
    training: z.record(z.unknown()).optional(),
    files: z.record(z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:<64 hex digits>"')),
  })
  .passthrough();

const PLAIN_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

/** A field path as the messages write it: `files.vlm.onnx`, `embodiments["<odd key>"].id`. */
function fieldPath(keys: ReadonlyArray<string | number>): string {
  if (keys.length === 0) return '(root)';
  return keys.map((k, i) => (typeof k === 'number' ? `[${k}]` : PLAIN_KEY.test(k) ? `${i === 0 ? '' : '.'}${k}` : `[${quote(k)}]`)).join('');
}

function refuse(where: string, problems: readonly string[]): never {
  const more = problems.length - MAX_LISTED_PROBLEMS;
  const all = problems.slice(0, MAX_LISTED_PROBLEMS).join('; ');
  const listed = all.length > MAX_PROBLEMS_CHARS ? `${all.slice(0, MAX_PROBLEMS_CHARS)}...` : all;
  throw new ModelPackageError(`${where}: invalid manifest: ${listed}${more > 0 ? `; and ${more} more` : ''}`);
}

/** Parses and checks a manifest; cross-field rules (dims within the padded sizes, unique ids) included. */
export function parseManifest(json: unknown, where: string): Manifest {
  const parsed = schema.safeParse(json);
  if (!parsed.success)
    refuse(
      where,
      parsed.error.issues.map((i) => `${fieldPath(i.path)}: ${i.message}`),
    );
  // The rest of the server reads one shape: an absent future stream is one of zero tokens (hasFutureStream).
  const m = { ...parsed.data, future: parsed.data.future ?? NO_FUTURE_STREAM } as unknown as Manifest;
  const problems: string[] = [];
  const ids = new Set<number>();
  for (const [key, e] of Object.entries(m.embodiments)) {
    const name = PLAIN_KEY.test(key) ? `.${key}` : `[${quote(key)}]`;
    if (ids.has(e.id)) problems.push(`embodiments${name}.id ${e.id} is used twice`);
    ids.add(e.id);
    if (e.state_dim > m.state.dim) problems.push(`embodiments${name}.state_dim ${e.state_dim} exceeds state.dim ${m.state.dim}`);
    if (e.action_dim > m.action.dim) problems.push(`embodiments${name}.action_dim ${e.action_dim} exceeds action.dim ${m.action.dim}`);
    const n = e.normalization;
    if (n.state.min.length !== e.state_dim || n.state.max.length !== e.state_dim) {
      problems.push(`embodiments${name}.normalization.state min/max must have state_dim (${e.state_dim}) values`);
    }
    if (n.action.min.length !== e.action_dim || n.action.max.length !== e.action_dim) {
      problems.push(`embodiments${name}.normalization.action min/max must have action_dim (${e.action_dim}) values`);
    }
  }
  const s = m.sampling;
  if (s.vision_steps % s.action_steps !== 0) problems.push('sampling.vision_steps must be a multiple of sampling.action_steps');
  if (s.vision_steps > s.max_vision_steps) problems.push('sampling.vision_steps exceeds sampling.max_vision_steps');
  // Without a future stream a step past the action steps would run the denoiser for nothing: N_o = N_A, and
  // max_vision_steps bounds the action steps a request may ask for.
  if (!hasFutureStream(m) && s.vision_steps !== s.action_steps)
    problems.push('sampling.vision_steps must equal sampling.action_steps in a package without future (action-only)');
  if (new Set(m.cameras).size !== m.cameras.length) problems.push('cameras must be unique');
  if (!m.text.prompt_template.includes('{instruction}')) problems.push('text.prompt_template must contain {instruction}');
  for (const f of ['vlm.onnx', 'denoiser.onnx']) if (!Object.hasOwn(m.files, f)) problems.push(`files must list the sha256 of ${f}`);
  // The text alone here; the loader resolves links and checks again (docs/model-package.md, "Confinement").
  const tokenizerProblem = packagePathProblem(m.text.tokenizer);
  if (tokenizerProblem) problems.push(`text.tokenizer ${tokenizerProblem}`);
  for (const name of Object.keys(m.files)) {
    const problem = packagePathProblem(name);
    if (problem) problems.push(`${filesField(name)}: the name ${problem}`);
  }
  if (problems.length > 0) refuse(where, problems);
  return Object.freeze(m);
}
