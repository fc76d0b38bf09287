/**
 * Real-time chunking in the closed loop (docs/api.md, "Real-time chunking"): what a robot commits to when it asks
 * for the next chunk, and the two numbers that show a switch: the boundary discontinuity and the jerk of what the
 * robot executed. Pure.
 */

/**
 * The fleet's --chunking: none (no prefix, the switch as soon as the answer is in) or a method of the server's:
 * rtc is its guidance-free inpainting, condition the prefix given to a policy trained with it.
 */
export const CHUNKING_MODES = ['none', 'naive', 'rtc', 'ensemble', 'condition'] as const;
export type ChunkingMode = (typeof CHUNKING_MODES)[number];

/** The server's method for a fleet mode. */
export function serverMethod(mode: Exclude<ChunkingMode, 'none'>): 'naive' | 'inpaint' | 'ensemble' | 'condition' {
  return mode === 'rtc' ? 'inpaint' : mode;
}

/**
 * What a robot commits to: the rest of the chunk it is executing ('rest', RTC's overlap: the server's soft mask
 * then pulls the new chunk towards all of it), or only the d actions that run before the new chunk takes over
 * ('delay': the server pins those and leaves the rest to the policy).
 */
export const COMMIT_MODES = ['rest', 'delay'] as const;
export type CommitMode = (typeof COMMIT_MODES)[number];

/**
 * The committed prefix at the tick a request observes: the executing chunk's rows from `next` (the row meant for
 * that tick) on, at most `horizon` ('rest') or at most the delay ('delay'), and the delay it can honour (the
 * injected delay, at most the rows left). None when the chunk has run out, or when only the delay's rows are
 * committed and the delay is 0.
 */
export function committedPrefix(
  chunk: readonly Float32Array[],
  next: number,
  horizon: number,
  delay: number,
  commit: CommitMode = 'rest',
): { actions: Float32Array[]; delaySteps: number } | undefined {
  const actions = chunk.slice(next, next + (commit === 'delay' ? Math.min(delay, horizon) : horizon));
  if (actions.length === 0) return undefined;
  return { actions, delaySteps: Math.min(delay, actions.length) };
}

/**
 * Of the switches whose request carried a prefix (assumed d >= 0), the share that came later than the d the server
 * assumed: the robot had run old actions past the ones the new chunk was made to continue. NaN with none (null in
 * the JSON, as stats.ts's means).
 */
export function lateSwitchFraction(switchDelays: readonly number[], assumedDelays: readonly number[]): number {
  let withPrefix = 0;
  let late = 0;
  assumedDelays.forEach((d, i) => {
    if (d < 0) return;
    withPrefix++;
    if (switchDelays[i] > d) late++;
  });
  return withPrefix > 0 ? late / withPrefix : NaN;
}

/**
 * ||a_new(k) - a_old(next0 + k)||_2: the jump at a switch k ticks after the observation, between the first action
 * the robot takes from the new chunk (both chunks indexed from the observation's tick, so a_new(k) is RTC's
 * a_new(0) once re-indexed from the switch) and the one the old chunk had for that tick. Undefined when the old
 * chunk had none left (the robot was holding).
 */
export function boundaryDiscontinuity(fresh: readonly Float32Array[], old: readonly Float32Array[], next0: number, k: number): number | undefined {
  const b = old[next0 + k];
  return b && fresh[k] ? distance(fresh[k], b) : undefined;
}

/**
 * ||a_new(k) - a_last||_2: the step the executed commands take at a switch, from the last action the robot
 * executed (the old chunk's, or a hold). Defined at every switch, also when the old chunk had no action left for
 * the switch's tick (execute + delay >= horizon), where boundaryDiscontinuity is not.
 */
export function switchStep(fresh: readonly Float32Array[], k: number, last: ArrayLike<number> | undefined): number | undefined {
  return last && fresh[k] ? distance(fresh[k], last) : undefined;
}

function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let d = 0; d < a.length; d++) sum += (a[d] - b[d]) ** 2;
  return Math.sqrt(sum);
}

/**
 * Mean jerk of an executed action sequence: the mean over t of ||a_t - 3 a_{t-1} + 3 a_{t-2} - a_{t-3}||_2 / dt^3,
 * the third finite difference of the commands (the push task's actions are pusher targets). 0 with fewer than 4.
 */
export function meanJerk(executed: readonly ArrayLike<number>[], dt: number): number {
  if (executed.length < 4) return 0;
  let total = 0;
  for (let t = 3; t < executed.length; t++) {
    const [a, b, c, d] = [executed[t], executed[t - 1], executed[t - 2], executed[t - 3]];
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += (a[i] - 3 * b[i] + 3 * c[i] - d[i]) ** 2;
    total += Math.sqrt(sum) / dt ** 3;
  }
  return total / (executed.length - 3);
}
