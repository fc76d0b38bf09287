/**
 * A robot fleet for failover tests: robots calling Predict and robots holding StreamPredict sessions, all through
 * one DustClient, counting what was served and what failed while the test takes replicas away.
 */
import type { DustClient, PredictRequestInit, PredictResult, PredictStream } from '@dust-serve/client';
import { eventually } from './eventually.js';
import { jpeg } from './harness.js';

/** One robot's observation for dust-tiny (64x64 JPEGs, the franka_fr3 state), in the client's shape. */
export async function observation(robotId: string, episodeId: string): Promise<PredictRequestInit> {
  return {
    robotId,
    episodeId,
    embodiment: 'franka_fr3',
    images: [
      { camera: 'front', encoding: 'jpeg', data: await jpeg(64, 64, [200, 40, 40]) },
      { camera: 'wrist', encoding: 'jpeg', data: await jpeg(64, 64, [40, 40, 200]) },
    ],
    state: Array.from({ length: 8 }, (_, i) => 0.1 * i),
    instruction: 'push the red block left',
    sampling: { actionSteps: 4, visionSteps: 8 },
  };
}

/** A fleet's steps take seconds on a loaded machine: wait for them up to 30 s. */
const until = (what: string, done: () => boolean | Promise<boolean>) => eventually(done, { what, timeoutMs: 30_000 });

export interface FailoverSteps {
  /** Takes the first replica away gracefully (SIGTERM: it drains). */
  drain(): unknown;
  /** Takes a second one away abruptly (SIGKILL). */
  kill(): unknown;
}

export interface FleetReport {
  /** One line per failed robot request; a fleet that lost nothing reports none. */
  failures: string[];
  /** Requests answered. */
  served: number;
  /** Requests answered, per model version that answered them. */
  servedByVersion: Map<number, number>;
  /** Each robot's one episode and the version that served it (a robot whose episode changed version fails). */
  episodes: Array<{ robotId: string; episodeId: string; version: number }>;
  /** Per StreamPredict session: how often it re-opened on another replica. */
  resumed: number[];
}

const UNARY_ROBOTS = 4;
const STREAM_ROBOTS = 6;
const DEADLINE_MS = 20_000;

/**
 * Runs the fleet, drains one replica and kills another while it runs, and stops once every robot has been
 * served five more times after the kill. Sessions open only after the unary robots have been served a while,
 * so that the channel is connected to every replica and spreads them over all.
 */
export async function runFleetThroughFailover(client: DustClient, steps: FailoverSteps): Promise<FleetReport> {
  const failures: string[] = [];
  const served = new Map<string, number>();
  const streams: PredictStream[] = [];
  let stop = false;
  const servedByVersion = new Map<number, number>();
  const episodes = new Map<string, { robotId: string; episodeId: string; version: number }>();
  const count = (robot: string, results: readonly PredictResult[]) => {
    served.set(robot, (served.get(robot) ?? 0) + results.length);
    for (const r of results) {
      servedByVersion.set(r.modelVersion, (servedByVersion.get(r.modelVersion) ?? 0) + 1);
      const episode = episodes.get(robot) ?? { robotId: robot, episodeId: `${robot}-episode`, version: r.modelVersion };
      if (episode.version !== r.modelVersion) failures.push(`${robot}: its episode moved from version ${episode.version} to ${r.modelVersion}`);
      episodes.set(robot, episode);
    }
  };
  const total = () => [...served.values()].reduce((a, b) => a + b, 0);

  const unaryRobot = async (robot: string): Promise<void> => {
    const obs = await observation(robot, `${robot}-episode`);
    while (!stop && failures.length === 0) {
      await client.predict(obs, { deadlineMs: DEADLINE_MS }).then(
        (r) => count(robot, [r]),
        (err: Error) => void failures.push(`${robot} Predict: ${err.message}`),
      );
    }
  };
  const streamRobot = async (robot: string): Promise<void> => {
    const obs = await observation(robot, `${robot}-episode`);
    const stream = client.stream({ deadlineMs: 10 * 60_000 });
    streams.push(stream);
    while (!stop && failures.length === 0) {
      // Two observations in flight, as a robot that sends its next one before the last chunk has arrived.
      await Promise.all([stream.send(obs), stream.send(obs)]).then(
        (rs) => count(robot, rs),
        (err: Error) => void failures.push(`${robot} StreamPredict: ${err.message}`),
      );
    }
    stream.end();
  };

  const robots = Array.from({ length: UNARY_ROBOTS }, (_, i) => unaryRobot(`unary-${i}`));
  const going = () => failures.length === 0;
  try {
    await until('the unary robots to be served', () => !going() || total() >= 30);
    robots.push(...Array.from({ length: STREAM_ROBOTS }, (_, i) => streamRobot(`stream-${i}`)));
    await until('every robot to be served', () => !going() || (served.size === UNARY_ROBOTS + STREAM_ROBOTS && total() >= 90));
    await steps.drain();
    await until('requests while the replica drains', () => !going() || total() >= 120);
    await steps.kill();
    const atKill = new Map(served);
    await until('every robot to be served 5 more times', () => !going() || [...served].every(([robot, n]) => n >= atKill.get(robot)! + 5));
  } finally {
    stop = true;
    await Promise.all(robots);
  }
  return { failures, served: total(), servedByVersion, episodes: [...episodes.values()], resumed: streams.map((s) => s.resumed) };
}

