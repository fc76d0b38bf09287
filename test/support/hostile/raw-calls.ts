/**
 * Calls with identity serializers: the bytes given are exactly the message bytes on the wire, whatever they
 * hold. Every call has a deadline, so a server that never answers shows up as DEADLINE_EXCEEDED, not a hang.
 */
import * as grpc from '@grpc/grpc-js';

export interface CallOutcome {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata: grpc.Metadata | undefined;
  /** Response messages, undecoded. */
  readonly responses: readonly Buffer[];
  readonly ms: number;
}

const identity = (b: Buffer): Buffer => b;

/**
 * What a client may get for a hostile request: an answer, or a refusal it can act on. Anything else (INTERNAL,
 * UNKNOWN, UNAVAILABLE from a dropped connection, DEADLINE_EXCEEDED from a hang) is a server bug.
 */
export const ACCEPTABLE_CODES: ReadonlySet<grpc.status> = new Set([grpc.status.OK, grpc.status.INVALID_ARGUMENT, grpc.status.NOT_FOUND]);

/**
 * Shedding the server decided on under load (docs/api.md: RESOURCE_EXHAUSTED when a queue is full,
 * DEADLINE_EXCEEDED when the deadline cannot be met), as opposed to a deadline the client saw pass with no
 * answer, which grpc-js reports as "Deadline exceeded after ...".
 */
export function isServerShedding(out: Pick<CallOutcome, 'code' | 'details'>): boolean {
  if (out.code === grpc.status.RESOURCE_EXHAUSTED) return true;
  return out.code === grpc.status.DEADLINE_EXCEEDED && !out.details.startsWith('Deadline exceeded');
}

/** grpc.health.v1's streaming check. */
export const HEALTH_WATCH_PATH = '/grpc.health.v1.Health/Watch';

export const POLICY_PATHS = {
  predict: '/dust.serving.v1.PolicyService/Predict',
  streamPredict: '/dust.serving.v1.PolicyService/StreamPredict',
  listModels: '/dust.serving.v1.PolicyService/ListModels',
  reportOutcome: '/dust.serving.v1.PolicyService/ReportOutcome',
} as const;

export function rawUnary(client: grpc.Client, path: string, message: Buffer, deadlineMs: number): Promise<CallOutcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, message, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res?: Buffer) => {
      const ms = performance.now() - t0;
      if (err) resolve({ code: err.code, details: err.details, metadata: err.metadata, responses: [], ms });
      else resolve({ code: grpc.status.OK, details: '', metadata: undefined, responses: [res!], ms });
    });
  });
}

/** Writes all messages on one stream, half-closes, and collects what comes back until the status. */
export function rawStream(client: grpc.Client, path: string, messages: readonly Buffer[], deadlineMs: number): Promise<CallOutcome> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(path, identity, identity, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
    const responses: Buffer[] = [];
    call.on('data', (b: Buffer) => responses.push(b));
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details, metadata: s.metadata, responses, ms: performance.now() - t0 }));
    for (const m of messages) call.write(m);
    call.end();
  });
}
