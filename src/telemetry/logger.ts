/**
 * Structured JSON logs (pino). One root logger made at start-up and injected; modules and requests take
 * children with their own fields. Pretty output only when asked for (development).
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: string;
  readonly pretty: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino({
    level: options.level,
    base: { service: 'dust-serve' },
    timestamp: pino.stdTimeFunctions.isoTime,
    transport: options.pretty ? { target: 'pino-pretty', options: { colorize: true } } : undefined,
  });
}

/** For tests and embedded use. */
export const silentLogger: Logger = pino({ level: 'silent' });
