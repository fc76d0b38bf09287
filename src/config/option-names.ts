/** How an option's key names its flag and its environment variable (docs/operations.md, "Configuration"). */

/** `--<key-in-kebab-case>`, e.g. `--model-repository`. */
export function flagName(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** `DUST_<KEY_IN_CAPS>`, e.g. DUST_MODEL_REPOSITORY. */
export function envName(option: string): string {
  return `DUST_${option.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}
