/** commander argument parsers shared by the push task's command-line programs. */
import { InvalidArgumentError } from 'commander';

export function integerOption(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}`);
    return n;
  };
}

export function numberOption(min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`expected a number >= ${min}`);
    return n;
  };
}

/** "4,8,16" -> [4, 8, 16], each an integer >= min. */
export function integerListOption(min: number) {
  return (v: string): number[] => v.split(',').map((s) => integerOption(min)(s.trim()));
}
