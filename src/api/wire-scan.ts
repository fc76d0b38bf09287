/**
 * A protobuf message walked on the wire, before it is decoded: tags, varints and lengths only, no object is
 * built. It answers what decoding would cost and whether the message is well formed, so that a request made
 * of millions of empty repeated entries, or of strings far above their limits, is refused for the price of
 * reading its field headers (docs/api.md, "Limits"). Pure.
 *
 * Wire format: https://protobuf.dev/programming-guides/encoding/ (varint, I64, LEN, I32; groups are refused,
 * proto3 has none).
 */
import { InvalidArgumentError } from '../errors/index.js';

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** What the scan checks about one known field of a message. */
export interface FieldRule {
  readonly name: string;
  /** Wire types the field may arrive with (a repeated scalar may also come packed, as LEN). */
  readonly wireTypes: readonly number[];
  readonly repeated: boolean;
  /** For message fields: the sub-message's rule, scanned recursively. */
  readonly message?: MessageRule;
  /** For packed repeated scalars: bytes per element (4 or 8), or 0 for varints. */
  readonly packedElementBytes?: number;
  /** For string fields: the longest accepted value, in UTF-8 bytes. */
  readonly maxBytes?: number;
  /** For string fields echoed into gRPC metadata: only visible ASCII (0x21-0x7E) is accepted. */
  readonly visibleAscii?: boolean;
  /** For string fields: a NUL byte (U+0000) is refused. */
  readonly noNul?: boolean;
}

export interface MessageRule {
  /** Fully qualified message name, for error messages. */
  readonly name: string;
  readonly fields: ReadonlyMap<number, FieldRule>;
}

export interface ScanLimits {
  /** Most fields in the whole message, counted at every level (each packed run counts as one). */
  readonly maxFields: number;
  /** Most entries of any one repeated field in one message. */
  readonly maxRepeated: number;
}

/** Nesting depth of sub-messages; only a recursive message type could reach it. */
export const MAX_DEPTH = 32;

const WIRE_NAMES = ['varint', 'I64', 'LEN', 'start group', 'end group', 'I32', 'invalid (6)', 'invalid (7)'];

class Scan {
  private fields = 0;
  /** The read position: varint() moves it past what it reads. */
  private pos = 0;

  constructor(
    private readonly buf: Uint8Array,
    private readonly root: MessageRule,
    private readonly limits: ScanLimits,
  ) {}

  private malformed(what: string): InvalidArgumentError {
    return new InvalidArgumentError(`the request is not a valid protobuf ${this.root.name}: ${what}`);
  }

  /**
   * Reads the varint at `pos` and moves past it; returns its low 32 bits. Tags and lengths are read as uint32
   * exactly as protobufjs's decoder reads them, so the scan and the decode see the same fields.
   */
  private varint(end: number): number {
    const start = this.pos;
    let low = 0;
    let scale = 1;
    for (let p = start; p < start + 10; p++) {
      if (p >= end) throw this.malformed(`a varint at byte ${start} runs past the end of its message`);
      const b = this.buf[p];
      if (p < start + 5) {
        low += (b & 0x7f) * scale;
        scale *= 128;
      }
      if (b < 0x80) {
        this.pos = p + 1;
        return low % 4294967296;
      }
    }
    throw this.malformed(`a varint at byte ${start} is longer than 10 bytes`);
  }

  /** Elements in a packed run of varints: one per byte without the continuation bit. */
  private packedVarints(start: number, end: number, stopAbove: number): number {
    let n = 0;
    for (let i = start; i < end && n <= stopAbove; i++) if (this.buf[i] < 0x80) n++;
    if (end > start && this.buf[end - 1] >= 0x80) throw this.malformed(`a packed varint run ending at byte ${end} is cut off`);
    return n;
  }

  run(): void {
    this.message(0, this.buf.length, this.root, '', 0);
  }

