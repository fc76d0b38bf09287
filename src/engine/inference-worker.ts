/**
 * Inference worker thread: one model version's scheduler and its ONNX Runtime executor. The whole denoising
 * loop (batch composition, ONNX Runtime calls, Euler updates) runs here, so no step waits on the gRPC event
 * loop and the event loop never waits on a step. The main thread's ModelWorker sends admitted jobs,
 * cancellations and control messages; results go back by transfer of their buffers, and every VLM batch
 * that starts is reported with the current load (the main thread's admission mirrors the queue with it).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToWire, OverloadedError } from '../errors/index.js';
import type { BatchEvent, WireBatch } from './batch-report.js';
import { systemClock } from './clock.js';
import type { JobInput, JobResult } from './job.js';
import { INJECTED_DEVICE_LOST, withFaults } from './fault-injection.js';
import { NativeExecutor } from './native-executor.js';
import { loadNativeOrt } from './native-ort.js';
import { OnnxExecutor } from './onnx-executor.js';
import { Scheduler } from './scheduler.js';
import { lowerThisThread } from './thread-priority.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);

/** performance.now() of this thread for an epoch time from the main thread. */
const local = (epoch: number) => epoch - performance.timeOrigin;
const epoch = (t: number) => performance.timeOrigin + t;

function transferables(r: JobResult): ArrayBuffer[] {
  const buffers = new Set([r.actions.buffer, r.future.buffer, r.obsEmbedding.buffer] as ArrayBuffer[]);
  return [...buffers];
}

async function main(): Promise<void> {
  // Before ONNX Runtime creates its intra-op threads, which inherit this thread's priority.
  lowerThisThread(init.niceness);
  /** Set by a 'device-lost' drill: every later run fails as on a lost GPU. */
  const faults = { deviceLost: false };
  let executor: OnnxExecutor | NativeExecutor;
  try {
    executor = init.executor.kind === 'native' ? await createNative(faults) : await OnnxExecutor.create(init.executor);
  } catch (err) {
    post({ kind: 'init-failed', error: errorToWire(err) });
    return;
  }
  const cancels = new Map<number, AbortController>();
  // Batch reports wait here for the next result or failure message, which every job in them ends with.
  const recording = init.batchRecording ?? 'off';
  /** Message id of each job in the scheduler, and the job of each id (to shed it). */
  const ids = new Map<JobInput, number>();
  const jobs = new Map<number, JobInput>();
  let batches: WireBatch[] = [];
  const onBatch = (e: BatchEvent) =>
    batches.push({
      stage: e.stage,
      startEpoch: epoch(e.start),
      endEpoch: epoch(e.end),
      rows: e.rows.length,
      members: recording === 'members' ? e.rows.map((r) => [ids.get(r.job) ?? 0, r.step] as const) : undefined,
      timing: e.timing,
      error: e.error,
    });
  const takeBatches = () => {
    if (batches.length === 0) return undefined;
    const out = batches;
    batches = [];
    return out;
  };
  const scheduler: Scheduler = new Scheduler(executor, systemClock, init.scheduler, {
    onStart: (started) => post({ kind: 'started', ids: started.map((j) => ids.get(j)!), load: scheduler.workerLoad() }),
    onBatch: recording === 'off' ? undefined : onBatch,
  });

  port.on('message', (msg: ToWorker) => {
    switch (msg.kind) {
      case 'submit': {
        const abort = new AbortController();
        cancels.set(msg.id, abort);
        if (msg.responsePathMs !== undefined) scheduler.load.responded(msg.responsePathMs);
        const { receivedAtEpoch, deadlineEpoch, ...wire } = msg.job;
        const job: JobInput = { ...wire, receivedAt: local(receivedAtEpoch), deadline: local(deadlineEpoch), signal: abort.signal };
        ids.set(job, msg.id);
        jobs.set(msg.id, job);
        scheduler
          .submit(job, msg.moreComing)
          .then(
            (result) => post({ kind: 'result', id: msg.id, result, batches: takeBatches(), load: scheduler.workerLoad() }, transferables(result)),
            (err) => post({ kind: 'failed', id: msg.id, error: errorToWire(err), batches: takeBatches(), load: scheduler.workerLoad() }),
          )
          .finally(() => {
            cancels.delete(msg.id);
            ids.delete(job);
            jobs.delete(msg.id);
          });
        return;
      }
      case 'cancel':
        cancels.get(msg.id)?.abort();
        return;
      case 'shed': {
        const job = jobs.get(msg.id);
        if (job) scheduler.shed(job, new OverloadedError('shadow request shed to admit a primary request', 'shadow_shed'));
        return;
      }
      case 'stats':
        post({
          kind: 'stats',
          id: msg.id,
          stats: { ...scheduler.stats(), cost: { vlm: scheduler.costModel.table('vlm'), step: scheduler.costModel.table('step') } },
        });
        return;
      case 'drain':
        void scheduler.drain().then(() => post({ kind: 'done', id: msg.id }));
        return;
      case 'close':
        void scheduler.close().then(() => post({ kind: 'done', id: msg.id }));
        return;
      case 'fault':
        faults.deviceLost = true;
        return;
      case 'crash':
        setImmediate(() => {
          throw new Error(msg.reason);
        });
        return;
    }
  });
  post({ kind: 'ready', graphs: executor.graphs, notes: executor instanceof NativeExecutor ? executor.notes : [] });
}

/**
 * The native executor over the addon (wrapped for the fault injection of tests and drills). A lost device ends the
 * thread at once, after telling the main thread: the requests it held fail there as UNAVAILABLE, and the version is
 * FAILED rather than restarted on a device that cannot run it (model-runtime.ts).
 */
async function createNative(faults: { readonly deviceLost: boolean }): Promise<NativeExecutor> {
  const load = loadNativeOrt();
  if (!load.ok) throw new Error(`the native executor cannot run: missing ${load.missing}. To fix: ${load.fix}`);
  return NativeExecutor.create(init.executor, {
    ort: withFaults(load.ort, { run: () => (faults.deviceLost ? INJECTED_DEVICE_LOST : undefined) }),
    onDeviceLost(err) {
      post({ kind: 'fatal', reason: err.message });
      process.exit(1);
    },
  });
}

void main();
