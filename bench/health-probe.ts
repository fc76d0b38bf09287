/**
 * grpc.health.v1 Check: one call (start-up readiness), and a prober that checks every few milliseconds
 * during a measured window, as a load balancer would. The prober runs in its own worker thread with its own
 * connection, so its latencies are the server's answer time, not the time the robots' event loop took to
 * notice the answer.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { summarize, type LatencySummary } from './stats.js';

/** The interval health targets 4e and 10b are measured at (targets.ts). */
export const DEFAULT_PROBE_INTERVAL_MS = 20;
export const DEFAULT_PROBE_TIMEOUT_MS = 1000;

const check = healthService.Check;
const decodeCheck = check.responseDeserialize as (b: Buffer) => { status: string };

/** One Check of the whole server (service ""). */
export function checkHealth(client: grpc.Client, timeoutMs: number): Promise<{ status: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      check.path,
      check.requestSerialize,
      decodeCheck,
      { service: '' },
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, res?: { status: string }) => (err ? reject(err) : resolve({ status: res!.status, ms: performance.now() - t0 })),
    );
  });
}

export interface ProbeInit {
  readonly address: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

export interface ProbeReport {
  readonly latencies: Float64Array;
  /** Checks that failed or timed out, by reason. */
  readonly failures: Record<string, number>;
  /** Checks that answered something other than SERVING. */
  readonly notServing: number;
}

export interface HealthSummary extends LatencySummary {
  readonly intervalMs: number;
  readonly failures: Record<string, number>;
  readonly notServing: number;
}

export function summarizeProbes(report: ProbeReport, intervalMs: number): HealthSummary {
  return { ...summarize(Array.from(report.latencies)), intervalMs, failures: report.failures, notServing: report.notServing };
}

/** A prober connected and waiting: begin() starts the checks, stop() returns what they measured. */
export class HealthProber {
  private constructor(private readonly worker: Worker) {}

  begin(): void {
    this.worker.postMessage('begin');
  }

  static async start(init: ProbeInit): Promise<HealthProber> {
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'health-probe-worker.js');
    const worker = new Worker(script, { workerData: init });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    return new HealthProber(worker);
  }

  async stop(): Promise<ProbeReport> {
    const report = new Promise<ProbeReport>((resolve, reject) => {
      this.worker.once('message', (r: ProbeReport) => resolve(r));
      this.worker.once('error', reject);
    });
    this.worker.postMessage('stop');
    const r = await report;
    await this.worker.terminate();
    return r;
  }
}
