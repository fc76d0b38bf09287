/**
 * Thread priorities (Linux): the gRPC event loop keeps normal priority and every thread that does bulk work
 * (inference, image decoding, V8's GC and compiler helpers, libuv's pool, the experiment writer) runs at a
 * lower one, so that when the cores are saturated the event loop is the first to run when it wakes. Without
 * this, on a saturated small host the event loop spends its stalls runnable but waiting for a core, which is
 * what kept health checks waiting (BENCHMARKS.md, "Quiet runs after the second pass", target 10b).
 *
 * Linux nice values are per thread, inherited by threads a thread creates (so ONNX Runtime's intra-op threads
 * inherit the inference thread's), and only compared within a scheduling group (a container's cgroup, or a
 * terminal session's autogroup): a lowered thread yields to this server's event loop and to work in its own
 * group, not to the rest of the host. Raising a thread's nice value needs no privilege; nothing here lowers one.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import os from 'node:os';

/** This thread's kernel thread id, or undefined where there is none to read (not Linux). */
export function currentThreadId(): number | undefined {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Raises a thread's nice value to `niceness` unless it is there already; false where not possible. */
function lower(tid: number, niceness: number): boolean {
  try {
    if (os.getPriority(tid) >= niceness) return false;
    os.setPriority(tid, niceness);
    return true;
  } catch {
    // The thread ended meanwhile, or not permitted: it keeps its priority.
    return false;
  }
}

/** Lowers the calling thread's priority to `niceness` (0 = leave it). Returns whether it changed. */
export function lowerThisThread(niceness: number): boolean {
  if (niceness <= 0) return false;
  const tid = currentThreadId();
  return tid !== undefined && lower(tid, niceness);
}

/**
 * The threads of this process to lower: every one but `keep` (the event loop's) whose nice value is below
 * `niceness`. Pure, for tests: `threads` maps thread id to its current nice value.
 */
export function threadsToLower(threads: ReadonlyMap<number, number>, keep: number, niceness: number): number[] {
  if (niceness <= 0) return [];
  return [...threads].filter(([tid, nice]) => tid !== keep && nice < niceness).map(([tid]) => tid);
}

/**
 * Lowers every other thread of this process to `niceness`, keeping the calling thread (the event loop) as it
 * is. Threads that do not exist yet are not affected: worker threads lower themselves when they start, and
 * threads they create inherit it. Returns how many threads were lowered (0 where /proc is absent).
 */
export function lowerOtherThreads(niceness: number): number {
  const keep = currentThreadId();
  if (keep === undefined || niceness <= 0) return 0;
  const threads = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return 0;
  }
  for (const name of tids) {
    const tid = Number(name);
    try {
      threads.set(tid, os.getPriority(tid));
    } catch {
      // Ended meanwhile.
    }
  }
  return threadsToLower(threads, keep, niceness).filter((tid) => lower(tid, niceness)).length;
}
