/**
 * One simulated robot in closed loop with the server. Its world ticks at the control rate in wall-clock time;
 * each tick applies the next action of the current chunk (or holds still when it has none). After `execute`
 * actions of a chunk it asks for the next one with the current observation and keeps executing the rest of
 * the old chunk while the request is in flight, as a real robot must. When the answer arrives, the actions
 * for ticks that passed meanwhile are stale and skipped, so the server's latency costs the robot exactly
 * what it would cost on hardware (with clock 'lockstep' the world instead waits for every answer). The episode ends when the named ball is in the zone (success) or after
 * MAX_EPISODE_STEPS; the outcome goes to ReportOutcome with the episode's id.
 *
 * With a chunking mode other than 'none' (real-time chunking, chunk-metrics.ts), the robot sends the rest of the
 * chunk it is executing as the committed prefix with the injected delay d, and switches to the new chunk exactly d
 * ticks after the observation (lockstep: the world waits there for a late answer; realtime: it ticks on, and the
 * switch comes when the answer does); each switch's boundary discontinuity is recorded. With `estimateDelay` the
 * robot does not know d: it talks StreamPredict (one stream per episode), sends its control period instead, and
 * switches at the d the server assumed from the stream's measured latency, or when the answer comes if that is later.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { actionRows, DustClient, DustClientError, type PredictRequestInit, type PredictResult } from '@dust-serve/client';
import type { Condition } from './conditions.js';
import { CAMERAS, CONTROL_DT, type EmbodimentName, MAX_EPISODE_STEPS, type PushEnv, sampleLayout } from '@dust-serve/sim-push';
import { boundaryDiscontinuity, committedPrefix, meanJerk, serverMethod, switchStep, type ChunkingMode, type CommitMode } from './chunk-metrics.js';

export interface EpisodeSpec {
  readonly condition: Condition;
  readonly seed: number;
  readonly embodiment: EmbodimentName;
}

export interface EpisodeResult {
  readonly conditionId: string;
  readonly seed: number;
  readonly embodiment: EmbodimentName;
  readonly robotId: string;
  readonly episodeId: string;
  readonly success: boolean;
  /** Control steps until success or the time limit. */
  readonly steps: number;
  /** Distance from the named ball to the zone's edge at the end (0 on success). */
  readonly finalDistance: number;
  readonly requests: number;
  readonly latenciesMs: number[];
  readonly visionStepsUsed: number[];
  readonly budgetMet: number;
  readonly servedVersions: number[];
  readonly surprises: number[];
  /** Actions of answered chunks dropped because their tick had passed while the request was in flight. */
  readonly staleActions: number;
  /** Ticks with no action to execute (waiting for the first chunk, or a chunk ran out). */
  readonly holdTicks: number;
  readonly errors: string[];
  /** What ReportOutcome answered: the version the server credited, or the error. */
  readonly credited: { readonly model: string; readonly version: number } | { readonly error: string };
  /** Ticks that started later than their schedule by more than a control period (the simulator fell behind). */
  readonly lateTicks: number;
  /** Per chunk switch with an old chunk to compare: ||a_new(k) - a_old(k)||, k the ticks from observation to switch. */
  readonly boundaryDiscontinuities: number[];
  /** Per switch from an old chunk: ||a_new(k) - the last executed action|| (defined where the above is not). */
  readonly switchSteps: number[];
  /** Ticks from observation to switch, per switch. */
  readonly switchDelays: number[];
  /** The delay d the server assumed for the switch's request (declared or estimated), per switch; -1 without a prefix. */
  readonly assumedDelays: number[];
  /** Mean jerk of the executed actions (chunk-metrics.ts meanJerk), per second cubed. */
  readonly jerk: number;
}

