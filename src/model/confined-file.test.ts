import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelPackageError } from '../errors/index.js';
import { isInside, stallGuard } from './confined-file.js';

describe('isInside', () => {
  it('is strictly inside: not the folder itself, not a sibling sharing its prefix', () => {
    expect(isInside('/repo/m/1', '/repo/m/1/vlm.onnx')).toBe(true);
    expect(isInside('/repo/m/1', '/repo/m/1')).toBe(false);
    expect(isInside('/repo/m/1', '/repo/m/10/vlm.onnx')).toBe(false);
    expect(isInside('/repo/m/1', path.resolve('/repo/m/1/../2/vlm.onnx'))).toBe(false);
  });
});

describe('stallGuard', () => {
  it('refuses an operation that never answers, naming it, and lets a prompt one through', async () => {
    const guard = stallGuard(30, '/repo/m/1');
    const never = new Promise<never>(() => undefined);
    const err = await guard(never, 'reading files["vlm.onnx"]').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelPackageError);
    expect((err as Error).message).toBe('/repo/m/1: reading files["vlm.onnx"] made no progress in 30 ms; the disk or mount is not answering');
    await expect(guard(Promise.resolve(7), 'x')).resolves.toBe(7);
  });

  it('closes a file whose open answers after the refusal', async () => {
    const guard = stallGuard(10, 'pkg');
    let closed = false;
    let answer: (v: unknown) => void = () => undefined;
    const late = new Promise((resolve) => (answer = resolve));
    await expect(guard(late, 'opening x')).rejects.toThrow(/made no progress/);
    const handle = { fd: 3, close: async () => void (closed = true) };
    answer(handle);
    await late;
    await Promise.resolve();
    expect(closed).toBe(true);
  });
});
