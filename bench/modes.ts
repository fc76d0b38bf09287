/**
 * The configurations the fleet benchmark compares (BENCHMARKS.md, "What it does"). Served modes are the real server with
 * different batching flags; `offline` drives the inference worker directly, with no server at all.
 */

export type ServedModeName = 'step' | 'max-batch-1' | 'request';
export type ModeName = ServedModeName | 'offline';

export interface ServedMode {
  readonly name: ServedModeName;
  readonly description: string;
  /** Flags added to `dust-serve serve`. */
  readonly flags: readonly string[];
}

export const SERVED_MODES: Readonly<Record<ServedModeName, ServedMode>> = Object.freeze({
  step: {
    name: 'step',
    description: 'the product: VLM calls batched across robots, denoiser rows join and leave at every step',
    flags: ['--batching', 'step'],
  },
  'max-batch-1': {
    name: 'max-batch-1',
    description: 'one request at a time through VLM and denoiser, as robot policy servers in use today do',
    flags: ['--max-vlm-batch', '1', '--max-denoise-batch', '1', '--batching', 'request'],
  },
  request: {
    name: 'request',
    description: 'whole requests batched together; a batch runs until all of its requests finish before others join',
    flags: ['--batching', 'request'],
  },
});

export const OFFLINE_DESCRIPTION =
  "no server: the server's executor (same ONNX sessions and arena) in a tight loop, VLM once per B requests then N_o denoiser steps, at the best B";

export const MODE_NAMES: readonly ModeName[] = ['step', 'max-batch-1', 'request', 'offline'];

export function parseModes(list: string): ModeName[] {
  const modes = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  for (const m of modes) {
    if (!(MODE_NAMES as readonly string[]).includes(m)) throw new Error(`--modes: unknown mode "${m}"; known: ${MODE_NAMES.join(', ')}`);
  }
  if (modes.length === 0) throw new Error('--modes: at least one mode is needed');
  return modes as ModeName[];
}
