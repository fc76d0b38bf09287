/**
 * `npm run fleet` end to end on the built server and the shipped push model: robots run closed-loop episodes
 * through Predict with pinned versions, and every ReportOutcome is credited to the version that served it; an
 * A/B run routes unpinned episodes through a traffic split and GetExperiment counts what the robots reported.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import type { AbReport } from './ab.js';
import type { ConditionSummary } from './report.js';

const FLEET = path.resolve('dist/bench/push/fleet.js');
const REPOSITORY = path.resolve('models/push-repo');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'dust-push-fleet-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('npm run fleet', () => {
  it('runs closed-loop episodes on pinned versions and gets each outcome credited to its version', async () => {
    const out = path.join(tmp, 'report.json');
    // Lockstep at 10x real time keeps the run short; N_o = 8 on version 3 shows the sampling settings arrive.
    await promisify(execFile)(
      process.execPath,
      [
        FLEET,
        '--repository',
        REPOSITORY,
        '--conditions',
        '1:4:4,3:4:8',
        '--episodes',
        '4',
        '--robots',
        '2',
        '--clock',
        'lockstep',
        '--control-hz',
        '100',
        '--quiet',
        '--out',
        out,
      ],
      { timeout: 120_000 },
    );
    const report = JSON.parse(readFileSync(out, 'utf8')) as { conditions: ConditionSummary[]; settings: { held_out_seeds: number[] } };
    expect(report.settings.held_out_seeds).toEqual([1_000_000, 1_000_003]);
    const [v1, v3] = report.conditions;
    for (const [summary, version, visionSteps] of [
      [v1, 1, 4],
      [v3, 3, 8],
    ] as const) {
      expect(summary.version).toBe(version);
      expect(summary.episodes).toBe(4);
      expect(summary.by_embodiment.pusher2.episodes).toBe(2);
      expect(summary.by_embodiment.paddle3.episodes).toBe(2);
      expect(summary.errors).toEqual({});
      expect(summary.credited).toEqual({ [String(version)]: 4 });
      expect(summary.credit_mismatches).toBe(0);
      expect(summary.requests).toBeGreaterThanOrEqual(4);
      expect(summary.vision_steps_used).toEqual({ [String(visionSteps)]: summary.requests });
      expect(summary.successes).toBeLessThanOrEqual(4);
    }
  });

  it('runs an A/B test through SetTrafficSplit: unpinned episodes reach both versions and GetExperiment counts what the robots reported', async () => {
    const out = path.join(tmp, 'ab.json');
    await promisify(execFile)(
      process.execPath,
      [
        FLEET,
        '--repository',
        REPOSITORY,
        '--ab',
        '3:1',
        '--ab-max-episodes',
        '8',
        '--robots',
        '2',
        '--clock',
        'lockstep',
        '--control-hz',
        '100',
        '--quiet',
        '--out',
        out,
      ],
      { timeout: 120_000 },
    );
    const { ab } = JSON.parse(readFileSync(out, 'utf8')) as { ab: AbReport };
    expect(ab.control_version).toBe(3);
    expect(ab.episodes_started).toBe(8);
    expect(ab.looks).toHaveLength(8);
    expect(ab.looks.at(-1)!.outcomes).toBe(8);
    for (const v of ['1', '3']) {
      expect(ab.final[v].episodes).toBe(ab.robots_tally[v]?.episodes ?? 0);
      expect(ab.final[v].successes).toBe(ab.robots_tally[v]?.successes ?? 0);
    }
    expect(Object.keys(ab.robots_tally).every((k) => k === '1' || k === '3')).toBe(true);
    expect(ab.final['3'].decision).toBe('control');
  });

  it('with --chunking and --delay, sends the committed prefix and switches exactly d ticks after each observation', async () => {
    const run = async (chunking: string) => {
      const out = path.join(tmp, `chunking-${chunking}.json`);
      await promisify(execFile)(
        process.execPath,
        [FLEET, '--repository', REPOSITORY, '--conditions', '1:4:4', '--episodes', '2', '--robots', '2', '--clock', 'lockstep', '--control-hz', '100'].concat([
          '--chunking',
          chunking,
          '--delay',
          '3',
          '--quiet',
          '--out',
          out,
        ]),
        { timeout: 120_000 },
      );
      return JSON.parse(readFileSync(out, 'utf8')) as { conditions: ConditionSummary[]; settings: { chunking: string; delay_steps: number } };
    };
    const [naive, rtc] = [await run('naive'), await run('rtc')];
    expect(rtc.settings).toMatchObject({ chunking: 'rtc', delay_steps: 3 });
    for (const { conditions } of [naive, rtc]) {
      const [c] = conditions;
      expect(c.errors).toEqual({});
      expect(c.switches).toBeGreaterThan(0);
      expect(c.mean_switch_delay_steps).toBe(3);
      expect(c.mean_assumed_delay_steps).toBe(3);
      expect(c.late_switch_fraction).toBe(0);
      expect(c.mean_jerk).toBeGreaterThan(0);
    }
    // Same layouts and seeds: inpainting the committed actions makes the switch smaller than naive switching does.
    expect(rtc.conditions[0].mean_boundary_discontinuity).toBeLessThan(naive.conditions[0].mean_boundary_discontinuity);
  });

  /** Two short episodes of version 7 on a realtime clock at 10x (a 10 ms tick), with real-time chunking's flags. */
  const realtimeRun = async (name: string, flags: string[]) => {
    const out = path.join(tmp, `${name}.json`);
    await promisify(execFile)(
      process.execPath,
      [FLEET, '--repository', REPOSITORY, '--conditions', '7:4:4', '--episodes', '2', '--robots', '2', '--clock', 'realtime', '--control-hz', '100'].concat([
        '--execute',
        '4',
        ...flags,
        '--quiet',
        '--out',
        out,
      ]),
      { timeout: 120_000 },
    );
    const report = JSON.parse(readFileSync(out, 'utf8')) as { conditions: ConditionSummary[]; settings: Record<string, unknown> };
    const [c] = report.conditions;
    expect(c.errors).toEqual({});
    expect(c.switches).toBeGreaterThan(0);
    // Defined only if some switch's request carried a prefix and got a d back.
    expect(c.late_switch_fraction).toBeGreaterThanOrEqual(0);
    expect(c.late_switch_fraction).toBeLessThanOrEqual(1);
    return { settings: report.settings, c };
  };

  it('with --estimate-delay, sends the control period over a stream and the server chooses every d', async () => {
    const { settings, c } = await realtimeRun('estimate', ['--chunking', 'condition', '--estimate-delay']);
    expect(settings.delay_steps).toBe('estimated');
    // The robot declared no delay: every d came from the server, ceil(latency / period) >= 1 tick.
    expect(c.mean_assumed_delay_steps).toBeGreaterThanOrEqual(1);
  });

  it('with --delay-window, the robot declares d from how many ticks its answers took to arrive', async () => {
    const { settings, c } = await realtimeRun('window', ['--chunking', 'rtc', '--delay-window', '3']);
    expect(settings).toMatchObject({ delay_steps: 'measured', delay_window: 3 });
    // An answer is seen at the earliest on the tick after its observation's: every declared d is at least 1.
    expect(c.mean_assumed_delay_steps).toBeGreaterThanOrEqual(1);
  });

  it('refuses --estimate-delay where the server could not estimate, and a window beside it, saying why', async () => {
    const failure = await promisify(execFile)(
      process.execPath,
      [FLEET, '--repository', REPOSITORY, '--conditions', '7:4:4', '--clock', 'lockstep', '--chunking', 'condition', '--estimate-delay', '--quiet'],
      { timeout: 60_000 },
    ).catch((err: { stderr: string }) => err);
    expect((failure as { stderr: string }).stderr).toMatch(/--estimate-delay needs --clock realtime/);
    const both = await promisify(execFile)(
      process.execPath,
      [FLEET, '--repository', REPOSITORY, '--conditions', '7:4:4', '--chunking', 'rtc', '--estimate-delay', '--delay-window', '3', '--quiet'],
      { timeout: 60_000 },
    ).catch((err: { stderr: string }) => err);
    expect((both as { stderr: string }).stderr).toMatch(/--delay-window replaces --delay and --estimate-delay/);
  });
});
