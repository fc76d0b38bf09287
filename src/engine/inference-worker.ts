/**
 * Inference worker thread: one model version's scheduler and its ONNX Runtime executor. The whole denoising
 * loop (batch composition, ONNX Runtime calls, Euler updates) runs here, so no step waits on the gRPC event
 * loop and the event loop never waits on a step. The main thread's ModelWorker sends admitted jobs,
 * cancellations and control messages; results go back by transfer of their buffers, and every VLM batch
 * that starts is reported with the current load (the main thread's admission mirrors the queue with it).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToWire } from '../errors/index.js';
import { systemClock } from './clock.js';
import type { JobInput, JobResult } from './job.js';
import { OnnxExecutor } from './onnx-executor.js';
import { Scheduler } from './scheduler.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

/** performance.now() of this thread for an epoch time from the main thread. */
const local = (epoch: number) => epoch - performance.timeOrigin;

function transferables(r: JobResult): ArrayBuffer[] {
  const buffers = new Set([r.actions.buffer, r.future.buffer, r.obsEmbedding.buffer] as ArrayBuffer[]);
  return [...buffers];
}

async function main(): Promise<void> {
  let executor: OnnxExecutor;
  try {
    executor = await OnnxExecutor.create(init.executor);
  } catch (err) {
    post({ kind: 'init-failed', error: errorToWire(err) });
    return;
  }
  const ids = new Map<JobInput, number>();
  const scheduler: Scheduler = new Scheduler(executor, systemClock, init.scheduler, (started) => {
    post({ kind: 'started', ids: started.map((j) => ids.get(j)!), load: scheduler.workerLoad() });
  });
  const cancels = new Map<number, AbortController>();

  port.on('message', (msg: ToWorker) => {
    switch (msg.kind) {
      case 'submit': {
        const abort = new AbortController();
        cancels.set(msg.id, abort);
        if (msg.responsePathMs !== undefined) scheduler.load.responded(msg.responsePathMs);
        const { receivedAtEpoch, deadlineEpoch, ...rest } = msg.job;
        const job: JobInput = { ...rest, receivedAt: local(receivedAtEpoch), deadline: local(deadlineEpoch), signal: abort.signal };
        ids.set(job, msg.id);
        scheduler
          .submit(job)
          .then(
            (result) => post({ kind: 'result', id: msg.id, result }, transferables(result)),
            (err) => post({ kind: 'failed', id: msg.id, error: errorToWire(err) }),
          )
          .finally(() => {
            cancels.delete(msg.id);
            ids.delete(job);
          });
        return;
      }
      case 'cancel':
        cancels.get(msg.id)?.abort();
        return;
      case 'stats':
        post({ kind: 'stats', id: msg.id, stats: { ...scheduler.stats(), cost: { vlm: scheduler.costModel.table('vlm'), step: scheduler.costModel.table('step') } } });
        return;
      case 'drain':
        void scheduler.drain().then(() => post({ kind: 'done', id: msg.id }));
        return;
      case 'close':
        void scheduler.close().then(() => post({ kind: 'done', id: msg.id }));
        return;
      case 'crash':
        setImmediate(() => {
          throw new Error(msg.reason);
        });
        return;
    }
  });
  post({ kind: 'ready', graphs: executor.graphs });
}

void main();
