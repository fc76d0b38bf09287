/**
 * Real-time chunking's condition method through the real server (docs/api.md, "Real-time chunking";
 * docs/sampling.md): on the shipped push policy trained with prefix conditioning (models/push-repo/dust-push/4,
 * whose manifest lists `condition` and whose denoiser takes `action_times`), a request's committed actions are
 * given clean to the denoiser and the rest of the chunk continues them; rows with other methods share its
 * batches; a seeded request reproduces; both executors give the same chunk.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DustClient } from '@dust-serve/client';
import type { Manifest } from '../src/model/index.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { CommittedPrefix } from '@dust-serve/client/gen/dust/serving/v1/CommittedPrefix';
import { floats, jpeg, predict, startTestServer, tempRepository, TEST_REPOSITORY, type TestServer } from './support/harness.js';
import { chunkModel, servedAmid, tensor } from './support/chunks.js';

const PACKAGE = path.join(TEST_REPOSITORY, 'push-repo', 'dust-push', '4');
const EMBODIMENT = 'pusher2';
const { manifest, emb, H, DIM, gap } = chunkModel(path.join(PACKAGE, 'manifest.json'), EMBODIMENT);
const STEPS = { action_steps: 4, vision_steps: 4 };

async function request(over: Partial<PredictRequest> = {}): Promise<PredictRequest> {
  return {
    robot_id: 'pusher',
    model: `dust-push@4`,
    embodiment: EMBODIMENT,
    images: [
      { camera: 'top', encoding: 'IMAGE_ENCODING_JPEG', data: await jpeg(64, 64, [200, 60, 40]) },
      { camera: 'gripper', encoding: 'IMAGE_ENCODING_JPEG', data: await jpeg(64, 64, [40, 60, 200]) },
    ],
    state: Array.from({ length: emb.state_dim }, (_, i) => 0.05 * (i + 1)),
    instruction: 'push the red ball into the white circle',
    sampling: STEPS,
    ...over,
  };
}

/** The same chunk from each executor, compared after both ran. */
const chunks: Record<string, Float32Array> = {};

for (const executor of ['onnxruntime-node', 'native'] as const) {
  describe(`the condition method on the ${executor} executor`, () => {
    let t: TestServer;
    let repo: ReturnType<typeof tempRepository>;
    /** A chunk the server made: the robot's committed actions are the rest of it. */
    let previous: Float32Array;
    beforeAll(async () => {
      repo = tempRepository([{ from: PACKAGE, name: 'dust-push', version: 4 }]);
      t = await startTestServer({ executor, modelRepository: repo.root });
      previous = floats((await predict(t.client, await request({ sampling: { ...STEPS, seed: '5' } }))).actions);
    });
    afterAll(async () => {
      await t?.close();
      repo?.remove();
    });

    /** The last `L` actions of the previous chunk, with delay d. */
    const prefix = (L: number, over: Partial<CommittedPrefix> = {}): CommittedPrefix => ({
      actions: tensor(L, previous.slice((H - L) * DIM)),
      delay_steps: 3,
      method: 'CHUNKING_METHOD_CONDITION',
      ...over,
    });

    it('gives the committed actions to the policy clean: rows < d equal them and the rows after follow from them', async () => {
      const sampling = { ...STEPS, seed: '11' };
      const res = await predict(t.client, await request({ sampling, prefix: prefix(8) }));
      expect(res.chunking).toEqual({ method: 'CHUNKING_METHOD_CONDITION', delay_steps: 3, delay_estimated: false, prefix_length: 8 });
      const got = floats(res.actions);
      chunks[executor] = got;
      const committed = previous.slice((H - 8) * DIM);
      expect(gap(got, committed, 0, 3)).toBeLessThan(1e-5);
      // Naive switching with the same noise: the same model without the prefix. The free rows differ, so the
      // policy read the committed actions (a server that pinned rows < d and ignored them otherwise would fail).
      const naive = floats((await predict(t.client, await request({ sampling, prefix: prefix(8, { method: 'CHUNKING_METHOD_NAIVE' }) }))).actions);
      expect(gap(naive, committed, 0, 3)).toBeGreaterThan(1e-3);
      expect(gap(got, naive, 3, H)).toBeGreaterThan(1e-3);
      // Rows beyond d are the policy's own: not pinned to the committed ones.
      expect(gap(got, committed, 3, 8)).toBeGreaterThan(1e-4);
    });

    it('is the method the server picks for this package, and ListModels lists it first', async () => {
      const res = await predict(t.client, await request({ prefix: prefix(6, { method: undefined, delay_steps: 2 }) }));
      expect(res.chunking!.method).toBe('CHUNKING_METHOD_CONDITION');
      const client = new DustClient(t.address);
      try {
        const push = (await client.listModels()).models.find((m) => m.name === 'dust-push')!;
        expect(push.realtimeChunking).toEqual(['condition', 'inpaint', 'naive', 'ensemble']);
      } finally {
        client.close();
      }
    });

    it('reproduces a seeded request whatever shares its batches (no prefix, inpainting, other delays)', async () => {
      const req = await request({ sampling: { ...STEPS, seed: '123' }, prefix: prefix(10, { delay_steps: 4 }) });
      const others = [
        await request({ robot_id: 'plain', sampling: { action_steps: 2, vision_steps: 8 } }),
        await request({ robot_id: 'late', prefix: prefix(6, { delay_steps: 1 }) }),
        await request({ robot_id: 'inpainting', prefix: prefix(6, { method: 'CHUNKING_METHOD_INPAINT' }) }),
      ];
      const [alone, a, b] = await servedAmid(t.client, req, others);
      expect(gap(a, alone, 0, H)).toBeLessThanOrEqual(1e-5);
      expect(gap(b, alone, 0, H)).toBeLessThanOrEqual(1e-5);
    });
  });
}

describe('the condition method across executors', () => {
  it('gives the same chunk on the native executor as on onnxruntime-node', () => {
    expect(Object.keys(chunks)).toEqual(['onnxruntime-node', 'native']);
    expect(gap(chunks.native, chunks['onnxruntime-node'], 0, H)).toBeLessThan(1e-5);
  });
});
