/**
 * Parsers for the client commands' flag values. Each throws commander's InvalidArgumentError, which
 * commander reports as "option '--x <v>' argument 'bad' is invalid. <why>" and exits non-zero. Pure.
 */
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { MAX_SEED, type ImageEncodingName, type VersionWeightInit } from '@dust-serve/client';
import { DEFAULT_PORT } from '../config/index.js';

export const DEFAULT_ADDRESS = `localhost:${DEFAULT_PORT}`;
export const DEFAULT_ROBOT_ID = 'cli';

const MAX_UINT32 = 0xffff_ffff;

export interface ImageSpec {
  camera: string;
  path: string;
}

/** `camera=path`, split at the first `=` so paths may contain `=`. */
export function parseImageSpec(value: string): ImageSpec {
  const eq = value.indexOf('=');
  const camera = eq < 0 ? '' : value.slice(0, eq).trim();
  const file = eq < 0 ? '' : value.slice(eq + 1);
  if (!camera || !file) throw new InvalidArgumentError('expected camera=path, e.g. --image wrist=/tmp/wrist.jpg');
  return { camera, path: file };
}

/** Repeatable --image: commander passes the previous list. */
export function collectImageSpec(value: string, previous: ImageSpec[] = []): ImageSpec[] {
  return [...previous, parseImageSpec(value)];
}

/** The encoding a file is sent with as is (by extension); undefined when it must be decoded and sent as raw RGB8. */
export function passthroughEncoding(file: string): Exclude<ImageEncodingName, 'raw_rgb8'> | undefined {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.png') return 'png';
  return undefined;
}

/** `0.1,-0.2, 3e-2`: comma-separated finite numbers; the empty string is no state. */
export function parseState(value: string): number[] {
  if (value.trim() === '') return [];
  return value.split(',').map((part, i) => {
    const text = part.trim();
    const n = Number(text);
    if (text === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`value ${i + 1} (${JSON.stringify(part)}) is not a finite number`);
    return n;
  });
}

/** A non-negative integer that fits the proto's uint32 (steps, milliseconds). */
export function parseUint32(value: string): number {
  if (!/^\s*\d+\s*$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer');
  const n = Number(value);
  if (n > MAX_UINT32) throw new InvalidArgumentError(`at most ${MAX_UINT32}`);
  return n;
}

/** A positive integer number of milliseconds. */
export function parsePositiveMs(value: string): number {
  const n = parseUint32(value);
  if (n === 0) throw new InvalidArgumentError('expected a positive number of milliseconds');
  return n;
}

/** An unsigned 64-bit seed, decimal or 0x-hex, kept as a bigint so no digit is lost. */
export function parseSeed(value: string): bigint {
  const text = value.trim();
  if (!/^(\d+|0x[0-9a-f]+)$/i.test(text)) throw new InvalidArgumentError('expected an unsigned 64-bit integer (decimal or 0x-hex)');
  const seed = BigInt(text);
  if (seed > MAX_SEED) throw new InvalidArgumentError(`at most ${MAX_SEED} (2^64-1)`);
  return seed;
}

/** `1=0.9,2=0.1`: version=weight pairs, each weight > 0 (the server normalizes them). */
export function parseWeights(value: string): VersionWeightInit[] {
  const pairs = value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if (pairs.length === 0) throw new InvalidArgumentError('expected version=weight pairs, e.g. 1=0.9,2=0.1');
  return pairs.map((pair) => {
    const m = /^([1-9][0-9]*)\s*[=:]\s*([0-9.eE+-]+)$/.exec(pair);
    const weight = m ? Number(m[2]) : NaN;
    if (!m || !(weight > 0) || !Number.isFinite(weight)) {
      throw new InvalidArgumentError(`${JSON.stringify(pair)} is not version=weight with a positive version and a weight > 0`);
    }
    return { version: Number(m[1]), weight };
  });
}

/** A fraction in [0, 1]. */
export function parseFraction(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0 && n <= 1)) throw new InvalidArgumentError('expected a number from 0 to 1');
  return n;
}

/** Any finite number (a reward). */
export function parseFinite(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a finite number');
  return n;
}
