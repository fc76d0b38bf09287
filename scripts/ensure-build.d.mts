// Types of scripts/ensure-build.mjs for the TypeScript that imports it (test/support/build-dist.ts and its test).
export declare const ROOT: string;
export declare const INPUT_DIRS: readonly string[];
export declare const INPUT_FILES: readonly string[];
export declare const OUTPUT_DIRS: Readonly<Record<string, string>>;
export declare const BUILT: readonly string[];
/** Why the build must run, or undefined when it is current. */
export declare function staleReason(root?: string): string | undefined;
/** Runs `npm run build:bench` when the build is stale, saying why; returns whether it built. */
export declare function ensureBuild(root?: string, say?: (line: string) => void): boolean;
