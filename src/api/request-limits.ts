/**
 * Limits on what a request message may hold, enforced on its raw bytes before it is decoded: the
 * total size, then a wire scan (wire-scan.ts) for structure, field and repeated-entry counts, string lengths
 * and the characters of request_id. A message over a limit or unparseable is never decoded; its method's
 * deserializer returns a RefusedMessage instead, which refusalInterceptor (or, for StreamPredict, the handler,
 * so that earlier responses go out first) answers with INVALID_ARGUMENT saying which limit and what to fix.
 *
 * grpc-js answers a deserializer that throws with INTERNAL, and decodes before any interceptor runs; both are
 * why the refusal travels as a value rather than an exception.
 */
import type * as grpc from '@grpc/grpc-js';
import type { OptionSlice } from '../config/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import { scanMessage, WIRE_I32, WIRE_I64, WIRE_LEN, WIRE_VARINT, type FieldRule, type MessageRule, type ScanLimits } from './wire-scan.js';

// The configurable limits are the options that apply to 'requestLimits' (src/config/option-table.ts); these are fixed,
// far above anything a valid request needs.

/** Every other string of a request: model references, embodiment and camera names, health service names. */
export const MAX_NAME_BYTES = 256;
/** Entries of any one repeated field (images, state): manifests have a few cameras and state_dim <= 64. */
export const MAX_REPEATED_ENTRIES = 1024;
/** Fields in a whole request at every level; a valid PredictRequest at MAX_REPEATED_ENTRIES has ~7,200. */
export const MAX_FIELDS = 8192;

export interface RequestLimits extends ScanLimits {
  /** Largest request message in bytes, checked before anything else. */
  readonly maxMessageBytes: number;
  readonly maxIdBytes: number;
  readonly maxInstructionBytes: number;
  readonly maxNameBytes: number;
}

export function requestLimits(o: OptionSlice<'requestLimits'>): RequestLimits {
  return {
    maxMessageBytes: o.maxMessageBytes,
    maxIdBytes: o.maxIdBytes,
    maxInstructionBytes: o.maxInstructionBytes,
    maxNameBytes: MAX_NAME_BYTES,
    maxRepeated: MAX_REPEATED_ENTRIES,
    maxFields: MAX_FIELDS,
  };
}

/** What a request's deserializer returns in place of a message it refused. */
export class RefusedMessage {
  constructor(
    readonly error: InvalidArgumentError,
    /** The method's handler answers it itself, in order with the call's earlier messages (StreamPredict). */
    readonly forHandler: boolean,
  ) {}
}

/** The parts of a protobuf DescriptorProto (as @grpc/proto-loader exposes it) that the rules need. */
interface FieldDescriptor {
  readonly name: string;
  readonly number: number;
  readonly label: string;
  readonly type: string;
  readonly typeName: string;
}
interface MessageDescriptor {
  readonly name: string;
  readonly field: readonly FieldDescriptor[];
}
/** A message descriptor by fully qualified name. */
type TypeLookup = (fullName: string) => MessageDescriptor | undefined;

const WIRE_OF_TYPE: Readonly<Record<string, number>> = {
  TYPE_DOUBLE: WIRE_I64,
  TYPE_FIXED64: WIRE_I64,
  TYPE_SFIXED64: WIRE_I64,
  TYPE_FLOAT: WIRE_I32,
  TYPE_FIXED32: WIRE_I32,
  TYPE_SFIXED32: WIRE_I32,
  TYPE_STRING: WIRE_LEN,
  TYPE_BYTES: WIRE_LEN,
  TYPE_MESSAGE: WIRE_LEN,
};
const PACKED_BYTES: Readonly<Record<number, number>> = { [WIRE_VARINT]: 0, [WIRE_I32]: 4, [WIRE_I64]: 8 };
const ID_FIELDS = new Set(['request_id', 'robot_id', 'episode_id']);

/**
 * No string holds NUL: ids, names and salts are stored as PostgreSQL text, which cannot hold it, and one such
 * row would fail the shared store's group commit for every robot whose counts share it.
 */
function stringRule(name: string, limits: RequestLimits): Pick<FieldRule, 'maxBytes' | 'visibleAscii' | 'noNul'> {
  // request_id is echoed in x-request-id metadata: it must be a valid header value, and short.
  if (name === 'request_id') return { maxBytes: limits.maxIdBytes, visibleAscii: true };
  if (ID_FIELDS.has(name)) return { maxBytes: limits.maxIdBytes, noNul: true };
  if (name === 'instruction') return { maxBytes: limits.maxInstructionBytes, noNul: true };
  return { maxBytes: limits.maxNameBytes, noNul: true };
}

