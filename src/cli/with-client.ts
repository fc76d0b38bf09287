/** Runs one client command: opens a DustClient, always closes it, and turns failures into one clear line. */
import { DustClient, DustClientError } from '@dust-serve/client';
import { unreachableMessage } from './unreachable.js';

export interface ConnectionFlags {
  address: string;
  deadlineMs?: number;
  token?: string;
}

/** main.ts prints the message after "dust-serve: " and exits 1; keep it to one line. */
export function failureMessage(command: string, address: string, err: unknown): string {
  const text =
    unreachableMessage(address, err) ??
    (err instanceof DustClientError
      ? `${command} against ${address} failed: ${err.codeName} (${err.code}): ${err.details}`
      : `${command} failed: ${err instanceof Error ? err.message : String(err)}`);
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

export async function withClient<T>(command: string, flags: ConnectionFlags, fn: (client: DustClient) => Promise<T>): Promise<T> {
  const client = new DustClient(flags.address, { defaultDeadlineMs: flags.deadlineMs, token: flags.token });
  try {
    return await fn(client);
  } catch (err) {
    throw new Error(failureMessage(command, flags.address, err), { cause: err });
  } finally {
    client.close();
  }
}
