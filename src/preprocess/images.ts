/**
 * Camera images -> vlm.onnx's `pixel_values` row (docs/model-package.md: [V, 3, H, W], V in manifest.cameras order;
 * float32 normalized with the manifest's mean/std, or for a package whose VLM normalises itself
 * (`image.pixel_dtype` uint8) the resized 8-bit values as they are), decoded and resized by sharp (libvips).
 *
 * Choices, each matching what the policy saw in training or protecting the server:
 * - Resize: `fit: 'fill'` to exactly H x W, ignoring aspect ratio, so the whole field of view is kept (policies
 *   are trained on whole frames; cropping would hide the gripper or the objects at the edges). Kernel `cubic`
 *   (Catmull-Rom, antialiased when downscaling), the closest libvips match to PIL's BICUBIC that Hugging Face
 *   SigLIP/Eagle image processors use; JPEG shrink-on-load is off so the result does not depend on it.
 *   A frame already at H x W is not resampled.
 * - Colour: decoded to 8-bit sRGB, 3 channels. Alpha is dropped (not composited), grey is replicated, 16-bit
 *   is reduced to 8-bit, as PIL's `convert('RGB')` does. EXIF orientation is ignored, as PIL's `open` does.
 * - Normalization (float32 packages): each value is (x / 255 - mean[c]) / std[c], through a 256-entry table per
 *   channel. A uint8 package's row is the same pixels before that step: a quarter of the bytes to copy to the
 *   device, and the graph applies the same affine map there.
 * - Safety: the pixel count is checked against a limit before any pixel is decoded (from the header, read by
 *   image-size in JavaScript: a sharp `metadata` call cost as much main-thread time as the decode itself) and
 *   again by libvips (`limitInputPixels`), so a decompression bomb costs a header parse. Only data that starts with the JPEG or PNG signature reaches sharp. `failOn: 'error'` rejects
 *   truncated or corrupt data but tolerates benign libjpeg warnings that some MJPEG cameras trigger.
 * - Decoder: a complete 8-bit JPEG already at H x W without an ICC profile, the commonest camera frame, is
 *   decoded by libjpeg-turbo in WebAssembly on the calling thread (plain-jpeg.ts), bit-identical to sharp and
 *   a seventh of its CPU; everything else by sharp.
 * - Threads: sharp runs each image on the libuv threadpool (size UV_THREADPOOL_SIZE, default 4, shared with
 *   the tokenizer and fs). The server calls this from its decode pool, never from the event loop. See
 *   `configureImageDecoding` for libvips' own threads.
 */
import { imageSize } from 'image-size';
import sharp, { type OutputInfo } from 'sharp';
import { InvalidArgumentError, ModelPackageError, quote } from '../errors/index.js';
import type { Manifest } from '../model/manifest.js';
import { decodePlainJpeg } from './plain-jpeg.js';

/** Images larger than this many pixels are refused before decoding. */
export const DEFAULT_MAX_IMAGE_PIXELS = 4096 * 4096;

/** See the module comment. */
export const RESIZE_KERNEL = 'cubic' as const;

/**
 * libvips threads per image. Camera frames are small, so one thread per image and many images in parallel
 * (one per libuv threadpool thread) beats several threads fighting over each image under load.
 */
export const DEFAULT_SHARP_CONCURRENCY = 1;

/** `ImageEncoding` of docs/api.md, without the proto's IMAGE_ENCODING_ prefix. */
export type ImageEncodingName = 'RAW_RGB8' | 'JPEG' | 'PNG' | 'UNSPECIFIED';

/** One `Image` of a PredictRequest. Width and height are uint32 (0 = unset for JPEG/PNG). */
export interface ImageInput {
  readonly camera: string;
  readonly encoding: ImageEncodingName;
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export interface DecodeViewsOptions {
  /**
   * Write the row into this buffer (e.g. a batch's `pixel_values`) instead of allocating one. Nothing is
   * written unless every view decodes.
   * @default a new row of pixelValuesLength(manifest) elements, of the package's pixel type (emptyPixelRow)
   */
  readonly out?: PixelRow;
  /**
   * Index in `out` of the row's first element.
   * @default 0
   */
  readonly offset?: number;
  /**
   * Largest accepted source image, in pixels (width * height).
   * @default DEFAULT_MAX_IMAGE_PIXELS (4096 * 4096)
   */
  readonly maxPixels?: number;
}

export interface ImageDecodingSettings {
  /**
   * libvips worker threads per image (sharp.concurrency).
   * @default DEFAULT_SHARP_CONCURRENCY (1)
   */
  readonly concurrency?: number;
  /**
   * libvips' operation cache; useless for never-repeating camera frames, so off.
   * @default false
   */
  readonly cache?: boolean;
}

let sharpConfigured = false;

/**
 * Sets sharp's process-wide settings. `decodeViews` applies the defaults on first use if this was not
 * called; call it at start-up to choose others.
 */
export function configureImageDecoding(settings: ImageDecodingSettings = {}): void {
  const concurrency = settings.concurrency ?? DEFAULT_SHARP_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 0) {
    throw new RangeError(`image decoding concurrency must be a non-negative integer, got ${concurrency}`);
  }
  sharp.concurrency(concurrency);
  sharp.cache(settings.cache ?? false);
  sharpConfigured = true;
}

