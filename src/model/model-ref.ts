/**
 * The PredictRequest.model field (docs/api.md): "" (the default model), "name", or "name@version" (a pin).
 */
import { InvalidArgumentError, quote } from '../errors/index.js';

export interface ModelRef {
  /** undefined: the server's default model. */
  readonly name: string | undefined;
  /** undefined: not pinned. */
  readonly version: number | undefined;
}

export function parseModelRef(ref: string): ModelRef {
  if (ref === '') return { name: undefined, version: undefined };
  const at = ref.lastIndexOf('@');
  if (at < 0) return { name: ref, version: undefined };
  const name = ref.slice(0, at);
  const v = ref.slice(at + 1);
  if (!name || !/^[1-9][0-9]*$/.test(v)) {
    throw new InvalidArgumentError(`model ${quote(ref)} is not "name" or "name@version" with a positive integer version`);
  }
  return { name, version: Number(v) };
}
