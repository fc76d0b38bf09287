import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { collectImageSpec, parseImageSpec, parsePositiveMs, parseSeed, parseState, parseUint32, passthroughEncoding } from './args.js';

describe('--image camera=path', () => {
  it('splits at the first =, so paths may contain =', () => {
    expect(parseImageSpec('wrist=/tmp/a=b.jpg')).toEqual({ camera: 'wrist', path: '/tmp/a=b.jpg' });
  });

  it('refuses a value without a camera or a path', () => {
    for (const bad of ['/tmp/a.jpg', '=/tmp/a.jpg', 'wrist=']) expect(() => parseImageSpec(bad)).toThrow(InvalidArgumentError);
  });

  it('accumulates when repeated', () => {
    expect(collectImageSpec('b=2.png', collectImageSpec('a=1.jpg'))).toEqual([
      { camera: 'a', path: '1.jpg' },
      { camera: 'b', path: '2.png' },
    ]);
  });

  it('sends .jpg/.jpeg/.png as they are and decodes anything else', () => {
    expect(passthroughEncoding('/x/A.JPG')).toBe('jpeg');
    expect(passthroughEncoding('a.jpeg')).toBe('jpeg');
    expect(passthroughEncoding('a.png')).toBe('png');
    expect(passthroughEncoding('a.webp')).toBeUndefined();
    expect(passthroughEncoding('jpg')).toBeUndefined();
  });
});

describe('--state', () => {
  it('reads comma-separated numbers, negatives and exponents included', () => {
    expect(parseState('0.1, -0.2,3e-2')).toEqual([0.1, -0.2, 0.03]);
    expect(parseState('')).toEqual([]);
  });

  it('names the value that is not a finite number', () => {
    expect(() => parseState('0.1,,0.3')).toThrow(/value 2/);
    expect(() => parseState('0.1,abc')).toThrow(/value 2 \("abc"\)/);
    expect(() => parseState('Infinity')).toThrow(InvalidArgumentError);
  });
});

describe('integer flags', () => {
  it('accept non-negative integers that fit uint32', () => {
    expect(parseUint32('0')).toBe(0);
    expect(parseUint32('4294967295')).toBe(4294967295);
    for (const bad of ['-1', '1.5', 'ten', '', '4294967296']) expect(() => parseUint32(bad)).toThrow(InvalidArgumentError);
  });

  it('--deadline-ms must be positive', () => {
    expect(parsePositiveMs('250')).toBe(250);
    expect(() => parsePositiveMs('0')).toThrow(/positive/);
  });
});

describe('--seed', () => {
  it('keeps every digit of a 64-bit seed, decimal or hex', () => {
    expect(parseSeed('18446744073709551615')).toBe(2n ** 64n - 1n);
    expect(parseSeed('0xff')).toBe(255n);
    expect(parseSeed('0')).toBe(0n);
  });

  it('refuses negative, fractional, empty and oversized seeds', () => {
    for (const bad of ['-1', '1.5', '', ' ', '18446744073709551616', '1e3']) expect(() => parseSeed(bad)).toThrow(InvalidArgumentError);
  });
});