  private message(start: number, end: number, rule: MessageRule, prefix: string, depth: number): void {
    if (depth > MAX_DEPTH) throw this.malformed(`sub-messages nested more than ${MAX_DEPTH} deep`);
    // Entries so far of each repeated field; allocated only if the message has one.
    let counts: Map<number, number> | undefined;
    this.pos = start;
    while (this.pos < end) {
      if (++this.fields > this.limits.maxFields) {
        throw new InvalidArgumentError(`the request has more than ${this.limits.maxFields} fields in all; a valid request has far fewer`);
      }
      const at = this.pos;
      const key = this.varint(end);
      const number = Math.floor(key / 8);
      const wireType = key % 8;
      if (number === 0) throw this.malformed(`field number 0 at byte ${at}`);
      const field = rule.fields.get(number);
      if (field && !field.wireTypes.includes(wireType)) {
        throw this.malformed(
          `${fieldName(prefix, field, number)} has wire type ${WIRE_NAMES[wireType]} at byte ${at}; expected ${field.wireTypes.map((w) => WIRE_NAMES[w]).join(' or ')}`,
        );
      }
      let entries = 1;
      switch (wireType) {
        case WIRE_VARINT:
          this.varint(end);
          break;
        case WIRE_I64:
        case WIRE_I32: {
          const size = wireType === WIRE_I64 ? 8 : 4;
          if (end - this.pos < size) throw this.malformed(`${fieldName(prefix, field, number)} at byte ${at} needs ${size} bytes, ${end - this.pos} remain`);
          this.pos += size;
          break;
        }
        case WIRE_LEN: {
          const length = this.varint(end);
          const from = this.pos;
          if (length > end - from) throw this.malformed(`${fieldName(prefix, field, number)} at byte ${at} claims ${length} bytes, ${end - from} remain`);
          if (field) entries = this.lengthDelimited(field, fieldName(prefix, field, number), counts?.get(number) ?? 0, from, from + length, depth);
          this.pos = from + length;
          break;
        }
        default:
          throw this.malformed(`${fieldName(prefix, field, number)} at byte ${at} has wire type ${WIRE_NAMES[wireType]}, which proto3 messages never use`);
      }
      if (field?.repeated) {
        counts ??= new Map();
        const n = (counts.get(number) ?? 0) + entries;
        if (n > this.limits.maxRepeated) {
          throw new InvalidArgumentError(
            `${fieldName(prefix, field, number)} has more than ${this.limits.maxRepeated} entries; that is this server's limit for any repeated field`,
          );
        }
        counts.set(number, n);
      }
    }
  }

  /** Checks a LEN payload of a known field; returns how many repeated entries it holds. */
  private lengthDelimited(field: FieldRule, name: string, index: number, start: number, end: number, depth: number): number {
    const length = end - start;
    if (field.message) {
      this.message(start, end, field.message, field.repeated ? `${name}[${index}].` : `${name}.`, depth + 1);
      return 1;
    }
    if (field.packedElementBytes !== undefined) {
      if (field.packedElementBytes === 0) return this.packedVarints(start, end, this.limits.maxRepeated);
      if (length % field.packedElementBytes !== 0) {
        throw this.malformed(`packed ${name} holds ${length} bytes, not a multiple of ${field.packedElementBytes}`);
      }
      return length / field.packedElementBytes;
    }
    if (field.maxBytes !== undefined && length > field.maxBytes) {
      throw new InvalidArgumentError(`${name} is ${length} bytes, above the limit of ${field.maxBytes}`);
    }
    if (field.noNul) {
      const nul = this.buf.indexOf(0, start);
      if (nul >= 0 && nul < end) throw new InvalidArgumentError(`${name} holds a NUL character (U+0000) at byte ${nul - start}; strings may not contain it`);
    }
    if (field.visibleAscii) {
      for (let i = start; i < end; i++) {
        const b = this.buf[i];
        if (b < 0x21 || b > 0x7e) {
          throw new InvalidArgumentError(
            `${name} holds byte 0x${b.toString(16).padStart(2, '0')} at position ${i - start}; use visible ASCII only (0x21-0x7E), e.g. a UUID`,
          );
        }
      }
    }
    return 1;
  }
}

function fieldName(prefix: string, field: FieldRule | undefined, number: number): string {
  return field ? `${prefix}${field.name}` : `field ${number}`;
}

/**
 * Walks `buf` as a `rule` message and throws InvalidArgumentError when it is malformed or over a limit: the
 * message says which field and which limit, and never quotes the field's content.
 */
export function scanMessage(buf: Uint8Array, rule: MessageRule, limits: ScanLimits): void {
  new Scan(buf, rule, limits).run();
}
