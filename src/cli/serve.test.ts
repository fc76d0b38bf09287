import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_OPTIONS, envName, flagName, OPTION_KEYS } from '../config/index.js';
import { registerServe } from './serve.js';

function serveCommand(): Command {
  const program = new Command('dust-serve');
  registerServe(program);
  return program.commands.find((c) => c.name() === 'serve')!;
}

describe('dust-serve serve flags', () => {
  it('has one flag per option of the table, besides --config', () => {
    expect(serveCommand().options.map((o) => o.long)).toEqual(['--config', ...OPTION_KEYS.map(flagName)]);
  });

  it("names the environment variable and the default in each flag's help", () => {
    const help = new Map(serveCommand().options.map((o) => [o.long, o.description]));
    expect(help.get('--max-instruction-bytes')).toBe(`longest instruction (env DUST_MAX_INSTRUCTION_BYTES; default 4096)`);
    for (const key of OPTION_KEYS) expect(help.get(flagName(key))).toContain(`(env ${envName(key)}; default ${JSON.stringify(DEFAULT_SERVE_OPTIONS[key])})`);
  });

  it("stores each flag's value under the option's key", () => {
    const cmd = serveCommand();
    cmd.parseOptions(['--max-instruction-bytes', '8192', '--max-watch-streams-per-connection', '4']);
    expect(cmd.opts()).toMatchObject({ maxInstructionBytes: '8192', maxWatchStreamsPerConnection: '4' });
  });
});
