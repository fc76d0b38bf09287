/** Worker thread of HealthProber (health-probe.ts): a Check every intervalMs until told to stop. */
import { parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { checkHealth, type ProbeInit, type ProbeReport } from './health-probe.js';

const init = workerData as ProbeInit;
const port = parentPort!;
// Its own connection, as a load balancer's health checker would have.
const client = new grpc.Client(init.address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
const latencies: number[] = [];
const failures: Record<string, number> = {};
let notServing = 0;
let outstanding = 0;

function probe(): void {
  outstanding++;
  checkHealth(client, init.timeoutMs).then(
    ({ status, ms }) => {
      outstanding--;
      latencies.push(ms);
      if (status !== 'SERVING') notServing++;
    },
    (err: grpc.ServiceError) => {
      outstanding--;
      const reason = grpc.status[err.code] ?? String(err.code);
      failures[reason] = (failures[reason] ?? 0) + 1;
    },
  );
}

let timer: NodeJS.Timeout | undefined;
/** Waits for the checks in flight (at most the probe timeout), then posts the report. */
async function stop(): Promise<void> {
  clearInterval(timer);
  const until = Date.now() + init.timeoutMs;
  while (outstanding > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  const report: ProbeReport = { latencies: Float64Array.from(latencies), failures, notServing };
  port.postMessage(report);
}

port.on('message', (msg: 'begin' | 'stop') => {
  if (msg === 'begin') timer = setInterval(probe, init.intervalMs);
  else void stop();
});

// Connect before the window opens so the first probe does not pay for the handshake.
void checkHealth(client, init.timeoutMs)
  .catch(() => undefined)
  .then(() => port.postMessage('ready'));
