/**
 * A throwaway PostgreSQL server for tests: this host's PostgreSQL binaries (Debian's postgresql-15), a cluster
 * made by initdb in a temp folder, on a free loopback port, with trust authentication for the `dust` user.
 * PostgreSQL refuses to run as root, so as root the binaries run as the `postgres` user (runuser). Tests skip
 * with NO_POSTGRES where no binaries are installed.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './harness.js';

function findBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => path.join(root, v, 'bin')).find((bin) => existsSync(path.join(bin, 'initdb')) && existsSync(path.join(bin, 'pg_ctl')));
}

const BIN = findBin();
const asRoot = process.getuid?.() === 0;

function postgresUser(): { uid: number; gid: number } | undefined {
  try {
    return {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
    };
  } catch {
    return undefined;
  }
}

const OWNER = asRoot ? postgresUser() : undefined;

/** Why the PostgreSQL tests cannot run here; undefined when they can. */
export const NO_POSTGRES: string | undefined = !BIN
  ? 'no PostgreSQL server binaries (/usr/lib/postgresql/<version>/bin/initdb); apt-get install postgresql-15'
  : asRoot && !OWNER
    ? 'running as root and there is no postgres user to run PostgreSQL as'
    : undefined;

function run(tool: string, args: readonly string[]): string {
  const bin = path.join(BIN!, tool);
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, [...args]];
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface TestPostgres {
  readonly port: number;
  /** postgres://dust@127.0.0.1:<port>/<database>. */
  url(database?: string): string;
  /** A new empty database; returns its URL. */
  database(): Promise<string>;
  /** Runs SQL on the `postgres` database (as the superuser `dust`). */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** Stops the server (fast shutdown: connections are cut), keeping its files. */
  stop(): void;
  /** Starts it again on the same port and files. */
  start(): void;
  /** Stops it and removes its files. */
  remove(): void;
}

let databases = 0;

/** initdb + pg_ctl start on a free port; about a second. */
export async function startPostgres(): Promise<TestPostgres> {
  if (NO_POSTGRES) throw new Error(NO_POSTGRES);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dust-pg-'));
  if (OWNER) chownSync(dir, OWNER.uid, OWNER.gid);
  const data = path.join(dir, 'data');
  const port = await freePort();
  run('initdb', ['-D', data, '-U', 'dust', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const start = () =>
    run('pg_ctl', [
      '-D',
      data,
      '-l',
      path.join(dir, 'log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`,
      'start',
    ]);
  const stop = () => run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
  start();
  let running = true;
  const url = (database = 'postgres') => `postgres://dust@127.0.0.1:${port}/${database}`;
  const query = async <T extends pg.QueryResultRow>(sql: string, params: unknown[] = [], database = 'postgres'): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url(database) });
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    port,
    url,
    query,
    async database() {
      const name = `test_${process.pid}_${++databases}`;
      await query(`CREATE DATABASE ${name}`);
      return url(name);
    },
    stop() {
      if (running) stop();
      running = false;
    },
    start() {
      if (!running) start();
      running = true;
    },
    remove() {
      try {
        if (running) stop();
      } finally {
        running = false;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
