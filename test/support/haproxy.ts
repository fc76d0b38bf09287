/** HAProxy's view of the replicas behind deploy/lb/haproxy.cfg, from its stats page. */
import { eventually } from './eventually.js';

/** "<status> <last check result>" per server of the `dust` backend, e.g. { r1: 'UP L7OK', r2: 'DOWN L4CON' }. */
export async function haproxyServers(statsBase: string): Promise<Record<string, string>> {
  const csv = await (await fetch(`${statsBase}/stats;csv`)).text();
  const rows = csv.split('\n').map((l) => l.split(','));
  const header = rows[0]!;
  const status = header.indexOf('status');
  const check = header.indexOf('check_status');
  return Object.fromEntries(rows.filter((r) => r[0] === 'dust' && /^r\d$/.test(r[1]!)).map((r) => [r[1]!, `${r[status]} ${r[check]}`]));
}

/** Resolves with the view once HAProxy has checked all three replicas SERVING; rejects after timeoutMs. */
export async function allReplicasUp(statsBase: string, timeoutMs = 20_000): Promise<Record<string, string>> {
  let view: Record<string, string> = {};
  // A failed fetch (the stats port may not be open yet) is retried; eventually() keeps it as the cause.
  await eventually(
    async () => {
      view = await haproxyServers(statsBase);
      return Object.keys(view).length === 3 && Object.values(view).every((s) => s === 'UP L7OK');
    },
    { what: 'HAProxy to check every replica UP', timeoutMs, intervalMs: 100 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last view ${JSON.stringify(view)}`, { cause: err.cause });
  });
  return view;
}
