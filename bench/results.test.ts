/**
 * bench/results keeps one folder per benchmark, files named by date, commit and machine, each carrying the
 * metadata block every bench writes (results.ts); a loose, misnamed or unlabelled file fails here.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultResultPath, OUT_DIR, resultMeta, RESULTS_DIR, savedResultPath, summaryText, writeResult, type ResultMeta } from './results.js';

const NAME = /^(\d{4}-\d{2}-\d{2})-([0-9a-f]{7,40}|unknown)-([a-z0-9]+)(-run\d+)?\.(json|png)$/;
const META_KEYS = ['benchmark', 'commit', 'machine', 'cores', 'device', 'command', 'date', 'node'] as const;

function entries(dir: string): string[] {
  return readdirSync(dir).map((f) => path.join(dir, f));
}

describe('bench/results', () => {
  const folders = entries(RESULTS_DIR);

  it('holds only benchmark folders, each of files named <date>-<commit>-<machine>[-runN]', () => {
    expect(folders.length).toBeGreaterThan(0);
    const loose = folders.filter((f) => !statSync(f).isDirectory()).map((f) => path.relative(RESULTS_DIR, f));
    expect(loose).toEqual([]);
    const misnamed = folders.flatMap(entries).filter((f) => !statSync(f).isFile() || !NAME.test(path.basename(f)));
    expect(misnamed.map((f) => path.relative(RESULTS_DIR, f))).toEqual([]);
  });

  it('gives every JSON the metadata block, matching its folder and its name', () => {
    const wrong: string[] = [];
    for (const file of folders.flatMap(entries).filter((f) => f.endsWith('.json'))) {
      const rel = path.relative(RESULTS_DIR, file);
      const meta = (JSON.parse(readFileSync(file, 'utf8')) as { meta?: Partial<Record<(typeof META_KEYS)[number], unknown>> }).meta;
      if (!meta) {
        wrong.push(`${rel}: no meta`);
        continue;
      }
      const missing = META_KEYS.filter((k) => !(k in meta));
      if (missing.length) wrong.push(`${rel}: meta lacks ${missing.join(', ')}`);
      const [, date, commit, machine] = NAME.exec(path.basename(file))!;
      if (meta.benchmark !== path.basename(path.dirname(file))) wrong.push(`${rel}: meta.benchmark ${String(meta.benchmark)}`);
      if (typeof meta.date !== 'string' || !meta.date.startsWith(date)) wrong.push(`${rel}: meta.date ${String(meta.date)}`);
      if ((meta.commit ?? 'unknown') !== commit) wrong.push(`${rel}: meta.commit ${String(meta.commit)}`);
      if (meta.machine !== machine) wrong.push(`${rel}: meta.machine ${String(meta.machine)}`);
    }
    expect(wrong).toEqual([]);
  });

  it('keeps a picture only beside the JSON of the same run', () => {
    const files = folders.flatMap(entries);
    const orphans = files.filter((f) => f.endsWith('.png') && !files.includes(f.replace(/\.png$/, '.json')));
    expect(orphans).toEqual([]);
  });
});

describe('savedResultPath', () => {
  const meta: ResultMeta = { ...resultMeta('fleet'), commit: 'abc1234', machine: '2core', date: '2026-12-07T08:00:00.000Z' };

  it('names a run by date, commit and machine, and numbers the runs that share them', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-results-'));
    try {
      const first = savedResultPath(meta, dir);
      expect(path.relative(dir, first)).toBe(path.join('fleet', '2026-12-07-abc1234-2core.json'));
      mkdirSync(path.dirname(first), { recursive: true });
      writeFileSync(first, '{}');
      const second = savedResultPath(meta, dir);
      expect(path.basename(second)).toBe('2026-12-07-abc1234-2core-run2.json');
      writeFileSync(second, '{}');
      expect(path.basename(savedResultPath(meta, dir))).toBe('2026-12-07-abc1234-2core-run3.json');
      expect(NAME.test(path.basename(second))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('writeResult', () => {
  const meta: ResultMeta = { ...resultMeta('fleet'), commit: 'abc1234', machine: '2core', device: 'cpu', date: '2026-12-07T08:00:00.000Z' };
  const printed = { stdout: '', stderr: '' };
  const capture = () => {
    printed.stdout = printed.stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((printed.stdout += String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((printed.stderr += String(chunk)), true));
  };
  afterEach(() => vi.restoreAllMocks());

  it('writes the JSON to --out and prints only the summary, saying where the JSON went', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-results-'));
    try {
      const out = path.join(dir, 'run.json');
      capture();
      writeResult(meta, { throughputRps: 812 }, { out }, ['step: 812 req/s', 'verdict: PASS']);
      vi.restoreAllMocks();
      expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual({ meta, throughputRps: 812 });
      expect(printed.stdout.split('\n')).toEqual(['fleet: 2core, cpu, commit abc1234', '  step: 812 req/s', '  verdict: PASS', `JSON: ${out}`, '']);
      expect(printed.stderr).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with --json prints the JSON on stdout for a script, the summary on stderr, and writes no default file', () => {
    capture();
    const json = writeResult(meta, { throughputRps: 812 }, { json: true }, ['step: 812 req/s']);
    vi.restoreAllMocks();
    expect(printed.stdout).toBe(json);
    expect(JSON.parse(printed.stdout)).toEqual({ meta, throughputRps: 812 });
    expect(printed.stderr).toContain('  step: 812 req/s\nJSON: stdout\n');
  });

  it('names a file inside the working directory by its relative path', () => {
    expect(summaryText(meta, [], [path.join(process.cwd(), 'bench', 'out', 'fleet.json')])).toContain(`JSON: ${path.join('bench', 'out', 'fleet.json')}\n`);
  });

  it('without --out or --save names a file under the git-ignored bench/out', () => {
    expect(defaultResultPath(meta)).toBe(path.join(OUT_DIR, 'fleet-2026-12-07T08-00-00-000Z.json'));
    expect(path.relative(RESULTS_DIR, OUT_DIR)).toBe(path.join('..', 'out'));
    expect(readFileSync(path.join(RESULTS_DIR, '..', '..', '.gitignore'), 'utf8').split('\n')).toContain('/bench/out/');
  });
});
