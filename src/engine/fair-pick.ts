/**
 * Fair selection of rows for one batch when more are ready than fit (so that one robot that floods cannot
 * take more than its share). Round-robin across robots, each robot's rows oldest first; the robots
 * themselves are visited in order of their oldest ready row, so no robot starves.
 */
export interface Fairable {
  readonly robotId: string;
  /** Arrival order; smaller = older. */
  readonly seq: number;
}

export function fairPick<T extends Fairable>(ready: readonly T[], max: number): T[] {
  if (ready.length <= max) return [...ready];
  const byRobot = new Map<string, T[]>();
  for (const row of [...ready].sort((a, b) => a.seq - b.seq)) {
    const list = byRobot.get(row.robotId);
    if (list) list.push(row);
    else byRobot.set(row.robotId, [row]);
  }
  const queues = [...byRobot.values()];
  const picked: T[] = [];
  for (let round = 0; picked.length < max; round++) {
    let any = false;
    for (const q of queues) {
      if (round < q.length) {
        picked.push(q[round]);
        any = true;
        if (picked.length === max) break;
      }
    }
    if (!any) break;
  }
  return picked;
}

/** fairPick over primary rows first; shadow rows (mirrored traffic) only fill what is left. */
export function priorityPick<T extends Fairable & { readonly input: { readonly priority?: string } }>(ready: readonly T[], max: number): T[] {
  const primary = ready.filter((r) => r.input.priority !== 'shadow');
  const picked = fairPick(primary, max);
  if (picked.length === max || picked.length === ready.length) return picked;
  return [
    ...picked,
    ...fairPick(
      ready.filter((r) => r.input.priority === 'shadow'),
      max - picked.length,
    ),
  ];
}
