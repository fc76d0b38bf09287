import { describe, expect, it } from 'vitest';
import { requestLimits } from '../request-limits.js';
import { parseMappingFile, PRESETS, resolveMapping, type KeyMapping } from './key-mapping.js';
import { toPredictRequest, type ObservationContext } from './observation.js';

const CAMERAS = ['front', 'wrist'];
const preset = (name: string): KeyMapping => ({ name, entries: new Map([['*', PRESETS.get(name)!]]) });
const ctx: ObservationContext = {
  robotId: 'robot-1',
  episodeId: 'ep-1',
  model: '',
  limits: requestLimits({ maxMessageBytes: 1 << 20, maxIdBytes: 16, maxInstructionBytes: 32 }),
};
const nd = (data: Uint8Array, dtype: string, shape: number[]) => ({ __ndarray__: true, data, dtype, shape });
const f4 = (...v: number[]) => nd(new Uint8Array(new Float32Array(v).buffer), '<f4', [v.length]);
/** A 2x2 image whose pixels are numbered 0..11 in HWC order. */
const hwc = nd(
  Uint8Array.from({ length: 12 }, (_, i) => i),
  '|u1',
  [2, 2, 3],
);
/** The same image in CHW. */
const chw = nd(Uint8Array.from([0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11]), '|u1', [3, 2, 2]);

describe('presets', () => {
  it("LIBERO: openpi's keys, the first image to the first camera; HWC and CHW give the same RGB8 bytes", () => {
    const m = resolveMapping(preset('libero'), 'franka_fr3', CAMERAS);
    const req = toPredictRequest({ 'observation/image': hwc, 'observation/wrist_image': chw, 'observation/state': f4(1, 2), prompt: 'pick it up' }, m, ctx);
    expect(req).toMatchObject({ robot_id: 'robot-1', episode_id: 'ep-1', embodiment: 'franka_fr3', instruction: 'pick it up', state: [1, 2] });
    expect(req.images.map((i) => [i.camera, i.encoding, i.width, i.height])).toEqual([
      ['front', 'IMAGE_ENCODING_RAW_RGB8', 2, 2],
      ['wrist', 'IMAGE_ENCODING_RAW_RGB8', 2, 2],
    ]);
    expect([...req.images[1].data]).toEqual([...req.images[0].data]);
  });

  it('DROID: joint and gripper positions concatenated into the state, in the mapping order', () => {
    const m = resolveMapping(preset('droid'), 'franka_fr3', CAMERAS);
    const req = toPredictRequest(
      {
        'observation/exterior_image_1_left': hwc,
        'observation/wrist_image_left': hwc,
        'observation/joint_position': nd(new Uint8Array(new Float64Array([0.5, 0.25]).buffer), '<f8', [2]),
        'observation/gripper_position': f4(1),
      },
      m,
      ctx,
    );
    expect(req.state).toEqual([0.5, 0.25, 1]);
    expect(req.instruction).toBe('');
  });

  it('a preset with fewer image keys than the model has cameras is refused, naming the way out', () => {
    expect(() => resolveMapping(preset('libero'), 'x', ['a', 'b', 'c'])).toThrow(/2 image key\(s\) for a model with 3 cameras \[a, b, c\]; use a mapping file/);
  });
});

describe('mapping files', () => {
  it('map cameras by name, nested keys by path, per embodiment', () => {
    const file = parseMappingFile(
      { aloha: { images: { front: ['images', 'cam_high'], wrist: ['images', 'cam_left_wrist'] }, state: 'state', prompt: 'prompt' } },
      'aloha.json',
    );
    const m = resolveMapping(file, 'aloha', CAMERAS);
    const req = toPredictRequest({ images: { cam_high: hwc, cam_left_wrist: hwc }, state: [0.1, 0.2] }, m, ctx);
    expect(req.images.map((i) => i.camera)).toEqual(['front', 'wrist']);
    expect(req.state).toEqual([0.1, 0.2]);
    expect(() => resolveMapping(file, 'franka_fr3', CAMERAS)).toThrow(/no entry for embodiment "franka_fr3" \(it maps aloha\)/);
  });

  it('are refused with the entry and field at fault, and cameras the model lacks or misses', () => {
    expect(() => parseMappingFile({ x: { images: {}, state: 1 } }, 'bad.json')).toThrow(/bad.json: x.state/);
    expect(() => parseMappingFile([], 'bad.json')).toThrow(/bad.json/);
    const file = parseMappingFile({ '*': { images: { front: 'a', top: 'b' }, state: ['s'] } }, 'f.json');
    expect(() => resolveMapping(file, 'e', CAMERAS)).toThrow(/missing: wrist; not cameras of the model: top/);
  });
});

