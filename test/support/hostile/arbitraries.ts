/**
 * Hostile request bodies as fast-check arbitraries, shared by the fuzz tests (test/fuzz.test.ts), the abuse
 * benchmark (bench/abuse.ts) and soak runs: random bytes, valid messages mutated byte-wise, PredictRequests
 * with hostile values in every field (encoded by the real encoder), wrong wire types, and the floods that
 * test/hostile-input.test.ts pins down. Every arbitrary yields the message bytes exactly as they go on the wire.
 */
import fc from 'fast-check';
import type { ImageEncoding } from '@dust-serve/client/gen/dust/serving/v1/ImageEncoding';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import { float32Field, lengthDelimited, repeat, tag, varint, varintField, WIRE } from './protobuf-writer.js';

/** Text a client could put in any string field: control characters, emoji, lone surrogates, huge, prototype keys. */
export function hostileString(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      '',
      ' ',
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'dust-tiny',
      'dust-tiny@1',
      'dust-tiny@0',
      'dust-tiny@x',
      '@1',
      'dust-tiny@99999999999999999999',
      'a\r\nx-injected: 1',
      '\u0000',
      '\ud800',
      '\udfff',
      '🤖'.repeat(40),
      'é'.repeat(65),
      '%00%0a',
    ),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: fc.constantFrom('\n', '\t', '\u007f', '\u0085', '\u2028', '\ufeff', 'a', '"', '\\'), maxLength: 30 }),
    fc.constantFrom(129, 257, 4097, 70_000).map((n) => 'x'.repeat(n)),
  );
}

/** Numbers as far as proto's float and uint32 allow: NaN, infinities, huge, tiny, negative zero, and ordinary ones. */
export function hostileFloat(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(Number.NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 3.5e38, 1e30, -1e30, 1e-45, -0, 0, 1, -1), fc.float(), fc.double());
}

export function hostileUint32(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 63, 64, 65, 4096, 65_535, 2 ** 31, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 }));
}

const JPEG_HEAD = [0xff, 0xd8, 0xff];
const PNG_HEAD = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Image bytes: nothing, noise, a real signature followed by garbage, or a valid image of the base request. */
function hostileImageData(valid: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.uint8Array({ maxLength: 512 }),
    fc.uint8Array({ maxLength: 256 }).map((b) => Uint8Array.from([...JPEG_HEAD, ...b])),
    fc.uint8Array({ maxLength: 256 }).map((b) => Uint8Array.from([...PNG_HEAD, ...b])),
    ...valid.map((v) => fc.constant(v)),
  );
}

function hostileImage(base: PredictRequest['images'] & object, cameras: readonly string[]) {
  const valid = base.map((i) => i.data as Uint8Array);
  return fc.record({
    camera: fc.oneof(fc.constantFrom(...cameras), hostileString()),
    encoding: fc.oneof(
      fc.constantFrom('IMAGE_ENCODING_UNSPECIFIED', 'IMAGE_ENCODING_RAW_RGB8', 'IMAGE_ENCODING_JPEG', 'IMAGE_ENCODING_PNG'),
      fc.constantFrom(4, 99, 2 ** 31 - 1, -1) as fc.Arbitrary<ImageEncoding>,
    ),
    width: hostileUint32(),
    height: hostileUint32(),
    data: hostileImageData(valid),
  });
}

/**
 * A PredictRequest with hostile values in one to three of its fields and the base request's values in the
 * others (so that each hostile value gets past the checks of the other fields and reaches its own), encoded
 * with `serialize`: the server's own encoder, which writes what it is given (lone surrogates become invalid
 * UTF-8, wrong JS types are coerced as protobufjs coerces them).
 */
export function hostilePredictRequest(base: PredictRequest, cameras: readonly string[], serialize: (r: PredictRequest) => Buffer): fc.Arbitrary<Buffer> {
  const images = base.images ?? [];
  const hostile = {
    request_id: hostileString(),
    robot_id: hostileString(),
    episode_id: hostileString(),
    model: hostileString(),
    embodiment: hostileString(),
    images: fc.oneof(
      fc.array(hostileImage(images, cameras), { maxLength: 5 }),
      // One camera view replaced: the others stay valid, so the hostile one is what gets decoded.
      fc.tuple(fc.nat({ max: Math.max(0, images.length - 1) }), hostileImage(images, cameras)).map(([i, img]) => images.map((v, j) => (j === i ? img : v))),
    ),
    state: fc.oneof(
      fc.array(hostileFloat(), { maxLength: 20 }),
      fc.array(hostileFloat(), { minLength: base.state?.length ?? 0, maxLength: base.state?.length ?? 0 }),
      fc.constantFrom(1025, 5000).map((n) => new Array<number>(n).fill(0.5)),
    ),
    instruction: hostileString(),
    sampling: fc.record({
      action_steps: hostileUint32(),
      vision_steps: hostileUint32(),
      seed: fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), { nil: undefined }),
      latency_budget_ms: hostileUint32(),
    }),
    return_future_embedding: fc.boolean(),
    steps_executed: hostileUint32(),
  };
  const names = Object.keys(hostile) as Array<keyof typeof hostile>;
  return fc
    .tuple(fc.record(hostile), fc.shuffledSubarray(names, { minLength: 1, maxLength: 3 }))
    .map(([values, chosen]) => serialize({ ...base, ...Object.fromEntries(chosen.map((k) => [k, values[k]])) } as PredictRequest));
}

