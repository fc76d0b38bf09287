// What the GPU scripts share: `--name value` options, and the built app (dist/, node_modules) they run against,
// which on the GPU host is the unpacked bundle in /tmp/app rather than this checkout.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const args = process.argv.slice(2);

export function option(name, dflt) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
}

/** The app given by --app (default: the current folder): its require, and import() of its built modules. */
export function app() {
  const dir = path.resolve(option('app', process.cwd()));
  return {
    dir,
    require: createRequire(path.join(dir, 'package.json')),
    load: (file) => import(pathToFileURL(path.join(dir, file)).href),
  };
}

/** ||got - want|| / ||want|| over two arrays of numbers. */
export function relL2(got, want) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** The upper median of a list of timings (the list is left as it was). */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