describe('toPredictRequest refuses', () => {
  const m = resolveMapping(preset('libero'), 'franka_fr3', CAMERAS);
  const valid = () => ({ 'observation/image': hwc, 'observation/wrist_image': hwc, 'observation/state': f4(1, 2), prompt: 'go' });

  it('a missing key, saying which keys the mapping expects', () => {
    const { 'observation/wrist_image': _, ...obs } = valid();
    expect(() => toPredictRequest(obs, m, ctx)).toThrow(/no key "observation\/wrist_image" \(camera wrist\); the libero mapping for "franka_fr3" expects/);
  });

  it('images that are not HWC or CHW uint8, and unmapped images', () => {
    expect(() => toPredictRequest({ ...valid(), 'observation/image': nd(new Uint8Array(16), '|u1', [2, 2, 4]) }, m, ctx)).toThrow(/images must be HWC/);
    expect(() => toPredictRequest({ ...valid(), 'observation/image': 'pixels' }, m, ctx)).toThrow(/must be a numpy uint8 array/);
    expect(() => toPredictRequest({ ...valid(), 'observation/image_2': hwc }, m, ctx)).toThrow(
      /"observation\/image_2" holds an image, but the libero mapping names no camera/,
    );
  });

  it('a state that is not numeric, an instruction or ids over their limits, and NUL', () => {
    expect(() => toPredictRequest({ ...valid(), 'observation/state': 'high' }, m, ctx)).toThrow(/must be a numeric array/);
    expect(() => toPredictRequest({ ...valid(), prompt: 'x'.repeat(33) }, m, ctx)).toThrow('instruction is 33 bytes, above the limit of 32');
    expect(() => toPredictRequest({ ...valid(), prompt: 'a\u0000b' }, m, ctx)).toThrow(/NUL character/);
    expect(() => toPredictRequest(valid(), m, { ...ctx, episodeId: 'e'.repeat(17) })).toThrow('episode_id is 17 bytes, above the limit of 16');
    expect(() => toPredictRequest([1, 2], m, ctx)).toThrow(/must be a msgpack map/);
  });

  it('does not resolve keys through the prototype', () => {
    expect(() => toPredictRequest({ 'observation/image': hwc, 'observation/wrist_image': hwc, prompt: 'go' }, { ...m, state: [['constructor']] }, ctx)).toThrow(
      /no key "constructor"/,
    );
  });
});

describe('the committed prefix (real-time chunking)', () => {
  const m = resolveMapping(preset('libero'), 'franka_fr3', CAMERAS);
  const valid = () => ({ 'observation/image': hwc, 'observation/wrist_image': hwc, 'observation/state': f4(1, 2), prompt: 'go' });
  const rows = (r: number, c: number, dtype = '<f8') => {
    const values = Array.from({ length: r * c }, (_, i) => i / 4 - 1);
    const data = dtype === '<f8' ? new Float64Array(values) : new Float32Array(values);
    return { values, array: nd(new Uint8Array(data.buffer), dtype, [r, c]) };
  };

  it("becomes the gRPC door's PredictRequest.prefix: float32 actions with their shape, the delay, the period, the method", () => {
    const { values, array } = rows(3, 2);
    const req = toPredictRequest({ ...valid(), prefix: { actions: array, delay_steps: 2, method: 'inpaint' } }, m, ctx);
    expect(req.prefix).toMatchObject({ delay_steps: 2, _delay_steps: 'delay_steps', control_period_ms: 0, method: 'CHUNKING_METHOD_INPAINT' });
    expect(req.prefix!.actions!.shape).toEqual([3, 2]);
    const data = req.prefix!.actions!.data;
    expect(Array.from({ length: 6 }, (_, i) => data.readFloatLE(i * 4))).toEqual(values.map(Math.fround));
    // Without a delay the server estimates it from the period: the proto's optional field stays unset.
    const estimated = toPredictRequest(
      { ...valid(), prefix: { actions: rows(1, 2, '<f4').array, control_period_ms: { __npgeneric__: true, data: 20, dtype: '<f8' } } },
      m,
      ctx,
    );
    expect(estimated.prefix).toMatchObject({ control_period_ms: 20, method: 'CHUNKING_METHOD_UNSPECIFIED' });
    expect(estimated.prefix!._delay_steps).toBeUndefined();
    expect(estimated.prefix!.delay_steps).toBeUndefined();
    expect(toPredictRequest(valid(), m, ctx).prefix).toBeNull();
  });

  it('is refused, saying what to send, when its types are wrong or it holds a key the server would otherwise ignore', () => {
    const { array } = rows(2, 2);
    const refused = (prefix: unknown) => () => toPredictRequest({ ...valid(), prefix }, m, ctx);
    expect(refused([1, 2])).toThrow(/"prefix" must be a dict with actions, delay_steps, control_period_ms, method/);
    expect(refused({ actions: array, delay: 2 })).toThrow(/"prefix" has unknown keys "delay"; its keys are actions, delay_steps/);
    expect(refused({ delay_steps: 1 })).toThrow(/"prefix" > "actions" must be a numeric numpy array \[L, action_dim\]/);
    expect(refused({ actions: nd(new Uint8Array(4), '|b1', [2, 2]) })).toThrow(/"prefix" > "actions" must be a numeric numpy array/);
    expect(refused({ actions: array, delay_steps: 1.5 })).toThrow(/"prefix" > "delay_steps" must be a non-negative integer, got 1.5/);
    expect(refused({ actions: array, delay_steps: -1 })).toThrow(/must be a non-negative integer, got -1/);
    expect(refused({ actions: array, delay_steps: '2' })).toThrow(/"prefix" > "delay_steps" must be a finite number/);
    expect(refused({ actions: array, control_period_ms: 'fast' })).toThrow(/"prefix" > "control_period_ms" must be a finite number/);
    expect(refused({ actions: array, method: 'rtc' })).toThrow(/"prefix" > "method" must be one of condition, inpaint, naive, ensemble/);
    expect(refused({ actions: array, method: 'toString' })).toThrow(/must be one of/);
  });

  it('owns its key: a mapping file that names "prefix" for anything else is refused', () => {
    for (const entry of [
      { images: ['cam'], state: ['state', ['prefix', 'x']] },
      { images: { front: 'prefix' }, state: 'state' },
      { images: ['cam'], state: 's', prompt: 'prefix' },
    ]) {
      expect(() => parseMappingFile({ '*': entry }, 'm.json')).toThrow(/m.json: \*: the observation key "prefix" is the committed prefix/);
    }
  });
});
