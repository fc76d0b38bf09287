/**
 * Structured JSON logs (pino). One root logger made at start-up and injected; modules and requests take
 * children with their own fields. Pretty output only when asked for (development). A line written while a
 * span is active carries its trace_id and span_id, so logs and traces join up.
 */
import { context, trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';
import { SERVICE_NAME } from './service.js';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly level: string;
  readonly pretty: boolean;
}

/** The active span's ids, in the field names of the OTel log data model; nothing when no span is active. */
export function traceFields(): { trace_id?: string; span_id?: string; trace_flags?: string } {
  const span = trace.getSpanContext(context.active());
  if (!span) return {};
  return { trace_id: span.traceId, span_id: span.spanId, trace_flags: `0${span.traceFlags.toString(16)}`.slice(-2) };
}

export function createLogger(options: LoggerOptions): Logger {
  return pino({
    level: options.level,
    base: { service: SERVICE_NAME },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: traceFields,
    transport: options.pretty ? { target: 'pino-pretty', options: { colorize: true } } : undefined,
  });
}

/** For tests and embedded use. */
export const silentLogger: Logger = pino({ level: 'silent' });
