/**
 * openpi's wire format (docs/openpi.md, "Frames"): each WebSocket binary frame is one msgpack object, in which
 * a numpy array travels as a map {"__ndarray__": true, "data": <bin>, "dtype": <numpy dtype.str, e.g. "|u1",
 * "<f4">, "shape": [...]} and a numpy scalar as {"__npgeneric__": true, "data": <value>, "dtype": ...}. Python's
 * msgpack packs those marker keys as bytes, so they arrive as msgpack bin (str is accepted too) and must leave
 * as bin: openpi_client's unpacker looks for b"__ndarray__".
 *
 * A frame is walked on its bytes before it is decoded (scanFrame), as wire-scan.ts walks a protobuf message:
 * a frame of millions of tiny items, or nested deeper than any observation, is refused for the price of reading
 * its headers, before a JS object is built. Only plain numeric dtypes are accepted; object, string, structured,
 * complex and datetime arrays are refused. Pure.
 */
import { Decoder } from '@msgpack/msgpack';
import { InvalidArgumentError, quote } from '../../errors/index.js';

export interface FrameLimits {
  /** Largest frame, in bytes: the request limit of the gRPC path (maxMessageBytes). */
  readonly maxBytes: number;
  /** Most msgpack items (values, map keys included) in one frame. */
  readonly maxItems: number;
  /** Deepest nesting of maps and arrays. */
  readonly maxDepth: number;
}

function malformed(what: string): InvalidArgumentError {
  return new InvalidArgumentError(`the frame is not valid msgpack: ${what}`);
}

/** Bytes of the fixed-size payload that follows each msgpack type byte from 0xc0 on (undefined: variable or none). */
const FIXED: Readonly<Record<number, number>> = {
  0xc0: 0,
  0xc2: 0,
  0xc3: 0,
  0xca: 4,
  0xcb: 8,
  0xcc: 1,
  0xcd: 2,
  0xce: 4,
  0xcf: 8,
  0xd0: 1,
  0xd1: 2,
  0xd2: 4,
  0xd3: 8,
  // fixext 1, 2, 4, 8, 16: a type byte, then the data.
  0xd4: 2,
  0xd5: 3,
  0xd6: 5,
  0xd7: 9,
  0xd8: 17,
};

/**
 * Checks that `buf` is exactly one well-formed msgpack object within the limits, without building it (the
 * format: https://github.com/msgpack/msgpack/blob/master/spec.md). Iterative, so no nesting can exhaust the stack.
 */
