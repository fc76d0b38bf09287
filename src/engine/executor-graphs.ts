/**
 * The native executor's own graphs, run on the model's device next to the arena (native-executor.ts):
 *
 * - the Euler update of docs/sampling.md, per row: A' = A + dt_A v_A, O' = O + dt_O v_O. Computed in float64 and
 *   rounded once to float32, exactly as the host's applyStep (src/sampling/schedule.ts) does in JavaScript's
 *   doubles, so that both executors give the same bits. A row with dt = 0 (a padding row, an action between two
 *   action steps) keeps its values.
 * - the gather of scattered rows into the staging arena (Gather over rows, one call for every field), where one
 *   device copy per row and field would cost a copy's launch each;
 * - copies (Identity), for a device whose provider cannot copy through ONNX Runtime's CopyTensors.
 *
 * Rows are flattened ([batch, n]); the step sizes are [batch, 1].
 */
import { model, node, ONNX_TYPE, valueInfo, type OnnxNode, type OnnxType } from './onnx-writer.js';

function euler(x: string, dt: string, v: string, out: string): OnnxNode[] {
  const to64 = { to: ONNX_TYPE.float64 };
  return [
    { op: 'Cast', inputs: [x], outputs: [`${x}_64`], ints: to64 },
    { op: 'Cast', inputs: [dt], outputs: [`${dt}_64`], ints: to64 },
    { op: 'Cast', inputs: [v], outputs: [`${v}_64`], ints: to64 },
    { op: 'Mul', inputs: [`${dt}_64`, `${v}_64`], outputs: [`${out}_step`] },
    { op: 'Add', inputs: [`${x}_64`, `${out}_step`], outputs: [`${out}_64`] },
    { op: 'Cast', inputs: [`${out}_64`], outputs: [out], ints: { to: ONNX_TYPE.float32 } },
  ];
}

/**
 * The update for rows of `actionLen` and `futureLen` values. `futureLen` 0 (an action-only package, whose denoiser
 * has no future stream): the action update alone, without the future's inputs and output.
 */
export function eulerUpdateModel(actionLen: number, futureLen: number): Uint8Array {
  const streams = [{ x: 'actions', dt: 'dt_a', v: 'v_actions', out: 'actions_next', len: actionLen }];
  if (futureLen > 0) streams.push({ x: 'future', dt: 'dt_o', v: 'v_future', out: 'future_next', len: futureLen });
  return model('dust-serve native executor', 'euler_update', (g) => {
    streams.flatMap((s) => euler(s.x, s.dt, s.v, s.out)).forEach((n, i) => node(g, n, i));
    for (const s of streams) valueInfo(g, 11, s.x, 'float32', ['batch', s.len]);
    for (const s of streams) valueInfo(g, 11, s.v, 'float32', ['batch', s.len]);
    for (const s of streams) valueInfo(g, 11, s.dt, 'float32', ['batch', 1]);
    for (const s of streams) valueInfo(g, 12, s.out, 'float32', ['batch', s.len]);
  });
}

/** A field of the arena: its name, element type and values per row. */
export interface ArenaField {
  readonly name: string;
  readonly type: 'float32' | 'int64';
  readonly len: number;
}

/** `<name>_rows` = the rows `idx` of each field `<name>` ([rows, len] -> [batch, len]). */
export function gatherRowsModel(fields: readonly ArenaField[]): Uint8Array {
  return model('dust-serve native executor', 'gather_rows', (g) => {
    fields.forEach((f, i) => node(g, { op: 'Gather', inputs: [f.name, 'idx'], outputs: [`${f.name}_rows`] }, i));
    for (const f of fields) valueInfo(g, 11, f.name, f.type, ['rows', f.len]);
    valueInfo(g, 11, 'idx', 'int64', ['batch']);
    for (const f of fields) valueInfo(g, 12, `${f.name}_rows`, f.type, ['batch', f.len]);
  });
}

/** y = x over a flat tensor of any length. */
export function copyModel(type: Exclude<OnnxType, 'float64'>): Uint8Array {
  return model('dust-serve native executor', `copy_${type}`, (g) => {
    node(g, { op: 'Identity', inputs: ['x'], outputs: ['y'] }, 0);
    valueInfo(g, 11, 'x', type, ['n']);
    valueInfo(g, 12, 'y', type, ['n']);
  });
}