export interface PushRobotOptions {
  readonly index: number;
  readonly client: DustClient;
  readonly env: PushEnv;
  readonly model: string;
  readonly controlHz: number;
  /**
   * 'realtime': the world keeps ticking while a request is in flight (latency costs stale actions);
   * 'lockstep': the world waits for each answer, so success measures the policy alone, whatever the load.
   */
  readonly clock: 'realtime' | 'lockstep';
  readonly execute: number;
  readonly imageSize: number;
  readonly requestDeadlineMs: number;
  /** Pin the condition's version (name@version); false sends the bare model name (traffic split). */
  readonly pinVersion: boolean;
  /** Real-time chunking: 'none' sends no prefix and switches as soon as an answer is in. @default 'none' */
  readonly chunking?: ChunkingMode;
  /** The injected inference delay d in control steps (with a chunking mode). @default 0 */
  readonly delay?: number;
  /**
   * Send the control period instead of the delay, over a StreamPredict stream, so that the server estimates d from
   * the stream's latency (docs/api.md, "Real-time chunking"); needs a chunking mode, 'realtime' and commit 'rest'.
   * @default false
   */
  readonly estimateDelay?: boolean;
  /**
   * Declare d as the most ticks any of the last this many answers took to arrive (RTC's own rule; the clients'
   * RealtimeChunker delay window); needs a chunking mode, 'realtime' and commit 'rest'. @default 0 (off)
   */
  readonly delayWindow?: number;
  /** What the robot commits to (chunk-metrics.ts CommitMode). @default 'rest' */
  readonly commit?: CommitMode;
  /** The model's action horizon (the longest prefix). */
  readonly horizon?: number;
}

interface Pending {
  readonly sentAtStep: number;
  readonly sentAt: number;
  /** The chunk executing when the request was sent and its row for that tick (the committed prefix's origin). */
  readonly old: Float32Array[] | undefined;
  readonly oldNext: number;
  result?: PredictResult;
  done: boolean;
  /** Ticks from the observation to the first tick that saw the answer (delayWindow's measurement). */
  arrived?: number;
}

export class PushRobot {
  readonly robotId: string;

  constructor(private readonly o: PushRobotOptions) {
    this.robotId = `${o.env.embodiment.name}-robot-${o.index}`;
  }

  /** Frees the robot's MuJoCo world. */
  dispose(): void {
    this.o.env.dispose();
  }