export function scanFrame(buf: Uint8Array, limits: FrameLimits): void {
  if (buf.length > limits.maxBytes) {
    throw new InvalidArgumentError(
      `the frame is ${buf.length} bytes, above this server's limit of ${limits.maxBytes} (--max-message-bytes): send smaller images or fewer keys`,
    );
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  /** Items still to read in each open map or array; the frame itself is one. */
  const open: number[] = [1];
  let pos = 0;
  let items = 0;
  const need = (n: number, what: string) => {
    if (buf.length - pos < n) throw malformed(`${what} at byte ${pos} needs ${n} bytes, ${buf.length - pos} remain`);
  };
  const length = (bytes: 1 | 2 | 4, what: string): number => {
    need(bytes, what);
    const n = bytes === 1 ? view.getUint8(pos) : bytes === 2 ? view.getUint16(pos) : view.getUint32(pos);
    pos += bytes;
    return n;
  };
  const skip = (n: number, what: string) => {
    need(n, what);
    pos += n;
  };
  while (open.length > 0) {
    if (open[open.length - 1] === 0) {
      open.pop();
      continue;
    }
    open[open.length - 1]--;
    if (++items > limits.maxItems) throw new InvalidArgumentError(`the frame holds more than ${limits.maxItems} msgpack items; an observation needs far fewer`);
    need(1, 'an item');
    const type = buf[pos++];
    let children = 0;
    if (type <= 0x7f || type >= 0xe0) continue;
    if (type <= 0x8f) children = (type - 0x80) * 2;
    else if (type <= 0x9f) children = type - 0x90;
    else if (type <= 0xbf) skip(type - 0xa0, 'a string');
    else if (FIXED[type] !== undefined) skip(FIXED[type], 'a value');
    else if (type === 0xc4 || type === 0xd9) skip(length(1, 'a length'), 'a string or bin');
    else if (type === 0xc5 || type === 0xda) skip(length(2, 'a length'), 'a string or bin');
    else if (type === 0xc6 || type === 0xdb) skip(length(4, 'a length'), 'a string or bin');
    else if (type === 0xc7) skip(length(1, 'a length') + 1, 'an extension');
    else if (type === 0xc8) skip(length(2, 'a length') + 1, 'an extension');
    else if (type === 0xc9) skip(length(4, 'a length') + 1, 'an extension');
    else if (type === 0xdc) children = length(2, 'an array length');
    else if (type === 0xdd) children = length(4, 'an array length');
    else if (type === 0xde) children = length(2, 'a map length') * 2;
    else if (type === 0xdf) children = length(4, 'a map length') * 2;
    else throw malformed(`byte 0x${type.toString(16)} at ${pos - 1} is not a msgpack type`);
    if (children > 0) {
      // Each item takes at least a byte: a count above what remains is a lie, refused before it is believed.
      if (children > buf.length - pos) throw malformed(`a map or array at byte ${pos} claims ${children} items, ${buf.length - pos} bytes remain`);
      if (open.length > limits.maxDepth) throw new InvalidArgumentError(`the frame nests maps and arrays more than ${limits.maxDepth} deep`);
      open.push(children);
    }
  }
  if (pos !== buf.length) throw malformed(`${buf.length - pos} bytes follow the first object; send one msgpack object per frame`);
}

const utf8 = new TextDecoder('utf-8');

/** Map keys as strings: str as itself, bin (how Python packs bytes keys) decoded as UTF-8. */
function mapKey(key: unknown): string {
  const s = typeof key === 'string' ? key : key instanceof Uint8Array ? utf8.decode(key) : undefined;
  if (s === undefined) throw malformed(`map keys must be strings, not ${typeof key}`);
  if (s === '__proto__') throw malformed('the map key "__proto__" is not accepted');
  return s;
}

/** Decodes a frame scanFrame accepted. @throws InvalidArgumentError for anything that is not msgpack within the limits. */
export function decodeFrame(buf: Uint8Array, limits: FrameLimits): unknown {
  scanFrame(buf, limits);
  const decoder = new Decoder({
    mapKeyConverter: mapKey,
    maxStrLength: limits.maxBytes,
    maxBinLength: limits.maxBytes,
    maxArrayLength: limits.maxItems,
    maxMapLength: limits.maxItems,
    useBigInt64: true,
  });
  try {
    return decoder.decode(buf);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw malformed(err instanceof Error ? err.message : String(err));
  }
}

/** A plain object (a decoded msgpack map). */
export type Dict = Record<string, unknown>;

export function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** A map's own value for `key`: decoded maps are plain objects, so "constructor" and the like must not resolve. */
export function own(d: Dict, key: string): unknown {
  return Object.hasOwn(d, key) ? d[key] : undefined;
}

export type NumericKind = 'b' | 'u' | 'i' | 'f';

/** A numpy array as it arrived: its bytes, not yet converted. */
export interface NdArray {
  /** numpy's dtype.str, e.g. "|u1", "<f4". */
  readonly dtype: string;
  readonly kind: NumericKind;
  readonly itemBytes: number;
  readonly littleEndian: boolean;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

const SIZES: Readonly<Record<NumericKind, readonly number[]>> = { b: [1], u: [1, 2, 4, 8], i: [1, 2, 4, 8], f: [2, 4, 8] };
const REFUSED_KINDS: Readonly<Record<string, string>> = {
  O: 'an object array (pickled Python objects)',
  U: 'a string array',
  S: 'a bytes array',
  V: 'a structured array',
  c: 'a complex array',
  M: 'a datetime array',
  m: 'a timedelta array',
};
/** Most dimensions of an accepted array; observations use 3 at most. */
const MAX_DIMS = 8;

function parseDtype(dtype: unknown, where: string): Pick<NdArray, 'kind' | 'itemBytes' | 'littleEndian'> {
  if (typeof dtype !== 'string') throw new InvalidArgumentError(`${where}: the array's dtype must be a numpy dtype string such as "<f4"`);
  const kind = /^[<>|=]?([a-zA-Z])/.exec(dtype)?.[1];
  if (kind && Object.hasOwn(REFUSED_KINDS, kind)) {
    throw new InvalidArgumentError(`${where} is ${REFUSED_KINDS[kind]} (dtype ${quote(dtype)}); send plain numeric arrays: uint8 images, float or int state`);
  }
  const m = /^([<>|=]?)([buif])(\d{1,2})$/.exec(dtype);
  if (!m || !SIZES[m[2] as NumericKind].includes(Number(m[3]))) {
    throw new InvalidArgumentError(`${where} has dtype ${quote(dtype)}, not a plain numeric numpy dtype (bool, int, uint or float)`);
  }
  return { kind: m[2] as NumericKind, itemBytes: Number(m[3]), littleEndian: m[1] !== '>' };
}

/**
 * The array a msgpack-numpy map holds, checked (dtype, shape, data length); undefined when `v` is not an
 * ndarray map. `where` names the value in error messages.
 */
export function asNdArray(v: unknown, where: string): NdArray | undefined {
  if (!isDict(v) || own(v, '__ndarray__') === undefined) return undefined;
  if (own(v, '__ndarray__') !== true) throw new InvalidArgumentError(`${where}: "__ndarray__" must be true`);
  const { kind, itemBytes, littleEndian } = parseDtype(own(v, 'dtype'), where);
  const shape = own(v, 'shape');
  const data = own(v, 'data');
  if (!Array.isArray(shape) || shape.length > MAX_DIMS || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
    throw new InvalidArgumentError(`${where}: the array's shape must be a list of at most ${MAX_DIMS} non-negative integers`);
  }
  if (!(data instanceof Uint8Array)) throw new InvalidArgumentError(`${where}: the array's data must be bytes`);
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  if (elements * itemBytes !== data.length) {
    throw new InvalidArgumentError(
      `${where}: shape [${shape.join(', ')}] of ${itemBytes}-byte items needs ${elements * itemBytes} bytes of data, got ${data.length}`,
    );
  }
  return { dtype: own(v, 'dtype') as string, kind, itemBytes, littleEndian, shape: shape as number[], data };
}

/** Reads element i of an array as a number (int64 beyond 2^53 loses precision, as float64 would). */
function element(a: NdArray, view: DataView, i: number): number {
  const at = i * a.itemBytes;
  const le = a.littleEndian;
  switch (a.kind) {
    case 'b':
      return view.getUint8(at) === 0 ? 0 : 1;
    case 'u':
      return a.itemBytes === 1
        ? view.getUint8(at)
        : a.itemBytes === 2
          ? view.getUint16(at, le)
          : a.itemBytes === 4
            ? view.getUint32(at, le)
            : Number(view.getBigUint64(at, le));
    case 'i':
      return a.itemBytes === 1
        ? view.getInt8(at)
        : a.itemBytes === 2
          ? view.getInt16(at, le)
          : a.itemBytes === 4
            ? view.getInt32(at, le)
            : Number(view.getBigInt64(at, le));
    case 'f':
      return a.itemBytes === 2 ? float16(view.getUint16(at, le)) : a.itemBytes === 4 ? view.getFloat32(at, le) : view.getFloat64(at, le);
  }
}

/** IEEE 754 half precision to a number (Node 20 has no DataView.getFloat16). */
function float16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Every element of an array, in row-major order, as numbers. */
export function arrayNumbers(a: NdArray): number[] {
  const view = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const n = a.data.length / a.itemBytes;
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = element(a, view, i);
  return out;
}

/**
 * The value of a numpy scalar map ({"__npgeneric__": true, "data": <its .item()>, ...}); undefined when `v` is not
 * one. The caller checks the value's type.
 */
export function asNpGeneric(v: unknown): unknown {
  if (!isDict(v) || own(v, '__npgeneric__') === undefined) return undefined;
  return own(v, 'data');
}

/** A float32 array to send, as little-endian bytes; packFrame writes it as a msgpack-numpy map with bin keys. */
export class OutArray {
  constructor(
    /** float32 little-endian, row-major (the gRPC Tensor's bytes). */
    readonly data: Uint8Array,
    readonly shape: readonly number[],
  ) {
    const elements = shape.reduce((a, b) => a * b, 1);
    if (elements * 4 !== data.length) throw new RangeError(`OutArray: shape [${shape.join(', ')}] needs ${elements * 4} bytes, got ${data.length}`);
  }

  static ofFloats(values: Float32Array, shape: readonly number[]): OutArray {
    const data = new Uint8Array(values.length * 4);
    const view = new DataView(data.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
    return new OutArray(data, shape);
  }
}

/**
 * Encodes a response: maps with string keys, strings, numbers (integers as msgpack ints, others as float64),
 * booleans, bigints (uint64/int64), null, lists, bytes, and OutArray as openpi's ndarray map. A writer of its
 * own because @msgpack/msgpack writes every map key as str, and openpi_client recognises an array only by
 * bin keys.
 */
export function packFrame(value: unknown): Uint8Array {
  const w = new Writer();
  w.value(value, 0);
  return w.bytes();
}

const encoder = new TextEncoder();
/** Responses are shallow; a deeper value is a bug, not data. */
const MAX_PACK_DEPTH = 16;

class Writer {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private u8(b: number): void {
    this.room(1);
    this.buf[this.pos++] = b;
  }

  private header(n: number, fix: number | undefined, fixMax: number, codes: readonly [number, number, number]): void {
    if (fix !== undefined && n <= fixMax) return this.u8(fix + n);
    this.room(5);
    if (n < 0x100 && codes[0] !== 0) {
      this.buf[this.pos++] = codes[0];
      this.buf[this.pos++] = n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = codes[1];
      this.view.setUint16(this.pos, n);
      this.pos += 2;
    } else {
      this.buf[this.pos++] = codes[2];
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  private raw(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  string(s: string): void {
    const bytes = encoder.encode(s);
    this.header(bytes.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
    this.raw(bytes);
  }

  bin(bytes: Uint8Array): void {
    this.header(bytes.length, undefined, 0, [0xc4, 0xc5, 0xc6]);
    this.raw(bytes);
  }

  private number(n: number): void {
    if (Number.isSafeInteger(n) && n >= 0 && n < 2 ** 32) {
      if (n <= 0x7f) return this.u8(n);
      this.room(5);
      this.buf[this.pos++] = 0xce;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
      return;
    }
    if (Number.isSafeInteger(n) && n < 0 && n >= -(2 ** 31)) {
      this.room(5);
      this.buf[this.pos++] = 0xd2;
      this.view.setInt32(this.pos, n);
      this.pos += 4;
      return;
    }
    this.room(9);
    this.buf[this.pos++] = 0xcb;
    this.view.setFloat64(this.pos, n);
    this.pos += 8;
  }

  private bigint(n: bigint): void {
    this.room(9);
    if (n >= 0n) {
      this.buf[this.pos++] = 0xcf;
      this.view.setBigUint64(this.pos, n);
    } else {
      this.buf[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, n);
    }
    this.pos += 8;
  }

  private ndarray(a: OutArray): void {
    this.u8(0x84);
    for (const [key, write] of [
      ['__ndarray__', () => this.u8(0xc3)],
      ['data', () => this.bin(a.data)],
      ['dtype', () => this.string('<f4')],
      [
        'shape',
        () => {
          this.header(a.shape.length, 0x90, 15, [0, 0xdc, 0xdd]);
          for (const d of a.shape) this.number(d);
        },
      ],
    ] as const) {
      this.bin(encoder.encode(key));
      write();
    }
  }

  value(v: unknown, depth: number): void {
    if (depth > MAX_PACK_DEPTH) throw new Error('packFrame: value nested too deep');
    if (v === null || v === undefined) return this.u8(0xc0);
    if (v === true) return this.u8(0xc3);
    if (v === false) return this.u8(0xc2);
    if (typeof v === 'number') return this.number(v);
    if (typeof v === 'bigint') return this.bigint(v);
    if (typeof v === 'string') return this.string(v);
    if (v instanceof OutArray) return this.ndarray(v);
    if (v instanceof Uint8Array) return this.bin(v);
    if (Array.isArray(v)) {
      this.header(v.length, 0x90, 15, [0, 0xdc, 0xdd]);
      for (const item of v) this.value(item, depth + 1);
      return;
    }
    if (typeof v === 'object') {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      this.header(entries.length, 0x80, 15, [0, 0xde, 0xdf]);
      for (const [k, x] of entries) {
        this.string(k);
        this.value(x, depth + 1);
      }
      return;
    }
    throw new Error(`packFrame: cannot encode a ${typeof v}`);
  }
}
