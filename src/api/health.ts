/**
 * grpc.health.v1.Health for the server ("" and the PolicyService name) and for each model: "<name>" is
 * SERVING while any of its versions is READY, "<name>@<version>" follows that version's state.
 */
import type { ModelRegistry, ModelVersionEntry } from '../model/index.js';
import { HealthService } from './health-service.js';
import { POLICY_SERVICE_NAME } from './proto.js';

export class ServingHealth {
  readonly service = new HealthService({ '': 'NOT_SERVING', [POLICY_SERVICE_NAME]: 'NOT_SERVING' });
  private draining = false;
  private started = false;

  constructor(private readonly registry: ModelRegistry<unknown>) {
    registry.onStateChange((e) => this.onModel(e));
  }

  private onModel(entry: ModelVersionEntry<unknown>): void {
    if (this.draining) return;
    this.service.setStatus(`${entry.name}@${entry.version}`, entry.state === 'READY' ? 'SERVING' : 'NOT_SERVING');
    const anyReady = this.registry.list().some((e) => e.name === entry.name && e.state === 'READY');
    this.service.setStatus(entry.name, anyReady ? 'SERVING' : 'NOT_SERVING');
    // After start-up the server follows its versions (e.g. NOT_SERVING while its only one replaces a dead worker).
    if (this.started) this.markStarted();
  }

  /** After start-up: the server serves while at least one model version is READY. */
  markStarted(): void {
    this.started = true;
    const ready = this.registry.list().some((e) => e.state === 'READY');
    for (const s of ['', POLICY_SERVICE_NAME]) this.service.setStatus(s, ready ? 'SERVING' : 'NOT_SERVING');
  }

  /** Shutdown: everything NOT_SERVING so load balancers stop sending work. */
  markDraining(): void {
    this.draining = true;
    for (const s of ['', POLICY_SERVICE_NAME]) this.service.setStatus(s, 'NOT_SERVING');
    for (const e of this.registry.list()) {
      this.service.setStatus(e.name, 'NOT_SERVING');
      this.service.setStatus(`${e.name}@${e.version}`, 'NOT_SERVING');
    }
  }
}