/** What decoding needs of a manifest: the cameras (order of the V axis) and the image section. */
export type ImageSpec = Pick<Manifest, 'cameras' | 'image'>;

/** Element type of vlm.onnx's `pixel_values` (docs/model-package.md, "Images"). */
export type PixelDtype = 'float32' | 'uint8';

/** One request's `pixel_values` row [V, 3, H, W]: normalized float32, or the resized 8-bit pixels for a uint8 package. */
export type PixelRow = Float32Array | Uint8Array;

/** The package's pixel type: absent from manifests written before the field, whose VLMs all take float32. */
export function pixelDtypeOf(manifest: Pick<Manifest, 'image'>): PixelDtype {
  return manifest.image.pixel_dtype ?? 'float32';
}

export function pixelRowDtype(row: PixelRow): PixelDtype {
  return row instanceof Uint8Array ? 'uint8' : 'float32';
}

/** A zeroed row of `length` elements of the given type. */
export function emptyPixelRow(dtype: PixelDtype, length: number): PixelRow {
  return dtype === 'uint8' ? new Uint8Array(length) : new Float32Array(length);
}

/** Number of elements in one request's `pixel_values` row: V * 3 * H * W. */
export function pixelValuesLength(manifest: ImageSpec): number {
  return manifest.cameras.length * 3 * manifest.image.height * manifest.image.width;
}

/**
 * Validates and decodes one request's images into its `pixel_values` row, [V, 3, H, W] in manifest.cameras
 * order whatever the order of `images`. Views are decoded concurrently.
 * @returns the row: `out.subarray(offset, offset + length)` when `out` is given, else a new array.
 * @throws InvalidArgumentError with a message that says what to fix; the first bad view in camera order wins.
 */
export async function decodeViews(images: readonly ImageInput[], manifest: ImageSpec, options: DecodeViewsOptions = {}): Promise<PixelRow> {
  if (!sharpConfigured) configureImageDecoding();
  const { height, width } = manifest.image;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_IMAGE_PIXELS;
  const length = pixelValuesLength(manifest);
  const offset = options.offset ?? 0;
  const dtype = pixelDtypeOf(manifest);
  const fits = (out: PixelRow) => Number.isInteger(offset) && offset >= 0 && offset + length <= out.length;
  if (options.out !== undefined && !fits(options.out)) {
    throw new RangeError(`out has ${options.out.length} elements; a row of ${length} does not fit at ${offset}`);
  }
  if (options.out !== undefined && pixelRowDtype(options.out) !== dtype) {
    throw new RangeError(`out holds ${pixelRowDtype(options.out)} values; this package's pixel_values are ${dtype}`);
  }

  const lut = dtype === 'float32' ? normalizationTable(manifest.image) : undefined;
  const checked = checkViews(images, manifest, maxPixels);
  const target: Size = { width, height };
  const settled = await Promise.allSettled(checked.map((view) => decodeToRgb(view, target, maxPixels)));
  const pixels = settled.map((s) => {
    if (s.status === 'rejected') throw s.reason;
    return s.value;
  });

  const row = options.out?.subarray(offset, offset + length) ?? emptyPixelRow(dtype, length);
  const plane = height * width;
  // Interleaved RGB to planes, one loop per element type so that each stays monomorphic.
  pixels.forEach((rgb, v) => {
    const base = v * 3 * plane;
    if (lut === undefined) {
      for (let i = 0; i < plane; i++) {
        row[base + i] = rgb[3 * i];
        row[base + plane + i] = rgb[3 * i + 1];
        row[base + 2 * plane + i] = rgb[3 * i + 2];
      }
      return;
    }
    for (let i = 0; i < plane; i++) {
      row[base + i] = lut[rgb[3 * i]];
      row[base + plane + i] = lut[256 + rgb[3 * i + 1]];
      row[base + 2 * plane + i] = lut[512 + rgb[3 * i + 2]];
    }
  });
  return row;
}

interface Size {
  readonly width: number;
  readonly height: number;
}

