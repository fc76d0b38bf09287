/**
 * Crediting an episode's outcome (docs/api.md, ReportOutcome): the one path of the gRPC ReportOutcome and the
 * openpi door's episode_end, so that both answer the same refusals with the same messages.
 */
import { InvalidArgumentError, NotFoundError, quote } from '../errors/index.js';
import type { ExperimentBook } from '../experiment/index.js';

export type Credit = NonNullable<Awaited<ReturnType<ExperimentBook['outcome']>>>;

/**
 * Credits the outcome to the version that served the episode's first request.
 * @throws InvalidArgumentError without a robot or episode id; NotFoundError for an episode this server never served.
 */
export async function creditOutcome(book: Pick<ExperimentBook, 'outcome'>, robotId: string, episodeId: string, success: boolean): Promise<Credit> {
  if (!robotId || !episodeId) throw new InvalidArgumentError('robot_id and episode_id are required to credit an outcome');
  const credit = await book.outcome(robotId, episodeId, success);
  if (credit) return credit;
  throw new NotFoundError(
    `no request of episode ${quote(episodeId)} from robot ${quote(robotId)} was served; report outcomes with the episode_id sent in PredictRequest`,
  );
}
