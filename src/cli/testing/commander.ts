/**
 * What the CLI's tests share about commander: the code of the error a parse throws, so that a test says which flag
 * problem it expects (commander.missingMandatoryOptionValue, commander.invalidArgument, ...).
 */
import type { CommanderError } from 'commander';

/** The CommanderError code `parse` throws, or 'parsed' when it does not throw. */
export function commanderCode(parse: () => unknown): string {
  try {
    parse();
    return 'parsed';
  } catch (err) {
    return (err as CommanderError).code;
  }
}