/**
 * The scan rule of a message type, from its descriptor. Sub-messages whose type cannot be looked up are
 * skipped as opaque bytes (still bounded by the size and field-count limits).
 */
function messageRule(d: MessageDescriptor, fullName: string, lookup: TypeLookup, limits: RequestLimits, seen: Map<string, MessageRule>): MessageRule {
  const known = seen.get(fullName);
  if (known) return known;
  const fields = new Map<number, FieldRule>();
  const rule: MessageRule = { name: fullName, fields };
  seen.set(fullName, rule);
  for (const f of d.field) {
    const repeated = f.label === 'LABEL_REPEATED';
    const wire = WIRE_OF_TYPE[f.type] ?? (f.type === 'TYPE_GROUP' ? 3 : WIRE_VARINT);
    const packable = repeated && wire !== WIRE_LEN && wire !== 3;
    const base = { name: f.name, repeated, wireTypes: packable ? [wire, WIRE_LEN] : [wire] };
    if (f.type === 'TYPE_MESSAGE') {
      const subName = qualified(f.typeName, fullName);
      const sub = lookup(subName);
      fields.set(f.number, sub ? { ...base, message: messageRule(sub, subName, lookup, limits, seen) } : base);
    } else if (f.type === 'TYPE_STRING') {
      fields.set(f.number, { ...base, ...stringRule(f.name, limits) });
    } else if (packable) {
      fields.set(f.number, { ...base, packedElementBytes: PACKED_BYTES[wire] });
    } else {
      fields.set(f.number, base);
    }
  }
  return rule;
}

/** "Image" seen from "dust.serving.v1.PredictRequest" -> "dust.serving.v1.Image". */
function qualified(typeName: string, from: string): string {
  if (typeName.startsWith('.')) return typeName.slice(1);
  const pkg = from.slice(0, from.lastIndexOf('.'));
  return pkg ? `${pkg}.${typeName}` : typeName;
}

interface LimitedMethod {
  readonly path: string;
  readonly requestStream: boolean;
  readonly requestDeserialize: (buf: Buffer) => unknown;
  readonly requestType?: { readonly type?: MessageDescriptor };
}

export interface RequestLimitOptions {
  /**
   * Messages of the package the service's request types live in (@grpc/proto-loader's PackageDefinition),
   * to look up sub-message types; without it sub-messages are opaque.
   */
  readonly types?: Readonly<Record<string, unknown>>;
  /** Method names (e.g. "StreamPredict") whose handlers take a RefusedMessage themselves. */
  readonly refusalsToHandler?: readonly string[];
}

/**
 * A copy of `service` whose request deserializers enforce `limits` before decoding. Methods without a
 * request descriptor get the size limit and a structural scan only.
 */
export function withRequestLimits<S extends grpc.ServiceDefinition>(service: S, limits: RequestLimits, options: RequestLimitOptions = {}): S {
  const lookup: TypeLookup = (name) => (options.types?.[name] as { type?: MessageDescriptor } | undefined)?.type;
  const out: Record<string, unknown> = {};
  for (const [key, definition] of Object.entries(service)) {
    const method = definition as unknown as LimitedMethod;
    const servicePath = method.path.slice(1, method.path.lastIndexOf('/'));
    const descriptor = method.requestType?.type;
    const fullName = descriptor ? qualified(descriptor.name, servicePath) : `request of ${method.path}`;
    const rule = descriptor ? messageRule(descriptor, fullName, lookup, limits, new Map()) : { name: fullName, fields: new Map() };
    const forHandler = options.refusalsToHandler?.includes(key) ?? false;
    out[key] = { ...method, requestDeserialize: limitedDeserializer(method.requestDeserialize, rule, limits, forHandler) };
  }
  return out as S;
}

export function limitedDeserializer(decode: (buf: Buffer) => unknown, rule: MessageRule, limits: RequestLimits, forHandler: boolean): (buf: Buffer) => unknown {
  return (buf) => {
    if (buf.length > limits.maxMessageBytes) {
      return new RefusedMessage(
        new InvalidArgumentError(
          `the request message is ${buf.length} bytes, above this server's limit of ${limits.maxMessageBytes}: send JPEG or PNG images, or fewer/smaller ones`,
        ),
        forHandler,
      );
    }
    try {
      scanMessage(buf, rule, limits);
      return decode(buf);
    } catch (err) {
      const refusal =
        err instanceof InvalidArgumentError
          ? err
          : new InvalidArgumentError(`the request is not a valid protobuf ${rule.name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      return new RefusedMessage(refusal, forHandler);
    }
  };
}
