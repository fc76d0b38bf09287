import { describe, expect, it } from 'vitest';
import { MAX_PACKAGE_PATH_CHARS, packagePathProblem } from './package-path.js';

describe('packagePathProblem', () => {
  it.each(['vlm.onnx', 'onnx/vlm.onnx', 'a/../vlm.onnx', './tokenizer.json', 'weights.onnx.data'])('accepts %j', (name) => {
    expect(packagePathProblem(name)).toBeUndefined();
  });
  it.each([
    ['', /empty/],
    ['../x', /stay inside/],
    ['..', /stay inside/],
    ['a/../../x', /stay inside/],
    ['/etc/passwd', /not absolute/],
    ['a\\..\\..\\x', /"\/" as separator/],
    ['x\0y', /NUL/],
    ['.', /not the package folder/],
    ['a/..', /not the package folder/],
    ['x'.repeat(MAX_PACKAGE_PATH_CHARS + 1), /at most/],
  ])('refuses %j', (name, why) => {
    expect(packagePathProblem(name)).toMatch(why);
  });
});