/** Per version, what an experiment counted (GetExperiment), or what a fleet's robots got and reported. */
export interface VersionCounts {
  version: number;
  requests: number;
  robots: number;
  episodesServed: number;
  episodes: number;
  successes: number;
}

/**
 * Splits `model`'s unpinned traffic 50/50 between versions 1 and 2 (through `admin`, an admin-capable client)
 * and waits until `replicas * 2` ListModels in a row show it, so that every replica routes by it.
 */
export async function splitEvenly(admin: DustClient, client: DustClient, model: string, replicas: number, salt: string): Promise<number> {
  const split = await admin.setTrafficSplit({
    model,
    weights: [
      { version: 1, weight: 1 },
      { version: 2, weight: 1 },
    ],
    controlVersion: 1,
    salt,
  });
  let agreeing = 0;
  await until('every replica to route by the split', async () => {
    const weights = (await client.listModels()).models.map((m) => m.trafficWeight);
    agreeing = weights.length === 2 && weights.every((w) => w === 0.5) ? agreeing + 1 : 0;
    return agreeing >= 2 * replicas;
  });
  return split.experimentId;
}

/**
 * Every robot of the fleet reports its episode's outcome (each must be credited to the version that served it,
 * and counted); returns what the experiment should then hold per version.
 */
export async function reportOutcomes(client: DustClient, model: string, report: FleetReport): Promise<VersionCounts[]> {
  const success = (robotId: string) => /[025]$/.test(robotId);
  for (const e of report.episodes) {
    const credit = await client.reportOutcome({ robotId: e.robotId, episodeId: e.episodeId, success: success(e.robotId) });
    if (credit.modelName !== model || credit.modelVersion !== e.version || !credit.counted) {
      throw new Error(`${e.robotId}'s outcome was credited ${JSON.stringify(credit)}, not counted for version ${e.version}`);
    }
  }
  return [...report.servedByVersion.keys()].sort().map((version) => {
    const mine = report.episodes.filter((e) => e.version === version);
    const n = mine.length;
    return {
      version,
      requests: report.servedByVersion.get(version)!,
      robots: n,
      episodesServed: n,
      episodes: n,
      successes: mine.filter((e) => success(e.robotId)).length,
    };
  });
}

/** The experiment's counts per version, in the shape reportOutcomes returns. */
export function countsOf(experiment: { variants: readonly VersionCounts[] }): VersionCounts[] {
  return experiment.variants.map(({ version, requests, robots, episodesServed, episodes, successes }) => ({
    version,
    requests,
    robots,
    episodesServed,
    episodes,
    successes,
  }));
}
