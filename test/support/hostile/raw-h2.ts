/**
 * A raw HTTP/2 client for stream floods: it writes frames itself, so, unlike Node's client, it opens streams
 * without waiting for the server's SETTINGS_MAX_CONCURRENT_STREAMS, as a hostile client would. Headers are
 * HPACK literals (no table), streams never half-close; a PING round trip tells when the server has read every
 * frame written before it.
 */
import net from 'node:net';

const FRAME_DATA = 0x0;
const FRAME_HEADERS = 0x1;
const FRAME_SETTINGS = 0x4;
const FRAME_PING = 0x6;
const FRAME_GOAWAY = 0x7;
const FRAME_WINDOW_UPDATE = 0x8;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
/** Frames written per socket write. */
const FRAMES_PER_WRITE = 512;
const MAX_WINDOW = 2 ** 31 - 1;
const DEFAULT_WINDOW = 65_535;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head.writeUInt8(type, 3);
  head.writeUInt8(flags, 4);
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK integer with a 7-bit prefix (RFC 7541 5.1), for string lengths. */
function hpackLength(n: number): Buffer {
  if (n < 127) return Buffer.from([n]);
  const out = [127];
  for (n -= 127; n >= 128; n >>= 7) out.push((n & 127) | 128);
  out.push(n);
  return Buffer.from(out);
}

/** A header block of literals without indexing, new names (RFC 7541 6.2.2). */
export function headerBlock(headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of headers) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0]), hpackLength(n.length), n, hpackLength(v.length), v);
  }
  return Buffer.concat(parts);
}

/** gRPC request headers for `path`, with extra metadata. */
export function grpcHeaders(authority: string, path: string, extra: ReadonlyArray<readonly [string, string]> = []): Buffer {
  return headerBlock([
    [':method', 'POST'],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    ...extra,
  ]);
}

/** A gRPC length-prefixed message: uncompressed flag, big-endian length, the bytes. */
export function grpcMessage(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

export class RawH2Connection {
  private nextStreamId = 1;
  private pending: Buffer = Buffer.alloc(0);
  private readonly pings = new Map<string, () => void>();
  private pingCount = 0;
  /** The error code of the first GOAWAY the server sent (a server closing a connection may send a NO_ERROR one after it). */
  goawayCode: number | undefined;
  closed = false;
  opened = 0;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const resolve of this.pings.values()) resolve();
      this.pings.clear();
    });
  }

  static connect(host: string, port: number): Promise<RawH2Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host, () => {
        const window = Buffer.alloc(4);
        window.writeUInt32BE(MAX_WINDOW - DEFAULT_WINDOW);
        // Empty SETTINGS, and a connection window large enough that the server's answers never wait for us.
        socket.write(Buffer.concat([PREFACE, frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(0)), frame(FRAME_WINDOW_UPDATE, 0, 0, window)]));
        resolve(new RawH2Connection(socket));
      });
      socket.once('error', reject);
    });
  }

  private read(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    while (this.pending.length >= 9) {
      const length = this.pending.readUIntBE(0, 3);
      if (this.pending.length < 9 + length) break;
      const type = this.pending.readUInt8(3);
      const flags = this.pending.readUInt8(4);
      const payload = this.pending.subarray(9, 9 + length);
      this.pending = this.pending.subarray(9 + length);
      if (type === FRAME_SETTINGS && !(flags & FLAG_ACK)) this.socket.write(frame(FRAME_SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
      else if (type === FRAME_PING && flags & FLAG_ACK) {
        const key = payload.toString('hex');
        this.pings.get(key)?.();
        this.pings.delete(key);
      } else if (type === FRAME_GOAWAY && payload.length >= 8) this.goawayCode ??= payload.readUInt32BE(4);
    }
  }

  /**
   * Opens `count` streams with `block` as their headers and, if given, `message` as one DATA frame (gRPC
   * framed), none half-closed; stops early when the connection closes. Resolves with the streams opened.
   */
  async flood(count: number, block: Buffer, message?: Buffer): Promise<number> {
    const framed = message && grpcMessage(message);
    let opened = 0;
    while (opened < count && !this.closed) {
      const frames: Buffer[] = [];
      for (let i = 0; i < FRAMES_PER_WRITE && opened < count; i++, opened++) {
        const id = this.nextStreamId;
        this.nextStreamId += 2;
        frames.push(frame(FRAME_HEADERS, FLAG_END_HEADERS, id, block));
        if (framed) frames.push(frame(FRAME_DATA, 0, id, framed));
      }
      if (!this.socket.write(Buffer.concat(frames))) await new Promise<void>((resolve) => this.socket.once('drain', resolve).once('close', resolve));
    }
    this.opened += opened;
    return opened;
  }

  /** Resolves once the server has answered a PING written now (it has read everything before it), or closed. */
  ping(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(++this.pingCount);
    return new Promise((resolve) => {
      this.pings.set(payload.toString('hex'), resolve);
      this.socket.write(frame(FRAME_PING, 0, 0, payload));
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
