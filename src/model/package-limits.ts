/**
 * How much of a model package the server reads, and how long it waits on the disk: the one place these
 * bounds live (docs/model-package.md, "Confinement"). A package is files an operator dropped into a folder,
 * possibly from an untrusted exporter; these bounds make a hostile one cost a refusal, not a stuck load.
 */

export interface PackageLimits {
  /** Largest manifest.json, in bytes. */
  readonly manifestBytes: number;
  /** Largest tokenizer file (text.tokenizer), in bytes: Hugging Face tokenizer.json files of large vocabularies are tens of MB. */
  readonly tokenizerBytes: number;
  /** Largest file listed in manifest.files (ONNX graphs and their external data), in bytes. */
  readonly fileBytes: number;
  /**
   * Longest one disk operation (resolve, stat, open, one read) may take before the package is refused. A
   * regular file on a working disk answers in milliseconds; this bounds a hung network mount. In ms.
   */
  readonly stallMs: number;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const DEFAULT_PACKAGE_LIMITS: Readonly<PackageLimits> = Object.freeze({
  manifestBytes: 1 * MiB,
  tokenizerBytes: 64 * MiB,
  // ONNX keeps a graph and its weights under 2 GiB per protobuf file; external data files hold the rest of a
  // multi-billion-parameter model.
  fileBytes: 32 * GiB,
  stallMs: 10_000,
});
