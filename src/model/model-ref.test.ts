import { describe, expect, it } from 'vitest';
import { parseModelRef } from './index.js';

describe('parseModelRef', () => {
  it('reads "", "name" and "name@version"', () => {
    expect(parseModelRef('')).toEqual({ name: undefined, version: undefined });
    expect(parseModelRef('dust-tiny')).toEqual({ name: 'dust-tiny', version: undefined });
    expect(parseModelRef('dust-tiny@3')).toEqual({ name: 'dust-tiny', version: 3 });
  });
  it('refuses malformed pins', () => {
    for (const bad of ['dust-tiny@', 'dust-tiny@0', 'dust-tiny@x', '@2', 'a@1.5']) expect(() => parseModelRef(bad)).toThrow(/name@version/);
  });
});
