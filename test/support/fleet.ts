/**
 * A robot fleet for failover tests: robots calling Predict and robots holding StreamPredict sessions, all through
 * one DustClient, counting what was served and what failed while the test takes replicas away.
 */
import type { DustClient, PredictRequestInit, PredictStream } from '../../src/client/index.js';
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

export async function until(what: string, done: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

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
  const count = (robot: string, n = 1) => served.set(robot, (served.get(robot) ?? 0) + n);
  const total = () => [...served.values()].reduce((a, b) => a + b, 0);

  const unaryRobot = async (robot: string): Promise<void> => {
    const obs = await observation(robot, `${robot}-episode`);
    while (!stop && failures.length === 0) {
      await client.predict(obs, { deadlineMs: DEADLINE_MS }).then(
        () => count(robot),
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
        () => count(robot, 2),
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
  return { failures, served: total(), resumed: streams.map((s) => s.resumed) };
}
