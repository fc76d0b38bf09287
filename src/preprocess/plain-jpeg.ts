/**
 * A fast path for the commonest camera frame: a complete 8-bit JPEG already at the model's size, without an
 * ICC profile. It is decoded by libjpeg-turbo compiled to WebAssembly, synchronously on the calling thread
 * (a decode worker), with the library's defaults (accurate integer IDCT, fancy upsampling): the same decoder
 * and settings that libvips uses under sharp, so the pixels are bit-identical (images.test.ts checks it on
 * baseline, progressive, 4:2:0, 4:4:4 and greyscale frames). sharp's cost for a small frame is mostly pipeline
 * set-up, and it runs on libuv's threadpool where no decode-thread limit applies; this skips the set-up and
 * stays on the decode thread.
 *
 * Anything else goes to sharp, which gives the same result or the error message: an ICC profile (sharp
 * converts to sRGB with it), an Adobe marker (CMYK or non-YCbCr colour transforms), lossless, arithmetic
 * coded or 12-bit frames, a missing end-of-image marker (a truncated file, which sharp refuses), any other
 * size (it needs resizing), or any data the WebAssembly decoder rejects.
 */
import { createRequire } from 'node:module';

interface FrameInfo {
  readonly width: number;
  readonly height: number;
  readonly bitsPerSample: number;
  readonly componentCount: number;
}

interface JpegDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  decode(): void;
  getFrameInfo(): FrameInfo;
  getDecodedBuffer(): Uint8Array;
}

type CodecFactory = () => Promise<{ JPEGDecoder: new () => JpegDecoder }>;

const require = createRequire(import.meta.url);
let decoder: Promise<JpegDecoder> | undefined;

function wasmDecoder(): Promise<JpegDecoder> {
  decoder ??= (require('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs') as CodecFactory)().then((codec) => new codec.JPEGDecoder());
  return decoder;
}

const SOF_BASELINE = 0xc0;
const SOF_EXTENDED = 0xc1;
const SOF_PROGRESSIVE = 0xc2;
const SOS = 0xda;
const APP2 = 0xe2;
const APP14 = 0xee;
const ICC_TAG = 'ICC_PROFILE\0';
const ADOBE_TAG = 'Adobe';

/**
 * Whether the headers (up to the first scan) describe a frame the fast path decodes exactly like sharp:
 * Huffman-coded baseline, extended or progressive, 8 bits, 1 or 3 components, no ICC profile, no Adobe
 * marker, and the file ends with the end-of-image marker.
 */
export function isPlainJpeg(data: Uint8Array): boolean {
  const n = data.length;
  if (n < 4 || data[0] !== 0xff || data[1] !== 0xd8 || data[n - 2] !== 0xff || data[n - 1] !== 0xd9) return false;
  let frame = false;
  for (let i = 2; i + 4 <= n;) {
    if (data[i] !== 0xff) return false;
    const marker = data[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const length = (data[i + 2] << 8) | data[i + 3];
    if (length < 2 || i + 2 + length > n) return false;
    const body = i + 4;
    const tag = (s: string) => length - 2 >= s.length && String.fromCharCode(...data.subarray(body, body + s.length)) === s;
    if (marker === SOS) return frame;
    if (marker === APP2 && tag(ICC_TAG)) return false;
    if (marker === APP14 && tag(ADOBE_TAG)) return false;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      // A start-of-frame marker: only the Huffman-coded 8-bit kinds qualify.
      if (marker !== SOF_BASELINE && marker !== SOF_EXTENDED && marker !== SOF_PROGRESSIVE) return false;
      const precision = data[body];
      const components = data[body + 5];
      if (precision !== 8 || (components !== 1 && components !== 3)) return false;
      frame = true;
    }
    i += 2 + length;
  }
  return false;
}

/**
 * Interleaved 8-bit RGB of a plain JPEG (isPlainJpeg) that is exactly width x height, or undefined when the
 * fast path does not apply and sharp must decode it.
 */
export async function decodePlainJpeg(data: Uint8Array, width: number, height: number): Promise<Uint8Array | undefined> {
  if (!isPlainJpeg(data)) return undefined;
  const d = await wasmDecoder();
  try {
    d.getEncodedBuffer(data.length).set(data);
    d.decode();
    const info = d.getFrameInfo();
    if (info.width !== width || info.height !== height || info.bitsPerSample !== 8 || info.componentCount !== 3) return undefined;
    // A view of WebAssembly memory that the next decode overwrites: copy it out.
    return d.getDecodedBuffer().slice(0, width * height * 3);
  } catch {
    return undefined;
  }
}
