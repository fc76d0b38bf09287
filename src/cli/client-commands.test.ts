import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { DustClientError } from '@dust-serve/client';
import { formatModelStatus, registerModelAdmin } from './model-admin.js';
import { formatOutcome, outcomeInit, registerOutcome, type OutcomeFlags } from './outcome.js';
import { predictInit, registerPredict, type PredictFlags } from './predict.js';
import { unreachableMessage } from './unreachable.js';
import { packageVersion } from './version.js';
import { failureMessage } from './with-client.js';
import { commanderCode } from './testing/commander.js';

const program = () => new Command().exitOverride().configureOutput({ writeErr: () => {} });

function parseOutcome(argv: string[]): OutcomeFlags {
  let seen: OutcomeFlags | undefined;
  const p = program();
  registerOutcome(p, async (flags) => {
    seen = flags;
  }).exitOverride();
  p.parse(['outcome', ...argv], { from: 'user' });
  return seen!;
}

describe('dust-serve outcome', () => {
  it('reports a success or a failure of one episode, with an optional reward', () => {
    expect(outcomeInit(parseOutcome(['--episode-id', 'ep-1', '--success']))).toEqual({ robotId: 'cli', episodeId: 'ep-1', success: true });
    expect(outcomeInit(parseOutcome(['--robot-id', 'r1', '--episode-id', 'ep-2', '--failure', '--reward', '-0.5']))).toEqual({
      robotId: 'r1',
      episodeId: 'ep-2',
      success: false,
      reward: -0.5,
    });
  });

  it('needs an episode id and exactly one of --success and --failure', () => {
    const code = (argv: string[]) => commanderCode(() => parseOutcome(argv));
    expect(code(['--success'])).toBe('commander.missingMandatoryOptionValue');
    expect(code(['--episode-id', 'e', '--success', '--failure'])).toBe('commander.conflictingOption');
    expect(code(['--episode-id', 'e', '--success', '--reward', 'x'])).toBe('commander.invalidArgument');
    expect(() => outcomeInit(parseOutcome(['--episode-id', 'e']))).toThrow('give exactly one of --success and --failure');
  });

  it('says which version was credited and whether the experiment counted it', () => {
    expect(formatOutcome({ modelName: 'dust-push', modelVersion: 2, counted: true })).toBe('credited to dust-push@2: counted in the experiment\n');
    expect(formatOutcome({ modelName: 'dust-push', modelVersion: 1, counted: false })).toMatch(/^credited to dust-push@1: not counted/);
  });
});

describe('dust-serve load and unload', () => {
  function parse(argv: string[]): { command: string; model: string; version: number } {
    let seen: { command: string; model: string; version: number } | undefined;
    const p = program();
    registerModelAdmin(p, {
      load: async (model, version) => void (seen = { command: 'load', model, version }),
      unload: async (model, version) => void (seen = { command: 'unload', model, version }),
    });
    p.commands.forEach((c) => c.exitOverride());
    p.parse(argv, { from: 'user' });
    return seen!;
  }

  it('loads the newest version unless one is named, and unloads a named version', () => {
    expect(parse(['load', 'dust-push'])).toEqual({ command: 'load', model: 'dust-push', version: 0 });
    expect(parse(['load', 'dust-push', '2'])).toEqual({ command: 'load', model: 'dust-push', version: 2 });
    expect(parse(['unload', 'dust-push', '3'])).toEqual({ command: 'unload', model: 'dust-push', version: 3 });
    expect(() => parse(['unload', 'dust-push'])).toThrow(CommanderError);
    expect(() => parse(['load', 'dust-push', 'two'])).toThrow(CommanderError);
  });

  it('prints the version and its state, or what happened to it', () => {
    expect(formatModelStatus({ name: 'dust-push', version: 2, state: 'READY', reason: '' })).toBe('dust-push@2: READY\n');
    expect(formatModelStatus({ name: 'dust-push', version: 3, state: 'UNSPECIFIED', reason: 'unloaded' })).toBe('dust-push@3: unloaded\n');
    expect(formatModelStatus({ name: 'x', version: 1, state: 'FAILED', reason: 'sha256 mismatch' })).toBe('x@1: FAILED: sha256 mismatch\n');
  });
});

describe('dust-serve predict --episode-id', () => {
  it('sends the episode id, and none when not given', async () => {
    const parse = (argv: string[]) => {
      let seen: PredictFlags | undefined;
      const p = program();
      registerPredict(p, async (flags) => void (seen = flags)).exitOverride();
      p.parse(['predict', '--embodiment', 'e', ...argv], { from: 'user' });
      return seen!;
    };
    expect((await predictInit(parse(['--episode-id', 'ep-9']))).episodeId).toBe('ep-9');
    expect((await predictInit(parse([]))).episodeId).toBe('');
  });
});

describe('dust-serve --version', () => {
  it("is the package's version", async () => {
    const { default: pkg } = (await import('../../package.json', { with: { type: 'json' } })) as { default: { version: string } };
    expect(packageVersion()).toBe(pkg.version);
    expect(packageVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('a server that cannot be reached', () => {
  // The details grpc-js gives when every connection attempt failed (round_robin over the resolved addresses).
  const refused = new DustClientError(
    14,
    'round_robin: No connection established. Last error: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:50999. Resolution note: ',
  );

  it('is one sentence with the address, the cause and what to try', () => {
    expect(failureMessage('models', '127.0.0.1:50999', refused)).toBe(
      'cannot reach dust-serve at 127.0.0.1:50999: connection refused (is the server running? start it with npm start)',
    );
    const unresolved = new DustClientError(14, 'Name resolution failed for target dns:nohost.invalid:50051: Error: getaddrinfo ENOTFOUND nohost.invalid');
    expect(unreachableMessage('nohost.invalid:50051', unresolved)).toBe(
      'cannot reach dust-serve at nohost.invalid:50051: the host name does not resolve (check the host in --address or DUST_ADDRESS)',
    );
  });

  it("leaves a server's own UNAVAILABLE and every other failure as the server said it", () => {
    const draining = new DustClientError(14, 'the server is draining');
    expect(unreachableMessage('h:1', draining)).toBeUndefined();
    expect(failureMessage('predict', 'h:1', draining)).toBe('predict against h:1 failed: UNAVAILABLE (14): the server is draining');
    expect(unreachableMessage('h:1', new DustClientError(5, 'connect ECONNREFUSED in a model name'))).toBeUndefined();
  });
});
