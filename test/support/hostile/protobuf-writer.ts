/**
 * Hand-built protobuf wire bytes, for messages no well-behaved encoder would produce: repeated entries by the
 * million, wrong wire types, lengths that overrun the buffer, groups, field number 0. Pure.
 */

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, SGROUP: 3, EGROUP: 4, I32: 5 } as const;

export function varint(n: number | bigint): Buffer {
  let v = BigInt(n);
  if (v < 0n) v = BigInt.asUintN(64, v);
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Buffer.from(out);
}

export function tag(field: number, wireType: number): Buffer {
  return varint((BigInt(field) << 3n) | BigInt(wireType));
}

/** A length-delimited field (string, bytes, sub-message, packed repeated). */
export function lengthDelimited(field: number, payload: Uint8Array | string): Buffer {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  return Buffer.concat([tag(field, WIRE.LEN), varint(bytes.length), bytes]);
}

export function varintField(field: number, value: number | bigint): Buffer {
  return Buffer.concat([tag(field, WIRE.VARINT), varint(value)]);
}

export function float32Field(field: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeFloatLE(value, 0);
  return Buffer.concat([tag(field, WIRE.I32), b]);
}

/** `count` copies of `piece`, without building a JavaScript array of them. */
export function repeat(piece: Uint8Array, count: number): Buffer {
  const out = Buffer.allocUnsafe(piece.length * count);
  for (let i = 0; i < count; i++) out.set(piece, i * piece.length);
  return out;
}
