/**
 * grpc.health.v1.Health (https://github.com/grpc/grpc/blob/master/doc/health-checking.md): Check, Watch and
 * List over a map of service statuses. Written here rather than taken from grpc-health-check 2.1, whose
 * Watch keeps an entry for every service name it was ever asked about (an empty set once the watch ends),
 * so a client watching unique names grows the server's memory without bound; here a name is forgotten when
 * its last watch ends. The proto and its service definition still come from grpc-health-check.
 */
import * as grpc from '@grpc/grpc-js';
import { service as healthDefinition } from 'grpc-health-check';
import { quote } from '../errors/index.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';
type WatchedStatus = ServingStatus | 'SERVICE_UNKNOWN';
type Watcher = (status: WatchedStatus) => void;

/** List answers RESOURCE_EXHAUSTED above this many services, as the protocol allows. */
export const MAX_LISTED_SERVICES = 100;

interface CheckRequest {
  readonly service: string;
}
interface CheckResponse {
  readonly status: WatchedStatus;
}

export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<Watcher>>();

  constructor(initial: Readonly<Record<string, ServingStatus>> = {}) {
    for (const [name, status] of Object.entries(initial)) this.statuses.set(name, status);
  }

  setStatus(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const watcher of this.watchers.get(service) ?? []) watcher(status);
  }

  /** Service names with at least one open Watch. */
  get watchedServices(): number {
    return this.watchers.size;
  }

  private watch(service: string, watcher: Watcher): () => void {
    let set = this.watchers.get(service);
    if (!set) this.watchers.set(service, (set = new Set()));
    set.add(watcher);
    return () => {
      set.delete(watcher);
      if (set.size === 0 && this.watchers.get(service) === set) this.watchers.delete(service);
    };
  }

  addToServer(server: Pick<grpc.Server, 'addService'>): void {
    server.addService(healthDefinition, {
      Check: (call: grpc.ServerUnaryCall<CheckRequest, CheckResponse>, callback: grpc.sendUnaryData<CheckResponse>) => {
        const status = this.statuses.get(call.request.service);
        if (status) callback(null, { status });
        else callback({ code: grpc.status.NOT_FOUND, details: `health status unknown for service ${quote(call.request.service)}` });
      },
      Watch: (call: grpc.ServerWritableStream<CheckRequest, CheckResponse>) => {
        const { service } = call.request;
        const stop = this.watch(service, (status) => call.write({ status }));
        call.on('cancelled', stop);
        call.write({ status: this.statuses.get(service) ?? 'SERVICE_UNKNOWN' });
      },
      List: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        if (this.statuses.size > MAX_LISTED_SERVICES) {
          callback({ code: grpc.status.RESOURCE_EXHAUSTED, details: `more than ${MAX_LISTED_SERVICES} services to list` });
          return;
        }
        callback(null, { statuses: Object.fromEntries([...this.statuses].map(([name, status]) => [name, { status }])) });
      },
    });
  }
}