  async runEpisode(spec: EpisodeSpec, signal?: AbortSignal): Promise<EpisodeResult> {
    const { env, client } = this.o;
    const c = spec.condition;
    env.reset(sampleLayout(spec.seed, spec.embodiment));
    const episodeId = `${c.id}/${spec.embodiment}/${spec.seed}`;
    const periodMs = 1000 / this.o.controlHz;
    const latencies: number[] = [];
    const visionSteps: number[] = [];
    const served: number[] = [];
    const surprises: number[] = [];
    const errors: string[] = [];
    let budgetMet = 0;
    let stale = 0;
    let holds = 0;
    let late = 0;
    let requests = 0;
    let chunk: Float32Array[] | undefined;
    let next = 0;
    let pending: Pending | undefined;
    let success = false;
    const mode = this.o.chunking ?? 'none';
    // The switch comes no earlier than d ticks after the observation; without a chunking mode, at once.
    const delay = mode === 'none' ? 0 : (this.o.delay ?? 0);
    const estimate = mode !== 'none' && this.o.estimateDelay === true;
    const window = mode === 'none' ? 0 : (this.o.delayWindow ?? 0);
    /** Ticks the latest answers took to arrive (the last `window` of them). */
    const arrivals: number[] = [];
    /** The d this episode's robot declares now: the injected delay, or the window's longest arrival. */
    const declared = () => (window > 0 ? Math.max(0, ...arrivals) : delay);
    // The server measures a stream's latency, not a unary call's: the estimating robot keeps one stream per episode.
    const stream = estimate ? client.stream({ deadlineMs: this.o.requestDeadlineMs + 2 * MAX_EPISODE_STEPS * periodMs }) : undefined;
    const executed: Float32Array[] = [];
    const discontinuities: number[] = [];
    const switchSteps: number[] = [];
    const switchDelays: number[] = [];
    const assumedDelays: number[] = [];
    /** Ticks after its observation at which an answered request's chunk may take over: the d the server assumed. */
    const switchAfter = (p: Pending): number => (estimate || window > 0 ? (p.result?.chunking?.delaySteps ?? 0) : delay);

    const send = () => {
      const obs = env.observe(this.o.imageSize);
      const p: Pending = { sentAtStep: env.steps, sentAt: performance.now(), old: chunk, oldNext: next, done: false };
      pending = p;
      requests++;
      const committed = mode !== 'none' && chunk ? committedPrefix(chunk, next, this.o.horizon ?? chunk.length, declared(), this.o.commit) : undefined;
      const prefix =
        committed && mode !== 'none'
          ? estimate
            ? { actions: committed.actions, controlPeriodMs: periodMs, method: serverMethod(mode) }
            : { ...committed, method: serverMethod(mode) }
          : undefined;
      const init: PredictRequestInit = {
        robotId: this.robotId,
        embodiment: spec.embodiment,
        images: CAMERAS.map((camera) => ({
          camera,
          encoding: 'raw_rgb8' as const,
          data: obs.frames[camera],
          width: this.o.imageSize,
          height: this.o.imageSize,
        })),
        state: obs.state,
        instruction: env.layout.instruction,
        sampling: {
          actionSteps: c.actionSteps,
          visionSteps: c.visionSteps,
          latencyBudgetMs: c.budgetMs || undefined,
          // Common random numbers: every condition draws the same noise for the same layout and request.
          seed: spec.seed * 1000 + requests,
        },
        model: this.o.pinVersion ? `${this.o.model}@${c.version}` : this.o.model,
        episodeId,
        stepsExecuted: chunk ? next : 0,
        ...(prefix ? { prefix } : {}),
      };
      (stream ? stream.send(init) : client.predict(init, { deadlineMs: this.o.requestDeadlineMs })).then(
        (r) => {
          p.result = r;
          p.done = true;
          latencies.push(performance.now() - p.sentAt);
          visionSteps.push(r.sampling.visionSteps);
          if (r.sampling.budgetMet) budgetMet++;
          served.push(r.modelVersion);
          if (r.worldModelSurprise !== undefined) surprises.push(r.worldModelSurprise);
        },
        (err: unknown) => {
          p.done = true;
          errors.push(err instanceof DustClientError ? err.codeName : String(err));
        },
      );
    };

    let due = performance.now();
    while (!signal?.aborted) {
      if (pending?.done && pending.arrived === undefined) {
        pending.arrived = env.steps - pending.sentAtStep;
        arrivals.push(pending.arrived);
        if (arrivals.length > window) arrivals.shift();
      }
      if (pending?.done && env.steps - pending.sentAtStep >= switchAfter(pending)) {
        const p = pending;
        pending = undefined;
        if (p.result) {
          const fresh = actionRows(p.result);
          // The chunk's first action was meant for the tick at which the observation was taken.
          const k = env.steps - p.sentAtStep;
          if (p.old) {
            const jump = boundaryDiscontinuity(fresh, p.old, p.oldNext, k);
            if (jump !== undefined) discontinuities.push(jump);
            const step = switchStep(fresh, k, executed.at(-1));
            if (step !== undefined) switchSteps.push(step);
            switchDelays.push(k);
            assumedDelays.push(p.result.chunking?.delaySteps ?? -1);
          }
          chunk = fresh;
          next = k;
          // With a prefix, the first d rows repeat what the robot executed meanwhile: not stale, committed.
          stale += Math.min(Math.max(0, next - switchAfter(p)), chunk.length);
        }
      }
      if (!pending && (!chunk || next >= this.o.execute)) send();
      if (this.o.clock === 'lockstep' && pending && env.steps - pending.sentAtStep >= delay) {
        while (!pending.done) await sleep(1);
        due = performance.now();
        continue;
      }

      if (chunk && next < chunk.length) {
        executed.push(chunk[next]);
        env.step(chunk[next++]);
      } else {
        holds++;
        const hold = env.holdAction();
        executed.push(hold);
        env.step(hold);
      }
      if (env.succeeded()) {
        success = true;
        break;
      }
      if (env.steps >= MAX_EPISODE_STEPS) break;

      due += periodMs;
      const wait = due - performance.now();
      if (wait < -periodMs) late++;
      await sleep(Math.max(0, wait));
    }

    // Let a request still in flight finish, so that everything the episode sent is settled before it is scored.
    while (pending && !pending.done) await sleep(1);
    stream?.end();
    let credited: EpisodeResult['credited'];
    try {
      const r = await client.reportOutcome({ robotId: this.robotId, episodeId, success }, { deadlineMs: this.o.requestDeadlineMs });
      credited = { model: r.modelName, version: r.modelVersion };
    } catch (err) {
      credited = { error: err instanceof DustClientError ? err.codeName : String(err) };
    }
    return {
      conditionId: c.id,
      seed: spec.seed,
      embodiment: spec.embodiment,
      robotId: this.robotId,
      episodeId,
      success,
      steps: env.steps,
      finalDistance: env.distanceToZone(),
      requests,
      latenciesMs: latencies,
      visionStepsUsed: visionSteps,
      budgetMet,
      servedVersions: served,
      surprises,
      staleActions: stale,
      holdTicks: holds,
      errors,
      credited,
      lateTicks: late,
      boundaryDiscontinuities: discontinuities,
      switchSteps,
      switchDelays,
      assumedDelays,
      jerk: meanJerk(executed, CONTROL_DT),
    };
  }
}
