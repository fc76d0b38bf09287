/**
 * Routing of a request to the version that serves it (docs/api.md PredictRequest.model): a pin
 * ("name@version") goes to that version; an unpinned request goes where the model's traffic split sends its
 * robot (or episode). The request holds a lease on the version's runtime for as long as it runs.
 */
import type { ModelRuntime } from '../engine/index.js';
import { UnavailableError } from '../errors/index.js';
import type { Assignment, ExperimentBook } from '../experiment/index.js';
import { parseModelRef, type Lease, type ModelRegistry } from '../model/index.js';

export interface Routed {
  readonly assignment: Assignment;
  readonly lease: Lease<ModelRuntime>;
}

export class Router {
  constructor(
    private readonly registry: ModelRegistry<ModelRuntime>,
    private readonly book: ExperimentBook,
  ) {}

  /** The version for a request's model field; the caller releases the lease when the request is done. */
  route(modelField: string, robotId: string, episodeId: string): Routed {
    const ref = parseModelRef(modelField);
    const model = this.registry.modelName(ref);
    if (ref.version !== undefined) {
      return { assignment: this.book.pinned(model, ref.version), lease: this.registry.acquire(model, ref.version) };
    }
    const assignment = this.book.assign(model, this.registry.readyVersions(model), robotId, episodeId);
    if (!assignment) {
      const states = this.registry
        .list()
        .filter((e) => e.name === model)
        .map((e) => `${e.version} ${e.state}${e.reason ? ` (${e.reason})` : ''}`)
        .join(', ');
      throw new UnavailableError(`no version of model ${model} is READY (${states}); retry later`);
    }
    return { assignment, lease: this.registry.acquire(model, assignment.version) };
  }

  /** Another request on an assignment made before (a StreamPredict stream keeps its version). */
  again(assignment: Assignment): Routed {
    return { assignment, lease: this.registry.acquire(assignment.model, assignment.version) };
  }
}
