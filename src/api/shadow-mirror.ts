/**
 * Shadow traffic (docs/experiments.md): a fraction of the primary's requests is run again on a shadow version,
 * after the primary has answered, with the primary's seed and step counts, so that the two chunks differ only
 * by the model. Only the primary's actions ever reach the robot; the shadow's latency and its action
 * divergence from the primary go to the experiment.
 *
 * The shadow ranks below primary traffic everywhere: at most `maxInflight` mirrored requests run at once
 * (more are shed here, before any work), and in the shadow version's scheduler a shadow job is admitted only
 * while no primary request waits, is picked after primary rows, and is evicted first from a full queue.
 */
import { runRequest, validateRequest, type ModelRuntime, type PredictInput, type PredictOutput } from '../engine/index.js';
import { actionDivergence, type Assignment, type ExperimentBook, type ExperimentLogger } from '../experiment/index.js';
import type { ModelRegistry } from '../model/index.js';

/** How long a mirrored request may take before it is dropped. @default 10000 */
export const DEFAULT_SHADOW_DEADLINE_MS = 10_000;

export interface ShadowMirrorOptions {
  /** Mirrored requests in flight at once; 0 turns shadow traffic off. */
  readonly maxInflight: number;
  /** @default DEFAULT_SHADOW_DEADLINE_MS */
  readonly deadlineMs?: number;
}

export class ShadowMirror {
  private inflight = 0;
  private readonly deadlineMs: number;

  constructor(
    private readonly registry: ModelRegistry<ModelRuntime>,
    private readonly book: ExperimentBook,
    private readonly options: ShadowMirrorOptions,
    private readonly log: Pick<ExperimentLogger, 'info'> & { debug(obj: object, msg: string): void },
  ) {
    this.deadlineMs = options.deadlineMs ?? DEFAULT_SHADOW_DEADLINE_MS;
  }

  /** Mirrored requests running now. */
  get running(): number {
    return this.inflight;
  }

  /**
   * Called once the primary has answered; returns at once. Resolves when the mirrored request (if any) is
   * done, for tests; serving code does not wait for it.
   */
  mirror(primary: Assignment, input: PredictInput, output: PredictOutput): Promise<void> {
    if (this.options.maxInflight <= 0) return Promise.resolve();
    const version = this.book.shadowFor(primary, this.registry.readyVersions(primary.model));
    if (version === undefined) return Promise.resolve();
    if (this.inflight >= this.options.maxInflight) {
      this.book.shadowShed(primary.model, version);
      return Promise.resolve();
    }
    let lease;
    try {
      lease = this.registry.acquire(primary.model, version);
    } catch {
      this.book.shadowShed(primary.model, version);
      return Promise.resolve();
    }
    this.inflight++;
    const receivedAt = performance.now();
    const shadowInput: PredictInput = {
      ...input,
      requestId: `${output.requestId}/shadow`,
      // No episode: the shadow must not feed the shadow version's world-model surprise memory.
      episodeId: '',
      seed: output.sampling.seed,
      actionSteps: output.sampling.actionSteps,
      visionSteps: output.sampling.visionSteps,
      latencyBudgetMs: 0,
      strictBudget: false,
      returnFutureEmbedding: false,
    };
    const held = lease;
    return (
      Promise.resolve()
        // The shadow version may have another manifest: the request is checked against it like any other.
        .then(() =>
          runRequest(held.handle, validateRequest(held.handle, shadowInput), { receivedAt, deadline: receivedAt + this.deadlineMs, priority: 'shadow' }),
        )
        .then(
          (shadow) => {
            const rows = output.actionShape[0];
            const divergence = actionDivergence(
              { values: output.normalizedActions, rows, stride: output.normalizedActions.length / rows },
              { values: shadow.normalizedActions, rows: shadow.actionShape[0], stride: shadow.normalizedActions.length / shadow.actionShape[0] },
              Math.min(output.actionShape[1], shadow.actionShape[1]),
            );
            this.book.shadowServed(primary.model, version, performance.now() - receivedAt, divergence);
          },
          (err: Error) => {
            this.book.shadowShed(primary.model, version);
            this.log.debug({ model: primary.model, version, err: err.message }, 'shadow request dropped');
          },
        )
        .finally(() => {
          this.inflight--;
          held.release();
        })
    );
  }
}
