/** The service identity that logs, traces and metrics carry (OTel resource `service.name`, `service.version`). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SERVICE_NAME = 'dust-serve';

/** The package version, from the nearest package.json above this module (src/ under vitest, dist/src/ built). */
function packageVersion(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown';
  }
  return 'unknown';
}

export const SERVICE_VERSION = packageVersion();
