/** Flag parsers shared by the benchmark programs (commander option arguments). */
import { InvalidArgumentError } from 'commander';

export function number(min: number, integer = false) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`expected ${integer ? 'an integer' : 'a number'} >= ${min}`);
    }
    return n;
  };
}

/** "a, b" -> ["a", "b"]: the items of a comma-separated flag, trimmed (an empty item stays, for its parser to refuse). */
export function listOf(v: string): string[] {
  return v.split(',').map((s) => s.trim());
}

/** A comma-separated flag of numbers, each held to number(min, integer). */
export function numberList(min: number, integer = false) {
  return (v: string): number[] => listOf(v).map(number(min, integer));
}

/** A view side for the robots' camera views: pixels (an integer >= 1) or 'model' (the manifest's image size). */
export function viewSide(v: string): number | 'model' {
  return v === 'model' ? 'model' : number(1, true)(v);
}

/** "--cpu-prof  --x=1" -> ["--cpu-prof", "--x=1"]. */
export const words = (v: string): string[] => v.split(/\s+/).filter((a) => a.length > 0);
