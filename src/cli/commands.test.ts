import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DustClientError } from '@dust-serve/client';
import { registerModels, type ModelsFlags } from './models.js';
import { predictInit, registerPredict, type PredictFlags } from './predict.js';
import { failureMessage } from './with-client.js';
import { commanderCode } from './testing/commander.js';

function parsePredict(argv: string[]): PredictFlags {
  let seen: PredictFlags | undefined;
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  registerPredict(program, async (flags) => {
    seen = flags;
  }).exitOverride();
  program.parse(['predict', ...argv], { from: 'user' });
  return seen!;
}

afterEach(() => vi.unstubAllEnvs());

describe('dust-serve predict flags', () => {
  it('parses every flag into typed values', () => {
    const flags = parsePredict([
      '--embodiment',
      'franka',
      '--model',
      'dust-tiny@1',
      '--image',
      'wrist=/tmp/w.jpg',
      '--image',
      'top=/tmp/t.png',
      '--state',
      '-0.5,0.25',
      '--instruction',
      'pick',
      '--action-steps',
      '4',
      '--vision-steps',
      '8',
      '--seed',
      '18446744073709551615',
      '--budget-ms',
      '30',
      '--future',
      '--json',
      '--address',
      'robot-gw:6000',
    ]);
    expect(flags).toMatchObject({
      embodiment: 'franka',
      model: 'dust-tiny@1',
      robotId: 'cli',
      image: [
        { camera: 'wrist', path: '/tmp/w.jpg' },
        { camera: 'top', path: '/tmp/t.png' },
      ],
      state: [-0.5, 0.25],
      instruction: 'pick',
      actionSteps: 4,
      visionSteps: 8,
      seed: 2n ** 64n - 1n,
      budgetMs: 30,
      future: true,
      json: true,
      address: 'robot-gw:6000',
    });
  });

  it('defaults the address to localhost:50051, or DUST_ADDRESS when set', () => {
    expect(parsePredict(['--embodiment', 'e']).address).toBe('localhost:50051');
    vi.stubEnv('DUST_ADDRESS', 'fleet:7000');
    expect(parsePredict(['--embodiment', 'e']).address).toBe('fleet:7000');
    expect(parsePredict(['--embodiment', 'e', '--address', 'x:1']).address).toBe('x:1');
  });

  it('requires --embodiment and refuses bad values before calling anyone', () => {
    const code = (argv: string[]) => commanderCode(() => parsePredict(argv));
    expect(code([])).toBe('commander.missingMandatoryOptionValue');
    expect(code(['--embodiment', 'e', '--seed', '-3'])).toBe('commander.invalidArgument');
    expect(code(['--embodiment', 'e', '--state', '1,x'])).toBe('commander.invalidArgument');
    expect(code(['--embodiment', 'e', '--image', 'noequals.jpg'])).toBe('commander.invalidArgument');
  });

  it('builds the request: only the sampling fields given, no images when none', async () => {
    const init = await predictInit(parsePredict(['--embodiment', 'e', '--seed', '0', '--vision-steps', '8']));
    expect(init).toMatchObject({ robotId: 'cli', embodiment: 'e', model: '', images: [], state: [], returnFutureEmbedding: false });
    expect(init.sampling).toEqual({ seed: 0n, visionSteps: 8 });
  });
});

describe('dust-serve models flags', () => {
  it('takes --address and --json', () => {
    let seen: ModelsFlags | undefined;
    const program = new Command().exitOverride();
    registerModels(program, async (flags) => {
      seen = flags;
    });
    program.parse(['models', '--json'], { from: 'user' });
    expect(seen).toMatchObject({ address: 'localhost:50051', json: true });
  });
});

describe('failureMessage', () => {
  it('is one line with the gRPC code name and the details', () => {
    const err = new DustClientError(3, 'state has 3 values;\n  embodiment franka needs 8');
    expect(failureMessage('predict', 'localhost:50051', err)).toBe(
      'predict against localhost:50051 failed: INVALID_ARGUMENT (3): state has 3 values; embodiment franka needs 8',
    );
    expect(failureMessage('predict', 'h:1', new Error('cannot read image a=b.jpg: ENOENT'))).toBe('predict failed: cannot read image a=b.jpg: ENOENT');
  });
});
