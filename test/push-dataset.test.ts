/**
 * The push task's episode files, written by the TypeScript recorder, read by the toolchain's Python reader
 * (models/toolchain/data/push.py): the same frames, states, actions, ground-truth labels and instructions on
 * both sides.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { EMBODIMENT_NAMES, emptyIndex, LABEL_NAMES, PushEnv, type RecordedEpisode, recordEpisode, sampleLayout, writeEpisode } from '@dust-serve/sim-push';
import { PYTHON, WITH_NUMPY } from './support/tools.js';

const SIZE = 16;
const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-push-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const READER = `
import json, sys
import numpy as np
from models.toolchain.data.push import PushDataset
ds = PushDataset(sys.argv[1])
print(json.dumps({
  "cameras": ds.cameras, "image_size": ds.image_size, "instructions": len(ds.instructions),
  "label_names": ds.require_labels(),
  "episodes": [{
    "embodiment": ep.embodiment, "instruction": ep.instruction, "seed": ep.seed, "length": ep.length,
    "state": ep.state.tolist(), "actions": ep.actions.tolist(), "labels": ep.labels.tolist(),
    "top_sum": int(sum(int(ep.frame("top", t).astype(np.int64).sum()) for t in range(ep.length))),
    "gripper_last": ep.frame("gripper", ep.length - 1).reshape(-1).tolist(),
  } for ep in ds.episodes]}))
`;

WITH_NUMPY.describe('push dataset files', () => {
  it('are read back by the Python toolchain exactly as recorded', async () => {
    const index = emptyIndex(SIZE);
    const recorded: RecordedEpisode[] = [];
    for (const e of EMBODIMENT_NAMES) {
      const env = await PushEnv.create(e);
      const ep = recordEpisode(env, sampleLayout(21, e), false, SIZE);
      env.dispose();
      recorded.push(ep);
      index.episodes.push(writeEpisode(dir, ep, SIZE));
    }
    writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
    const out = JSON.parse(execFileSync(PYTHON, ['-c', READER, dir], { cwd: path.resolve('.'), encoding: 'utf8' }));
    expect(out.cameras).toEqual(['top', 'gripper']);
    expect(out.image_size).toBe(SIZE);
    expect(out.instructions).toBe(12);
    expect(out.label_names).toEqual(LABEL_NAMES);
    recorded.forEach((ep, i) => {
      const got = out.episodes[i];
      expect(got.embodiment).toBe(ep.layout.embodiment);
      expect(got.instruction).toBe(ep.layout.instruction);
      expect(got.seed).toBe(21);
      expect(got.length).toBe(ep.length);
      expect(got.state).toEqual(ep.states.map((s) => Array.from(s)));
      expect(got.actions).toEqual(ep.actions.map((a) => Array.from(a)));
      expect(got.labels).toEqual(ep.labels.map((l) => Array.from(l)));
      // The pusher's columns of the labels are its proprioceptive state.
      const pusher = LABEL_NAMES.indexOf('pusher_x');
      expect(got.labels.map((l: number[]) => l.slice(pusher, pusher + 2))).toEqual(got.state.map((s: number[]) => s.slice(0, 2)));
      expect(got.top_sum).toBe(ep.frames.top.reduce((a, f) => a + f.reduce((x, y) => x + y, 0), 0));
      expect(got.gripper_last).toEqual(Array.from(ep.frames.gripper[ep.length - 1]));
    });
  });
});
