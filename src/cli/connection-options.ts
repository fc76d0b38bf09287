/** The flags every client command shares. */
import { Option, type Command } from 'commander';
import { DEFAULT_ADDRESS, parsePositiveMs } from './args.js';

export function addConnectionOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--address <host:port>', 'dust-serve gRPC address').env('DUST_ADDRESS').default(DEFAULT_ADDRESS))
    .addOption(
      new Option('--deadline-ms <ms>', 'fail with DEADLINE_EXCEEDED after this long (default: none)').env('DUST_DEADLINE_MS').argParser(parsePositiveMs),
    )
    .addOption(new Option('--token <token>', 'credential for servers with a tokens file (sent as authorization: Bearer)').env('DUST_TOKEN'))
    .option('--json', 'print the response as JSON');
}