/** Any bytes at all. */
export function randomBody(maxLength = 2048): fc.Arbitrary<Buffer> {
  return fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
}

type Mutation = { kind: 'flip' | 'set' | 'truncate' | 'insert' | 'delete' | 'duplicate'; at: number; value: number; bytes: Uint8Array };

function applyMutation(buf: Buffer, m: Mutation): Buffer {
  if (buf.length === 0) return Buffer.from(m.bytes);
  const at = Math.floor(m.at * buf.length);
  switch (m.kind) {
    case 'flip': {
      const out = Buffer.from(buf);
      out[at] ^= 1 << (m.value & 7);
      return out;
    }
    case 'set': {
      const out = Buffer.from(buf);
      out[at] = m.value & 0xff;
      return out;
    }
    case 'truncate':
      return buf.subarray(0, at);
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
    case 'delete':
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + 1 + (m.value % 16))]);
    case 'duplicate':
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at, at + 1 + m.value), buf.subarray(at)]);
  }
}

/** One of `valid` with 1 to 4 byte-level mutations: bit flips, overwrites, truncation, insertion, deletion, duplication. */
export function mutatedBody(valid: readonly Buffer[]): fc.Arbitrary<Buffer> {
  const mutation: fc.Arbitrary<Mutation> = fc.record({
    kind: fc.constantFrom('flip', 'set', 'truncate', 'insert', 'delete', 'duplicate'),
    at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
    value: fc.nat({ max: 4095 }),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  });
  return fc
    .tuple(fc.constantFrom(...valid), fc.array(mutation, { minLength: 1, maxLength: 4 }))
    .map(([buf, mutations]) => mutations.reduce(applyMutation, buf));
}

/** Known fields of PredictRequest (and beyond) sent with any wire type, including the ones proto3 never uses. */
export function wrongWireTypes(): fc.Arbitrary<Buffer> {
  const piece = fc.record({ field: fc.integer({ min: 0, max: 20 }), wire: fc.integer({ min: 0, max: 7 }), payload: fc.uint8Array({ maxLength: 12 }) });
  return fc
    .array(piece, { minLength: 1, maxLength: 8 })
    .map((pieces) =>
      Buffer.concat(pieces.map((p) => Buffer.concat([tag(p.field, p.wire), p.wire === WIRE.LEN ? varint(p.payload.length) : Buffer.alloc(0), p.payload]))),
    );
}

/** The known hostile requests of test/hostile-input.test.ts as bodies, the floods scaled to `maxBytes` (kept just under it, except "over-limit"). */
export function knownAttacks(base: PredictRequest, serialize: (r: PredictRequest) => Buffer, maxBytes: number): Array<{ name: string; body: Buffer }> {
  const emptyImage = lengthDelimited(6, Buffer.alloc(0));
  const unpackedFloat = float32Field(7, 1);
  const flag = varintField(10, 1);
  const flood = (piece: Buffer, extra = -1) => repeat(piece, Math.floor(maxBytes / piece.length) + extra);
  let nested: Buffer = lengthDelimited(9, Buffer.alloc(0));
  for (let i = 0; i < 200; i++) nested = lengthDelimited(6, lengthDelimited(15, nested));
  const state = base.state ?? [];
  return [
    { name: 'images-flood', body: flood(emptyImage) },
    { name: 'state-flood', body: flood(unpackedFloat) },
    { name: 'field-flood', body: flood(flag) },
    { name: 'over-limit', body: flood(emptyImage, 8) },
    { name: 'request-id-newline', body: serialize({ ...base, request_id: 'a\nb', embodiment: 'hexapod' }) },
    { name: 'request-id-100k', body: serialize({ ...base, request_id: 'x'.repeat(100_000), embodiment: 'hexapod' }) },
    { name: 'request-id-invalid-utf8', body: Buffer.concat([serialize(base), lengthDelimited(1, Buffer.from([0xed, 0xa0, 0x80]))]) },
    { name: 'episode-id-long', body: serialize({ ...base, episode_id: 'e'.repeat(50_000) }) },
    { name: 'robot-id-long', body: serialize({ ...base, robot_id: 'r'.repeat(50_000) }) },
    { name: 'state-huge', body: serialize({ ...base, state: state.map((v, i) => (i === 0 ? 3.4e38 : v)) }) },
    { name: 'embodiment-proto', body: serialize({ ...base, embodiment: '__proto__' }) },
    { name: 'action-steps-max', body: serialize({ ...base, sampling: { action_steps: 2 ** 32 - 1 } }) },
    { name: 'nested', body: nested },
    { name: 'length-overrun', body: Buffer.from([0x0a, 0xff, 0x01]) },
    { name: 'invalid-wire-type', body: Buffer.from([0x7f]) },
  ];
}
