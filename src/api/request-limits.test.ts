import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it, vi } from 'vitest';
import { lengthDelimited, repeat } from '../../test/support/hostile/protobuf-writer.js';
import { InvalidArgumentError } from '../errors/index.js';
import { loadProtos } from './proto.js';
import { limitedDeserializer, MAX_FIELDS, MAX_NAME_BYTES, MAX_REPEATED_ENTRIES, RefusedMessage, requestLimits, withRequestLimits } from './request-limits.js';

const limits = requestLimits({ maxMessageBytes: 65536, maxIdBytes: 16, maxInstructionBytes: 64 });
const { packageDefinition, policy } = loadProtos();
const service = policy.PolicyService.service;
const limited = withRequestLimits(service, limits, { types: packageDefinition, refusalsToHandler: ['StreamPredict'] });
const encode = (m: unknown) => service.Predict.requestSerialize(m as never);
const decodeWith = (method: keyof typeof limited, bytes: Buffer) => limited[method].requestDeserialize(bytes);

function refusal(value: unknown): InvalidArgumentError {
  expect(value).toBeInstanceOf(RefusedMessage);
  return (value as RefusedMessage).error;
}

describe('withRequestLimits on PolicyService', () => {
  const ok = {
    request_id: 'req-1',
    robot_id: 'robot-1',
    embodiment: 'franka_fr3',
    images: [{ camera: 'front', encoding: 'IMAGE_ENCODING_JPEG', data: Buffer.from([0xff, 0xd8, 0xff]) }],
    state: [0.5, 1, 2],
    instruction: 'pick',
    sampling: { action_steps: 4, seed: '7' },
  };

  it('decodes a message within the limits exactly as the plain deserializer does', () => {
    const bytes = encode(ok);
    expect(decodeWith('Predict', bytes)).toEqual(service.Predict.requestDeserialize(bytes));
  });

  it('refuses a message above maxMessageBytes without decoding it', () => {
    const decode = vi.fn();
    const refuse = limitedDeserializer(decode, { name: 'x', fields: new Map() }, limits, false);
    const err = refusal(refuse(Buffer.alloc(65537)));
    expect(err.message).toMatch(/^the request message is 65537 bytes, above this server's limit of 65536/);
    expect(decode).not.toHaveBeenCalled();
    // One unknown field of 65,532 bytes (1-byte tag, 3-byte length): exactly at the limit.
    refuse(lengthDelimited(15, Buffer.alloc(65532)));
    expect(decode).toHaveBeenCalledOnce();
  });

  it('refuses over-long fields of every kind, naming the field and its limit', () => {
    const cases: Array<[object, RegExp]> = [
      [{ request_id: 'r'.repeat(17) }, /^request_id is 17 bytes, above the limit of 16$/],
      [{ robot_id: 'r'.repeat(17) }, /^robot_id is 17 bytes/],
      [{ episode_id: 'r'.repeat(17) }, /^episode_id is 17 bytes/],
      [{ instruction: 'i'.repeat(65) }, /^instruction is 65 bytes, above the limit of 64$/],
      [{ model: 'm'.repeat(MAX_NAME_BYTES + 1) }, new RegExp(`^model is ${MAX_NAME_BYTES + 1} bytes`)],
      [{ embodiment: 'e'.repeat(MAX_NAME_BYTES + 1) }, /^embodiment is/],
      [{ images: [{}, { camera: 'c'.repeat(MAX_NAME_BYTES + 1) }] }, /^images\[1\]\.camera is/],
    ];
    for (const [over, message] of cases) {
      expect(refusal(decodeWith('Predict', encode({ ...ok, ...over }))).message).toMatch(message);
    }
    // UTF-8 bytes, not characters: 6 emoji are 24 bytes.
    expect(refusal(decodeWith('Predict', encode({ ...ok, robot_id: '🤖'.repeat(6) }))).message).toMatch(/^robot_id is 24 bytes/);
  });

  it('refuses a request_id that is not visible ASCII, without echoing it', () => {
    const err = refusal(decodeWith('Predict', encode({ ...ok, request_id: 'a\r\nx-evil: 1' })));
    expect(err.message).toMatch(/^request_id holds byte 0x0d at position 1/);
    expect(err.message).not.toContain('evil');
  });

  it('refuses a NUL character in any string, naming the field and not echoing it', () => {
    const cases: Array<[object, RegExp]> = [
      [{ robot_id: 'robot\u0000b' }, /^robot_id holds a NUL character \(U\+0000\) at byte 5/],
      [{ episode_id: '\u0000' }, /^episode_id holds a NUL/],
      [{ instruction: 'pick\u0000' }, /^instruction holds a NUL/],
      [{ model: 'dust\u0000' }, /^model holds a NUL/],
      [{ images: [{ camera: 'fr\u0000ont' }] }, /^images\[0\]\.camera holds a NUL/],
    ];
    for (const [over, message] of cases) expect(refusal(decodeWith('Predict', encode({ ...ok, ...over }))).message).toMatch(message);
    // Bytes fields may hold anything.
    expect(decodeWith('Predict', encode({ ...ok, images: [{ ...ok.images[0], data: Buffer.from([0, 0, 0]) }] }))).not.toBeInstanceOf(RefusedMessage);
  });

  it('counts repeated entries of images and state, packed or not', () => {
    expect(decodeWith('Predict', encode({ ...ok, state: new Array(MAX_REPEATED_ENTRIES).fill(1) }))).not.toBeInstanceOf(RefusedMessage);
    expect(refusal(decodeWith('Predict', encode({ ...ok, state: new Array(MAX_REPEATED_ENTRIES + 1).fill(1) }))).message).toMatch(/^state has more than/);
    const flood = repeat(lengthDelimited(6, Buffer.alloc(0)), MAX_REPEATED_ENTRIES + 1);
    expect(refusal(decodeWith('Predict', flood)).message).toMatch(/^images has more than/);
  });

  it('applies to every method, ReportOutcome and ListModels included', () => {
    expect(refusal(decodeWith('ReportOutcome', lengthDelimited(1, 'r'.repeat(17)))).message).toMatch(/^robot_id is 17 bytes/);
    expect(refusal(decodeWith('ListModels', repeat(lengthDelimited(1, ''), MAX_FIELDS + 1))).message).toMatch(/more than 8192 fields/);
    expect(refusal(decodeWith('ListModels', Buffer.from([0x7f]))).message).toMatch(/not a valid protobuf dust\.serving\.v1\.ListModelsRequest/);
  });

  it('marks refusals of StreamPredict for its handler, and of the other methods for the interceptor', () => {
    const bad = Buffer.from([0x7f]);
    expect((decodeWith('StreamPredict', bad) as RefusedMessage).forHandler).toBe(true);
    expect((decodeWith('Predict', bad) as RefusedMessage).forHandler).toBe(false);
  });

  it('turns a decoder exception into a refusal that says the message is not valid', () => {
    const throwing = limitedDeserializer(
      () => {
        throw new Error('index out of range');
      },
      { name: 'test.Thing', fields: new Map() },
      limits,
      false,
    );
    expect(refusal(throwing(Buffer.alloc(0))).message).toBe('the request is not a valid protobuf test.Thing: index out of range');
  });

  it('scans sub-messages of types it cannot look up as opaque bytes', () => {
    const withoutTypes = withRequestLimits(service, limits) as grpc.ServiceDefinition;
    const bytes = encode({ ...ok, images: [{ camera: 'c'.repeat(MAX_NAME_BYTES + 1) }] });
    expect(withoutTypes.Predict.requestDeserialize(bytes)).not.toBeInstanceOf(RefusedMessage);
  });
});
