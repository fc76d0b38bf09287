/**
 * Executor over an inference worker thread (inference-worker.ts). Batches cross the thread boundary by
 * transfer of their ArrayBuffers, never by structured-clone copies; results come back the same way.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InferenceError } from '../errors/index.js';
import { ExecutorLostError, type Executor, type ModelShapes, type StepBatch, type StepResult, type VlmBatch, type VlmResult } from './executor.js';
import type { GraphInfo } from '../model/index.js';
import type { WorkerInit, WorkerReply, WorkerRequest } from './worker-protocol.js';

/**
 * The compiled worker script. Under vitest this module runs from its .ts source, and a worker thread cannot
 * load TypeScript, so it falls back to the build output (`npm test` builds first).
 */
function workerScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const sibling = path.join(here, 'inference-worker.js');
  if (existsSync(sibling)) return sibling;
  const built = path.resolve(here, '../../dist/src/engine/inference-worker.js');
  if (existsSync(built)) return built;
  throw new Error(`inference worker script not found next to ${here} nor at ${built}; run \`npm run build\``);
}

export class WorkerExecutor implements Executor {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }>();
  private dead: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly shapes: ModelShapes,
    readonly capacity: number,
    readonly graphs: { readonly vlm: GraphInfo; readonly denoiser: GraphInfo },
  ) {
    worker.on('message', (msg: { id: number; reply: WorkerReply }) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.reply.kind === 'error') p.reject(new InferenceError(msg.reply.message, { cause: msg.reply.stack }));
      else p.resolve(msg.reply);
    });
    const lost = (err: Error) => {
      this.dead = new ExecutorLostError('the inference worker stopped', { cause: err });
      for (const p of this.pending.values()) p.reject(this.dead);
      this.pending.clear();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => {
      if (!this.dead) lost(new Error(`inference worker exited with code ${code}`));
    });
  }

  /** Starts a worker, loads both graphs, and returns once they are ready (or rejects with why not). */
  static async start(init: WorkerInit): Promise<WorkerExecutor> {
    const worker = new Worker(workerScript(), { workerData: init });
    const ready = await new Promise<WorkerReply>((resolve, reject) => {
      const onMessage = (msg: { id: number; reply: WorkerReply }) => {
        if (msg.id !== 0) return;
        worker.off('message', onMessage);
        resolve(msg.reply);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`inference worker exited with code ${code} while loading`)));
    });
    if (ready.kind !== 'ready') {
      await worker.terminate();
      throw new InferenceError(ready.kind === 'error' ? ready.message : `unexpected worker reply ${ready.kind}`);
    }
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    return new WorkerExecutor(worker, init.shapes, init.capacity, { vlm: ready.vlm, denoiser: ready.denoiser });
  }

  private call(req: WorkerRequest, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.pending.set(req.id, { resolve, reject });
      this.worker.postMessage(req, transfer);
    });
  }

  async runVlm(batch: VlmBatch): Promise<VlmResult> {
    const transfer = [batch.pixelValues, batch.inputIds, batch.attentionMask, batch.state, batch.embodimentIds, batch.actions0, batch.future0]
      .map((a) => a.buffer as ArrayBuffer);
    const reply = await this.call({ id: this.nextId++, kind: 'vlm', batch }, transfer);
    if (reply.kind !== 'vlm') throw new InferenceError(`unexpected worker reply ${reply.kind}`);
    return { obsEmbedding: reply.obsEmbedding, runMs: reply.runMs };
  }

  async step(batch: StepBatch): Promise<StepResult> {
    const transfer = [batch.slots, batch.tauA, batch.tauO, batch.dtA, batch.dtO, batch.finishing].map((a) => a.buffer as ArrayBuffer);
    const reply = await this.call({ id: this.nextId++, kind: 'step', batch }, transfer);
    if (reply.kind !== 'step') throw new InferenceError(`unexpected worker reply ${reply.kind}`);
    return reply;
  }

  async close(): Promise<void> {
    if (!this.dead) {
      await this.call({ id: this.nextId++, kind: 'close' }, []).catch(() => undefined);
    }
    await this.worker.terminate();
  }
}