/** Returns the images in manifest camera order, after checking there is exactly one per camera. */
function matchCameras(images: readonly ImageInput[], cameras: readonly string[]): ImageInput[] {
  const list = `[${cameras.join(', ')}]`;
  if (images.length !== cameras.length) {
    throw new InvalidArgumentError(`images: expected ${cameras.length} images, one per camera ${list}; got ${images.length}`);
  }
  const byCamera = new Map<string, ImageInput>();
  images.forEach((img, i) => {
    if (!cameras.includes(img.camera)) {
      throw new InvalidArgumentError(`images[${i}]: unknown camera ${quote(img.camera)}; valid cameras are ${list}`);
    }
    if (byCamera.has(img.camera)) {
      throw new InvalidArgumentError(`images[${i}]: camera ${quote(img.camera)} appears twice; send one image per camera ${list}`);
    }
    byCamera.set(img.camera, img);
  });
  // Equal counts, no unknowns, no duplicates: every camera is present.
  return cameras.map((c) => byCamera.get(c) as ImageInput);
}

/** File signatures: only data that starts with one reaches a decoder. */
const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(data: Uint8Array, signature: readonly number[]): boolean {
  return data.length >= signature.length && signature.every((b, i) => data[i] === b);
}

/** One view that passed every check that needs no decoding: its bytes, encoding and source size. */
export interface CheckedView {
  readonly camera: string;
  readonly encoding: 'RAW_RGB8' | 'JPEG' | 'PNG';
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

/**
 * Every check of a request's images that needs no pixel decoded: one image per camera, the encoding, RAW_RGB8
 * sizes, signatures, the header's size against width/height and the pixel limit. Synchronous and cheap (a header
 * read per view), so the server runs it before admission and a request with a wrong image never takes a queue
 * place; decoding runs it again on the decode threads, and only undecodable data is found there.
 * @returns the views in manifest camera order.
 * @throws InvalidArgumentError with a message that says what to fix; the first bad view in camera order wins.
 */
export function checkViews(images: readonly ImageInput[], manifest: ImageSpec, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): CheckedView[] {
  const target: Size = manifest.image;
  return matchCameras(images, manifest.cameras).map((img) => checkView(img, target, maxPixels));
}

function checkView(img: ImageInput, target: Size, maxPixels: number): CheckedView {
  const where = `images[${img.camera}]`;
  if (!(img.data instanceof Uint8Array)) {
    throw new InvalidArgumentError(`${where}: data must be bytes`);
  }
  switch (img.encoding) {
    case 'RAW_RGB8':
      return checkRaw(img, where, target, maxPixels);
    case 'JPEG':
    case 'PNG':
      return checkEncoded(img, img.encoding, where, target, maxPixels);
    case 'UNSPECIFIED':
      throw new InvalidArgumentError(`${where}: encoding is UNSPECIFIED; set it to RAW_RGB8, JPEG or PNG`);
    default:
      throw new InvalidArgumentError(`${where}: unsupported encoding ${quote(String(img.encoding))}; use RAW_RGB8, JPEG or PNG`);
  }
}

function checkPixelLimit(where: string, width: number, height: number, maxPixels: number, target: Size): void {
  if (width * height > maxPixels) {
    throw new InvalidArgumentError(
      `${where}: ${width}x${height} = ${width * height} pixels exceeds the limit of ${maxPixels}; ` +
        `downscale on the robot (the model uses ${target.width}x${target.height})`,
    );
  }
}

function checkRaw(img: ImageInput, where: string, target: Size, maxPixels: number): CheckedView {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new InvalidArgumentError(`${where}: RAW_RGB8 needs the frame's width and height, got ${width}x${height}; set both to nonzero values`);
  }
  checkPixelLimit(where, width, height, maxPixels, target);
  const expected = width * height * 3;
  if (data.length !== expected) {
    throw new InvalidArgumentError(`${where}: RAW_RGB8 data has ${data.length} bytes, expected width*height*3 = ${expected}`);
  }
  return { camera: img.camera, encoding: 'RAW_RGB8', data, width, height };
}

function undecodable(where: string, encoding: 'JPEG' | 'PNG', cause: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`${where}: ${encoding} data could not be decoded (${libvipsReason(cause)}); send a complete, valid ${encoding}`, { cause });
}

