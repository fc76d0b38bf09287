import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { lengthDelimited, repeat, tag, varint, varintField } from '../../test/support/hostile/protobuf-writer.js';
import { MAX_DEPTH, scanMessage, WIRE_I32, WIRE_LEN, WIRE_VARINT, type MessageRule } from './wire-scan.js';

const image: MessageRule = {
  name: 'test.Image',
  fields: new Map([[1, { name: 'camera', wireTypes: [WIRE_LEN], repeated: false, maxBytes: 8 }]]),
};
const request: MessageRule = {
  name: 'test.Request',
  fields: new Map([
    [1, { name: 'request_id', wireTypes: [WIRE_LEN], repeated: false, maxBytes: 16, visibleAscii: true }],
    [6, { name: 'images', wireTypes: [WIRE_LEN], repeated: true, message: image }],
    [7, { name: 'state', wireTypes: [WIRE_I32, WIRE_LEN], repeated: true, packedElementBytes: 4 }],
    [8, { name: 'steps', wireTypes: [WIRE_VARINT, WIRE_LEN], repeated: true, packedElementBytes: 0 }],
    [10, { name: 'flag', wireTypes: [WIRE_VARINT], repeated: false }],
  ]),
};
const limits = { maxFields: 100, maxRepeated: 5 };
const scan = (bytes: Buffer) => () => scanMessage(bytes, request, limits);

describe('scanMessage', () => {
  it('accepts a well-formed message, unknown fields included', () => {
    const msg = Buffer.concat([
      lengthDelimited(1, 'req-1'),
      lengthDelimited(6, lengthDelimited(1, 'front')),
      lengthDelimited(7, Buffer.alloc(12)),
      varintField(10, 1),
      varintField(99, 2n ** 63n),
      lengthDelimited(100, Buffer.alloc(50)),
    ]);
    expect(scan(msg)).not.toThrow();
    expect(scan(Buffer.alloc(0))).not.toThrow();
  });

  it('counts repeated entries across packed and unpacked runs, and sub-messages', () => {
    const float = Buffer.concat([tag(7, WIRE_I32), Buffer.alloc(4)]);
    expect(scan(Buffer.concat([lengthDelimited(7, Buffer.alloc(12)), float, float]))).not.toThrow();
    expect(scan(Buffer.concat([lengthDelimited(7, Buffer.alloc(12)), float, float, float]))).toThrow(/^state has more than 5 entries/);
    expect(scan(repeat(lengthDelimited(6, Buffer.alloc(0)), 6))).toThrow(/^images has more than 5 entries/);
    expect(scan(lengthDelimited(8, Buffer.concat([varint(300), varint(1), varint(2 ** 40), varint(0), varint(5)])))).not.toThrow();
    expect(scan(lengthDelimited(8, Buffer.concat([varint(300), varint(1), varint(2 ** 40), varint(0), varint(5), varint(6)])))).toThrow(
      /steps has more than 5/,
    );
  });

  it('bounds the fields of the whole message, sub-messages included', () => {
    expect(scan(repeat(varintField(10, 1), 100))).not.toThrow();
    expect(scan(repeat(varintField(10, 1), 101))).toThrow(/more than 100 fields/);
    const images = repeat(lengthDelimited(6, repeat(lengthDelimited(1, 'x'), 30)), 4);
    expect(scan(images)).toThrow(/more than 100 fields/);
  });

  it('checks string lengths and request_id characters without quoting them', () => {
    expect(scan(lengthDelimited(1, 'x'.repeat(17)))).toThrow(/^request_id is 17 bytes, above the limit of 16$/);
    expect(scan(lengthDelimited(6, lengthDelimited(1, 'y'.repeat(9))))).toThrow(/^images\[0\]\.camera is 9 bytes, above the limit of 8$/);
    const second = Buffer.concat([lengthDelimited(6, Buffer.alloc(0)), lengthDelimited(6, lengthDelimited(1, 'y'.repeat(9)))]);
    expect(scan(second)).toThrow(/^images\[1\]\.camera/);
    for (const bad of ['a b', 'a\nb', 'é', '\u007f']) {
      expect(scan(lengthDelimited(1, bad))).toThrow(/^request_id holds byte 0x[0-9a-f]{2} at position \d+; use visible ASCII/);
    }
    expect(scan(lengthDelimited(1, '!~azAZ09-_.:/'))).not.toThrow();
  });

  it.each([
    ['a length past the end', Buffer.from([0x0a, 0xff, 0x01]), /claims 255 bytes, 0 remain/],
    ['a cut varint', Buffer.from([0x50, 0xff]), /runs past the end/],
    ['an 11-byte varint', Buffer.concat([Buffer.from([0x50]), Buffer.alloc(10, 0xff), Buffer.from([0x01])]), /longer than 10 bytes/],
    ['field number 0', Buffer.from([0x00, 0x01]), /field number 0/],
    ['a group', Buffer.from([0x7b]), /wire type start group/],
    ['wire type 7', Buffer.from([0x7f]), /wire type invalid \(7\)/],
    ['a known field with the wrong wire type', varintField(6, 1), /images has wire type varint at byte 0; expected LEN/],
    ['a packed float run of 6 bytes', lengthDelimited(7, Buffer.alloc(6)), /not a multiple of 4/],
    ['a cut I32', Buffer.from([0x3d, 0, 0]), /needs 4 bytes, 2 remain/],
    ['a sub-message overrunning its parent', lengthDelimited(6, Buffer.from([0x0a, 0x05, 0x61])), /claims 5 bytes, 1 remain/],
  ])('refuses %s as not a valid protobuf', (_, bytes, what) => {
    expect(scan(bytes)).toThrow(InvalidArgumentError);
    expect(scan(bytes)).toThrow(/^the request is not a valid protobuf test\.Request: /);
    expect(scan(bytes)).toThrow(what);
  });

  it('reads tags as uint32, as the decoder does: a field number hidden above bit 32 is still counted', () => {
    // Key 2^35 + (6 << 3 | 2): the low 32 bits say field 6 (images), as protobufjs reads it.
    const key = Buffer.from([0xb2, 0x80, 0x80, 0x80, 0x80, 0x01]);
    const hidden = Buffer.concat([key, varint(0)]);
    expect(scan(repeat(hidden, 5))).not.toThrow();
    expect(scan(repeat(hidden, 6))).toThrow(/^images has more than 5 entries/);
  });

  it('stops at a recursion depth a recursive message type could reach', () => {
    const node: { name: string; fields: Map<number, unknown> } = { name: 'test.Node', fields: new Map() };
    node.fields.set(1, { name: 'child', wireTypes: [WIRE_LEN], repeated: false, message: node });
    let msg: Buffer = Buffer.alloc(0);
    for (let i = 0; i <= MAX_DEPTH + 1; i++) msg = lengthDelimited(1, msg);
    expect(() => scanMessage(msg, node as MessageRule, { maxFields: 1000, maxRepeated: 5 })).toThrow(/nested more than/);
  });
});
