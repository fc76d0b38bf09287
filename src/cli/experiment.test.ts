import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import type { ExperimentResult, VariantStatsResult } from '@dust-serve/client';
import { parseFraction, parseWeights } from './args.js';
import { registerExperiment, splitInit, type ExperimentShowFlags, type ExperimentSplitFlags } from './experiment.js';
import { EXPERIMENT_COLUMNS, formatExperiment, formatSplit, variantRow } from './experiment-output.js';
import { commanderCode } from './testing/commander.js';

function parse(argv: string[]): { show?: ExperimentShowFlags; split?: ExperimentSplitFlags } {
  const seen: { show?: ExperimentShowFlags; split?: ExperimentSplitFlags } = {};
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  const cmd = registerExperiment(program, {
    show: async (f) => void (seen.show = f),
    split: async (f) => void (seen.split = f),
  });
  cmd.exitOverride();
  for (const sub of cmd.commands) sub.exitOverride().configureOutput({ writeErr: () => {} });
  program.parse(['experiment', ...argv], { from: 'user' });
  return seen;
}

describe('flag parsers', () => {
  it('reads version=weight pairs', () => {
    expect(parseWeights('1=0.9, 2=0.1')).toEqual([
      { version: 1, weight: 0.9 },
      { version: 2, weight: 0.1 },
    ]);
    expect(parseWeights('3:1')).toEqual([{ version: 3, weight: 1 }]);
    for (const bad of ['', '1', '0=1', '1=0', '1=-2', 'a=1', '1=x']) expect(() => parseWeights(bad)).toThrow();
  });
  it('reads fractions in [0, 1]', () => {
    expect(parseFraction('0.25')).toBe(0.25);
    for (const bad of ['', '-0.1', '1.5', 'x']) expect(() => parseFraction(bad)).toThrow();
  });
});

describe('dust-serve experiment', () => {
  it('show takes --model, --json, --token', () => {
    expect(parse(['show', '--model', 'm', '--json', '--token', 't']).show).toMatchObject({ model: 'm', json: true, token: 't', address: 'localhost:50051' });
  });

  it('split builds the SetTrafficSplit request', () => {
    const { split } = parse(['split', '--model', 'm', '--weights', '1=9,2=1', '--control', '1', '--sticky', 'episode', '--shadow', '3']);
    expect(splitInit(split!)).toEqual({
      model: 'm',
      weights: [
        { version: 1, weight: 9 },
        { version: 2, weight: 1 },
      ],
      controlVersion: 1,
      stickyKey: 'episode',
      salt: '',
      shadowVersion: 3,
      shadowFraction: 0.1,
    });
    expect(splitInit(parse(['split', '--weights', '1=1', '--new-experiment']).split!, () => 'fresh').salt).toBe('fresh');
    expect(() => splitInit(parse(['split', '--weights', '1=1', '--new-experiment', '--salt', 's']).split!)).toThrow(/not both/);
  });

  it('split refuses bad flags before calling anyone', () => {
    const code = (argv: string[]) => commanderCode(() => parse(argv));
    expect(code(['split'])).toBe('commander.missingMandatoryOptionValue');
    expect(code(['split', '--weights', '1=0'])).toBe('commander.invalidArgument');
    expect(code(['split', '--weights', '1=1', '--sticky', 'fleet'])).toBe('commander.invalidArgument');
    expect(code(['split', '--weights', '1=1', '--shadow-fraction', '2'])).toBe('commander.invalidArgument');
  });
});

const variant = (over: Partial<VariantStatsResult>): VariantStatsResult => ({
  version: 1,
  state: 'READY',
  weight: 0.5,
  requests: 100,
  robots: 7,
  robotsCapped: false,
  episodesServed: 12,
  episodes: 10,
  successes: 4,
  successRate: 0.4,
  ci95Low: 0.168,
  ci95High: 0.687,
  pValueVsControl: 1,
  alwaysValidPValue: 1,
  decision: 'control',
  latencyP50Ms: 41.23,
  latencyP99Ms: 90.5,
  meanVisionSteps: 8,
  meanWorldModelSurprise: 0.01234,
  shadowRequests: 0,
  shadowShed: 0,
  shadowActionDivergence: 0,
  shadowLatencyP50Ms: 0,
  shadowLatencyP99Ms: 0,
  ...over,
});

describe('experiment output', () => {
  it('prints one row per version with the statistics a person reads', () => {
    const row = variantRow(
      variant({
        version: 2,
        decision: 'candidate better',
        pValueVsControl: 0.00001,
        alwaysValidPValue: 0.031,
        shadowRequests: 5,
        shadowShed: 2,
        shadowActionDivergence: 0.12,
        shadowLatencyP50Ms: 50,
        shadowLatencyP99Ms: 80,
        robotsCapped: true,
      }),
      true,
    );
    expect(Object.fromEntries(EXPERIMENT_COLUMNS.map((c, i) => [c, row[i]]))).toEqual({
      version: '2',
      state: 'READY',
      weight: '0.5',
      requests: '100',
      robots: '7+',
      episodes: '10 (4 ok)',
      'success rate [95% CI]': '40.0% [16.8%, 68.7%]',
      'p (z-test)': '1.0e-5',
      'p (always valid)': '0.031',
      decision: 'candidate better',
      'latency p50/p99 ms': '41.2/90.5',
      'mean N_o': '8',
      surprise: '0.0123',
      'shadow n/shed': '5/2',
      'shadow divergence': '0.12',
      'shadow p50/p99 ms': '50/80',
    });
  });

  it('prints the experiment header and dashes where there is nothing to show', () => {
    const e: ExperimentResult = {
      model: 'dust-tiny',
      experimentId: 3,
      salt: '',
      startedAt: '2026-01-01T00:00:00.000Z',
      controlVersion: 0,
      stickyKey: 'robot',
      shadowVersion: 0,
      shadowFraction: 0,
      alpha: 0.05,
      variants: [variant({ decision: 'none', requests: 0, episodes: 0, successes: 0 })],
    };
    const text = formatExperiment(e);
    expect(text).toContain('model: dust-tiny   experiment 3');
    expect(text).toContain('no split set');
    expect(text).toContain('alpha = 0.05');
    expect(text).not.toContain('\u001b[');
    expect(variantRow(e.variants[0], false).slice(6, 12)).toEqual(['-', '-', '-', '-', '-', '-']);
    expect(
      formatSplit({
        model: 'm',
        salt: 's',
        weights: [
          { version: 1, weight: 0.9 },
          { version: 2, weight: 0.1 },
        ],
        controlVersion: 1,
        stickyKey: 'robot',
        shadowVersion: 2,
        shadowFraction: 0.05,
        experimentId: 4,
        newExperiment: true,
      }),
    ).toBe(
      'model: m   started experiment 4\nweights: 1=0.9, 2=0.1\nsalt: s\ncontrol: 1   sticky per: robot\nshadow: version 2 gets 5% of primary requests mirrored\n',
    );
  });
});