function checkEncoded(img: ImageInput, encoding: 'JPEG' | 'PNG', where: string, target: Size, maxPixels: number): CheckedView {
  const { data } = img;
  if (data.length === 0) {
    throw new InvalidArgumentError(`${where}: ${encoding} data is empty`);
  }
  const isJpeg = startsWith(data, JPEG_SIGNATURE);
  const isPng = startsWith(data, PNG_SIGNATURE);
  if (encoding === 'JPEG' ? !isJpeg : !isPng) {
    const hint = isJpeg || isPng ? `it looks like ${isJpeg ? 'JPEG' : 'PNG'}; set encoding accordingly` : 'send JPEG or PNG bytes, or RAW_RGB8';
    throw new InvalidArgumentError(`${where}: data is not a ${encoding} image (wrong signature); ${hint}`);
  }
  let header: { width?: number; height?: number };
  try {
    // Header only: no pixel is decoded here, so this is where oversized images are stopped cheaply.
    header = imageSize(data);
  } catch (cause) {
    throw undecodable(where, encoding, cause);
  }
  const srcWidth = header.width;
  const srcHeight = header.height;
  if (!srcWidth || !srcHeight) {
    throw undecodable(where, encoding, new Error('no image dimensions in the header'));
  }
  if ((img.width !== 0 && img.width !== srcWidth) || (img.height !== 0 && img.height !== srcHeight)) {
    throw new InvalidArgumentError(
      `${where}: width/height say ${img.width}x${img.height} but the ${encoding} is ${srcWidth}x${srcHeight}; ` + 'set them to the image size, or to 0',
    );
  }
  checkPixelLimit(where, srcWidth, srcHeight, maxPixels, target);
  return { camera: img.camera, encoding, data, width: srcWidth, height: srcHeight };
}

/** Decodes one checked view to interleaved 8-bit RGB at the target size. */
async function decodeToRgb(view: CheckedView, target: Size, maxPixels: number): Promise<Uint8Array> {
  return view.encoding === 'RAW_RGB8' ? decodeRaw(view, target, maxPixels) : decodeEncoded(view, view.encoding, target, maxPixels);
}

async function decodeRaw(view: CheckedView, target: Size, maxPixels: number): Promise<Uint8Array> {
  const { width, height, data } = view;
  if (width === target.width && height === target.height) return data;
  const { data: rgb } = await sharp(asBuffer(data), {
    raw: { width, height, channels: 3 },
    limitInputPixels: maxPixels,
  })
    .resize(target.width, target.height, { fit: 'fill', kernel: RESIZE_KERNEL })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return rgb;
}

async function decodeEncoded(view: CheckedView, encoding: 'JPEG' | 'PNG', target: Size, maxPixels: number): Promise<Uint8Array> {
  const { data, width: srcWidth, height: srcHeight } = view;
  const where = `images[${view.camera}]`;
  const atSize = srcWidth === target.width && srcHeight === target.height;
  if (encoding === 'JPEG' && atSize) {
    const rgb = await decodePlainJpeg(data, srcWidth, srcHeight);
    if (rgb) return rgb;
  }

  const image = sharp(asBuffer(data), { failOn: 'error', limitInputPixels: maxPixels, autoOrient: false });
  if (!atSize) {
    image.resize(target.width, target.height, { fit: 'fill', kernel: RESIZE_KERNEL, fastShrinkOnLoad: false });
  }
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await image.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw undecodable(where, encoding, cause);
  }
  const { info } = out;
  if (info.channels !== 3 || info.width !== target.width || info.height !== target.height) {
    // libvips guarantees this for sRGB output; a violation is a server bug, not the client's.
    throw new Error(`sharp produced ${info.width}x${info.height}x${info.channels}, expected ${target.width}x${target.height}x3`);
  }
  return out.data;
}

/** libvips' reason, one line: its messages span lines and repeat (e.g. the same warning per scanline). */
function libvipsReason(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  const lines = [
    ...new Set(
      message
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== ''),
    ),
  ];
  const reason = lines.join('; ');
  const max = 200;
  return reason.length > max ? `${reason.slice(0, max)}...` : reason;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Per mean/std values: decode workers get the image section by structured clone, a new object every time. */
const tables = new Map<string, Float32Array>();

/** lut[c * 256 + x] = (x / 255 - mean[c]) / std[c]. */
function normalizationTable(image: Manifest['image']): Float32Array {
  const key = `${image.mean.join(',')}/${image.std.join(',')}`;
  let lut = tables.get(key);
  if (lut === undefined) {
    lut = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) {
      const mean = image.mean[c];
      const std = image.std[c];
      if (!Number.isFinite(mean) || !Number.isFinite(std) || std === 0) {
        throw new ModelPackageError(`manifest.json: image.mean[${c}]/std[${c}] = ${mean}/${std} is not usable`);
      }
      for (let x = 0; x < 256; x++) lut[c * 256 + x] = (x / 255 - mean) / std;
    }
    tables.set(key, lut);
  }
  return lut;
}
