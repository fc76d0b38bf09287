/**
 * A minimal OTLP trace receiver for tests, in each protocol the server can export with: OTLP/HTTP with
 * JSON or protobuf bodies (POST /v1/traces) and OTLP/gRPC (TraceService/Export). Every span received is
 * normalized to one shape (hex ids, attributes as plain values) so tests assert once for all protocols.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export type OtlpProtocol = 'http/json' | 'http/protobuf' | 'grpc';

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server. */
  readonly kind: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly attributes: Record<string, string | number | boolean>;
  readonly links: ReadonlyArray<{ traceId: string; spanId: string; attributes: Record<string, string | number | boolean> }>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
  readonly resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  /** The value for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Resolves once `predicate` holds over the spans received, or rejects after `timeoutMs`. */
  waitFor(predicate: (spans: readonly ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const PROTO = path.resolve('test/fixtures/otlp/trace-service.proto');
const SERVICE = 'opentelemetry.proto.collector.trace.v1.TraceService';
const LOADER = { keepCase: true, longs: String, enums: Number, bytes: Buffer, defaults: true, oneofs: true } as const;

type AnyValue = { string_value?: string; bool_value?: boolean; int_value?: string | number; double_value?: number; value?: string };
type KeyValue = { key: string; value?: AnyValue & Record<string, unknown> };

/** Protobuf (proto-loader objects) and JSON (the OTLP/JSON mapping: camelCase, hex ids) decode to this. */
function plainValue(v: (AnyValue & Record<string, unknown>) | undefined): string | number | boolean {
  if (!v) return '';
  const pick = (snake: string, camel: string) => (v[snake] !== undefined && v[snake] !== null ? v[snake] : v[camel]);
  const s = pick('string_value', 'stringValue');
  if (s !== undefined && s !== null && (v.value === undefined || v.value === 'string_value')) return String(s);
  const b = pick('bool_value', 'boolValue');
  if (b !== undefined && b !== null && (v.value === undefined || v.value === 'bool_value')) return Boolean(b);
  const i = pick('int_value', 'intValue');
  if (i !== undefined && i !== null && (v.value === undefined || v.value === 'int_value')) return Number(i);
  const d = pick('double_value', 'doubleValue');
  return Number(d);
}

function attributes(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, plainValue(kv.value)]));
}

const hex = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString('hex') : typeof v === 'string' ? v : '');

/** ExportTraceServiceRequest (either mapping) -> spans. */
function normalize(req: Record<string, unknown>): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  const rs = (req.resource_spans ?? req.resourceSpans ?? []) as Array<Record<string, unknown>>;
  for (const r of rs) {
    const resource = attributes(((r.resource ?? {}) as { attributes?: KeyValue[] }).attributes);
    for (const ss of (r.scope_spans ?? r.scopeSpans ?? []) as Array<Record<string, unknown>>) {
      for (const s of (ss.spans ?? []) as Array<Record<string, unknown>>) {
        const get = (snake: string, camel: string) => s[snake] ?? s[camel];
        out.push({
          traceId: hex(get('trace_id', 'traceId')),
          spanId: hex(get('span_id', 'spanId')),
          parentSpanId: hex(get('parent_span_id', 'parentSpanId')),
          name: String(s.name),
          kind: Number(s.kind ?? 0),
          startNs: BigInt(String(get('start_time_unix_nano', 'startTimeUnixNano') ?? 0)),
          endNs: BigInt(String(get('end_time_unix_nano', 'endTimeUnixNano') ?? 0)),
          attributes: attributes(s.attributes as KeyValue[]),
          links: ((s.links ?? []) as Array<Record<string, unknown>>).map((l) => ({
            traceId: hex(l.trace_id ?? l.traceId),
            spanId: hex(l.span_id ?? l.spanId),
            attributes: attributes(l.attributes as KeyValue[]),
          })),
          statusCode: Number(((s.status ?? {}) as { code?: number }).code ?? 0),
          resource,
        });
      }
    }
  }
  return out;
}

export async function startOtlpReceiver(protocol: OtlpProtocol): Promise<OtlpReceiver> {
  const packageDefinition = loadSync(PROTO, LOADER);
  const exportMethod = (packageDefinition[SERVICE] as grpc.ServiceDefinition)['Export'];
  const spans: ReceivedSpan[] = [];
  const waiters = new Set<() => void>();
  const receive = (req: Record<string, unknown>) => {
    spans.push(...normalize(req));
    for (const w of waiters) w();
  };

  let endpoint: string;
  let close: () => Promise<void>;
  if (protocol === 'grpc') {
    const server = new grpc.Server();
    server.addService(packageDefinition[SERVICE] as grpc.ServiceDefinition, {
      Export: (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        receive(call.request);
        callback(null, {});
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    endpoint = `http://127.0.0.1:${port}`;
    close = () => new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  } else {
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        const body = Buffer.concat(chunks);
        const json = (req.headers['content-type'] ?? '').includes('json');
        receive(json ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : (exportMethod.requestDeserialize(body) as Record<string, unknown>));
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' }).end(json ? '{}' : Buffer.alloc(0));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
  }

  return {
    endpoint,
    spans,
    waitFor(predicate, timeoutMs = 20_000) {
      if (predicate(spans)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(spans)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`the expected spans did not arrive within ${timeoutMs} ms; got: ${spans.map((s) => s.name).join(', ') || 'none'}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close,
  };
}
