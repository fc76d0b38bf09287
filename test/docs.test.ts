/**
 * The documentation stays true to the code and self-contained: every proto RPC and field is in docs/api.md,
 * every option (with its flag and environment variable) and every metric in docs/operations.md, and every link
 * of the README and docs/ points at a file of this repository (and a heading that exists).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVE_OPTIONS, envName, optionsMarkdownTable } from '../src/config/index.js';
import { SPEC_COUNTERS, SPEC_GAUGES, SPEC_HISTOGRAMS } from './support/prometheus.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const PROTO_DIR = 'proto/dust/serving/v1';
const protos = readdirSync(path.join(ROOT, PROTO_DIR)).filter((f) => f.endsWith('.proto'));
const DOCS = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6} (.+)$/gm)) {
    out.add(
      m[1]
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    );
  }
  return out;
}

describe('docs/api.md', () => {
  const api = read('docs/api.md');

  it.each(protos)('names every RPC and every field of %s', (file) => {
    const proto = read(`${PROTO_DIR}/${file}`).replace(/\/\/.*$/gm, '');
    const rpcs = [...proto.matchAll(/\brpc (\w+)\(/g)].map((m) => m[1]);
    const fields = [...proto.matchAll(/^\s*(?:repeated |optional )?[\w.]+ (\w+) = \d+;/gm)].map((m) => m[1]);
    expect(fields.length).toBeGreaterThan(0);
    const missing = [...rpcs, ...fields].filter((name) => !new RegExp(`\\b${name}\\b`).test(api));
    expect(missing, `in ${file} but not in docs/api.md`).toEqual([]);
  });
});

describe('docs/operations.md', () => {
  const ops = read('docs/operations.md');

  it('has a row for every server option with its flag and environment variable', () => {
    const missing = Object.keys(DEFAULT_SERVE_OPTIONS).filter((key) => {
      const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      return !ops.includes(`| ${key} | \`${flag}\` | \`${envName(key as keyof typeof DEFAULT_SERVE_OPTIONS)}\` |`);
    });
    expect(missing).toEqual([]);
  });

  it('holds the options table as the option table writes it (npm run docs:options rewrites it)', () => {
    expect(ops).toContain(optionsMarkdownTable());
  });

  it('lists every metric the server exposes', () => {
    const missing = [...SPEC_COUNTERS, ...SPEC_GAUGES, ...SPEC_HISTOGRAMS].filter((name) => !ops.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});

describe('links', () => {
  it.each(DOCS)('%s links only to files of this repository, and to headings that exist', (file) => {
    const text = read(file);
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      const [rel, anchor] = target.split('#');
      const resolved = rel ? path.resolve(path.dirname(path.join(ROOT, file)), rel) : path.join(ROOT, file);
      if (!resolved.startsWith(`${ROOT}${path.sep}`) || !existsSync(resolved)) broken.push(target);
      else if (anchor && resolved.endsWith('.md') && !anchors(readFileSync(resolved, 'utf8')).has(anchor)) broken.push(target);
    }
    expect(broken).toEqual([]);
  });
});
