/**
 * The tokens file (--tokens-file, DUST_TOKENS_FILE): who may call the server and in which role. A JSON array
 * of { "token", "role": "robot" | "admin", "name" }; `name` identifies the caller in logs, the token never
 * appears there nor in any error message.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { InvalidArgumentError } from '../errors/index.js';

export type Role = 'robot' | 'admin';

export interface Credential {
  readonly token: string;
  readonly role: Role;
  readonly name: string;
}

/** Shorter tokens are refused: they can be guessed. */
export const MIN_TOKEN_LENGTH = 16;

/** The token of an `authorization` header value `Bearer <token>`, or undefined (gRPC metadata and HTTP alike). */
export function bearerTokenOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
}

const schema = z
  .array(
    z
      .object({
        token: z.string().min(MIN_TOKEN_LENGTH, `a token must be at least ${MIN_TOKEN_LENGTH} characters`),
        role: z.enum(['robot', 'admin']),
        name: z.string().min(1, 'name identifies the caller in logs and must not be empty'),
      })
      .strict(),
  )
  .min(1, 'the file lists no credentials');

/** Validates a parsed tokens file. Messages name the entry and field, never a token's value. */
export function parseCredentials(json: unknown, file: string): Credential[] {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? `entry ${i.path.join('.')}` : 'file'}: ${i.message}`).join('; ');
    throw new InvalidArgumentError(`tokens file ${file}: ${issues}; expected [{ "token": "...", "role": "robot" | "admin", "name": "..." }]`);
  }
  const seen = new Set<string>();
  parsed.data.forEach((c, i) => {
    if (seen.has(c.token))
      throw new InvalidArgumentError(`tokens file ${file}: entry ${i} (${c.name}) repeats another entry's token; give every caller its own`);
    seen.add(c.token);
  });
  return parsed.data;
}

/**
 * Reads and validates the tokens file. A syntax error is reported by position only: V8's JSON.parse messages
 * quote the text around the error, which in this file is a token.
 */
export async function readCredentials(file: string): Promise<Credential[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`tokens file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); check --tokens-file`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const at = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new InvalidArgumentError(`tokens file ${file} is not valid JSON${at === undefined ? '' : ` (at character ${at})`}; check --tokens-file`);
  }
  return parseCredentials(json, file);
}

/**
 * A single secret kept in a file (the metrics token): its content without surrounding whitespace, at least
 * MIN_TOKEN_LENGTH characters and one word. Errors name the file, never its content.
 */
export async function readSecretFile(file: string, option: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`${option} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  const secret = text.trim();
  if (secret.length < MIN_TOKEN_LENGTH || /\s/.test(secret)) {
    throw new InvalidArgumentError(`${option} ${file} must hold one token of at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }
  return secret;
}
