/**
 * World-model surprise (docs/api.md, PredictResponse.world_model_surprise): 1 - cosine(the episode's
 * previous prediction of its future embedding, this observation's embedding). The previous prediction is
 * kept per episode in a bounded LRU, so abandoned episodes cost nothing after they age out.
 *
 * An episode is a robot's: episode ids are chosen by clients and need not be unique across robots, so the
 * memory is keyed by (robot, episode) within each model version's tracker. Otherwise one robot sending a
 * request with another's episode id would replace that robot's prediction (its next surprise would score
 * against a foreign frame) and get a surprise on its own first request.
 *
 * The predicted future is the embedding of o_{t+k}, the frame after the whole chunk of k actions ran (paper
 * section 3, "World-modeling"). A robot that executed only part of the chunk before asking again (its
 * PredictRequest.steps_executed, when it sets one, is not the horizon) sends a frame the prediction was not
 * about, so that request gets no surprise; its own prediction is still remembered for the next request.
 */

/** Episodes remembered per model version. */
export const DEFAULT_SURPRISE_EPISODES = 10_000;

export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const denom = Math.sqrt(na) * Math.sqrt(nb);
  return denom > 0 ? dot / denom : 0;
}

/**
 * One key per (robot, episode). Length-prefixed rather than joined by a separator: robot_id and episode_id may
 * hold any character (only request_id is restricted), so no separator keeps two pairs from meeting.
 */
export function episodeKey(robotId: string, episodeId: string): string {
  return `${robotId.length}:${robotId}${episodeId}`;
}

export class SurpriseTracker {
  /** Keyed by episodeKey(robot, episode). */
  private readonly predictions = new Map<string, Float32Array>();

  constructor(private readonly capacity = DEFAULT_SURPRISE_EPISODES) {}

  /**
   * Scores this observation against the episode's last prediction (undefined on its first request, and when
   * `comparable` is false: the observation is not the frame that prediction was about), then remembers this
   * request's predicted future for the next one.
   */
  observe(robotId: string, episodeId: string, observation: Float32Array, predictedFuture: Float32Array, comparable = true): number | undefined {
    const key = episodeKey(robotId, episodeId);
    const previous = this.predictions.get(key);
    this.predictions.delete(key);
    this.predictions.set(key, predictedFuture);
    if (this.predictions.size > this.capacity) {
      this.predictions.delete(this.predictions.keys().next().value!);
    }
    return previous && comparable ? 1 - cosineSimilarity(previous, observation) : undefined;
  }
}
