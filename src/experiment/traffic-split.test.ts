import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { assignVersion, normalizeWeights, stickyKeyOf, storedWeightsProblem, unitHash, type VersionWeight } from './traffic-split.js';

const robots = Array.from({ length: 10_000 }, (_, i) => `robot-${i}`);

function assignAll(salt: string, weights: VersionWeight[]): Map<string, number | undefined> {
  return new Map(robots.map((r) => [r, assignVersion(salt, stickyKeyOf('robot', r, ''), weights)]));
}

function shares(assigned: Map<string, number | undefined>): Map<number | undefined, number> {
  const counts = new Map<number | undefined, number>();
  for (const v of assigned.values()) counts.set(v, (counts.get(v) ?? 0) + 1);
  return new Map([...counts].map(([v, n]) => [v, n / assigned.size]));
}

describe('normalizeWeights', () => {
  it('scales weights to sum to 1, in version order', () => {
    expect(
      normalizeWeights([
        { version: 2, weight: 3 },
        { version: 1, weight: 1 },
      ]),
    ).toEqual([
      { version: 1, weight: 0.25 },
      { version: 2, weight: 0.75 },
    ]);
  });
  it.each([
    [[], /empty/],
    [[{ version: 1, weight: 0 }], /weight 0/],
    [[{ version: 1, weight: -1 }], /> 0/],
    [[{ version: 1, weight: Number.NaN }], /finite/],
    [[{ version: 1, weight: Infinity }], /finite/],
    [[{ version: 0, weight: 1 }], /positive integer/],
    [
      [
        { version: 1, weight: 1 },
        { version: 1, weight: 2 },
      ],
      /twice/,
    ],
    // Each weight is finite, but the sum is not: normalized, both would be 0 and no robot could be assigned.
    [
      [
        { version: 1, weight: 1e308 },
        { version: 2, weight: 1e308 },
      ],
      /sum overflows .*give smaller weights/,
    ],
    // A share too small for a double becomes 0: that version would be in the split with no way to get traffic.
    [
      [
        { version: 1, weight: 5e-324 },
        { version: 2, weight: 1e300 },
      ],
      /version 1's share .* too small/,
    ],
  ])('refuses %j', (weights, message) => {
    expect(() => normalizeWeights(weights)).toThrow(InvalidArgumentError);
    expect(() => normalizeWeights(weights)).toThrow(message);
  });

  it('accepts the largest weights whose sum is finite, and gives every version a positive share', () => {
    const got = normalizeWeights([
      { version: 1, weight: 8e307 },
      { version: 2, weight: 8e307 },
    ]);
    expect(got).toEqual([
      { version: 1, weight: 0.5 },
      { version: 2, weight: 0.5 },
    ]);
  });
});

describe('storedWeightsProblem', () => {
  it('accepts stored normalized weights and an empty list (no split)', () => {
    expect(
      storedWeightsProblem([
        { version: 1, weight: 0.25 },
        { version: 2, weight: 0.75 },
      ]),
    ).toBeUndefined();
    expect(storedWeightsProblem([])).toBeUndefined();
  });

  it.each([
    // What an older server stored for [1e308, 1e308]: both shares 0.
    [
      [
        { version: 1, weight: 0 },
        { version: 2, weight: 0 },
      ],
      /weight 0/,
    ],
    // JSON has no Infinity or NaN: they are written as null.
    [[{ version: 1, weight: null }], /weight null/],
    [[{ version: 1, weight: '0.5' }], /weight 0.5/],
    [[{ version: 1.5, weight: 1 }], /positive integer/],
    [[null], /not \{ version, weight \}/],
    [{ version: 1, weight: 1 }, /not a list/],
    ['[{"version":1,', /not a list/],
  ])('refuses %j', (weights, message) => {
    expect(storedWeightsProblem(weights)).toMatch(message);
  });
});

describe('stickyKeyOf', () => {
  it('keys by robot, or by episode when asked and the request names one', () => {
    expect(stickyKeyOf('robot', 'r1', 'e1')).toBe(stickyKeyOf('robot', 'r1', 'e2'));
    expect(stickyKeyOf('episode', 'r1', 'e1')).not.toBe(stickyKeyOf('episode', 'r1', 'e2'));
    expect(stickyKeyOf('episode', 'r1', '')).toBe(stickyKeyOf('robot', 'r1', ''));
    // A robot named like another's episode key cannot collide with it.
    expect(stickyKeyOf('robot', 'episode:r1', '')).not.toBe(stickyKeyOf('episode', 'r1', ''));
  });
});

describe('assignVersion (weighted rendezvous hashing)', () => {
  const split: VersionWeight[] = [
    { version: 1, weight: 0.9 },
    { version: 2, weight: 0.1 },
  ];

  it('is stable: the same salt, key and weights give the same version, whatever the order of the weights', () => {
    const a = assignAll('salt-a', split);
    const b = assignAll('salt-a', [...split].reverse());
    expect(b).toEqual(a);
    // Pinned values: the hash is part of the contract (replicas and restarts must agree).
    expect(unitHash('s', 'robot:r1', 1)).toBe(unitHash('s', 'robot:r1', 1));
    expect(unitHash('s', 'robot:r1', 1)).toBeGreaterThan(0);
    expect(unitHash('s', 'robot:r1', 1)).toBeLessThan(1);
  });

  it('spreads keys in proportion to the weights', () => {
    for (const weights of [
      split,
      normalizeWeights([
        { version: 1, weight: 1 },
        { version: 2, weight: 1 },
        { version: 3, weight: 2 },
      ]),
    ]) {
      const got = shares(assignAll('spread', weights));
      for (const { version, weight } of weights) {
        // 10k keys: the binomial standard error is at most 0.005; allow 4 of them.
        expect(Math.abs(got.get(version)! - weight)).toBeLessThan(0.02);
      }
    }
  });

  it('draws uniform hashes (a chi-square test over 20 bins)', () => {
    const bins = new Array<number>(20).fill(0);
    for (const r of robots) bins[Math.floor(unitHash('u', r, 7) * 20)]++;
    const expected = robots.length / 20;
    const chi2 = bins.reduce((s, n) => s + (n - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(43.8); // the 0.999 quantile of chi-square with 19 degrees of freedom
  });

  it('moves only the robots a weight change must move, and only to the version that gained', () => {
    const before = assignAll('canary', split);
    const after = assignAll('canary', [
      { version: 1, weight: 0.7 },
      { version: 2, weight: 0.3 },
    ]);
    const moved = robots.filter((r) => before.get(r) !== after.get(r));
    expect(moved.every((r) => before.get(r) === 1 && after.get(r) === 2)).toBe(true);
    // The minimum possible is the 0.2 share that version 2 gained.
    expect(Math.abs(moved.length / robots.length - 0.2)).toBeLessThan(0.02);
  });

  it('adding a third version takes robots from the others in proportion, and moves none between them', () => {
    const before = assignAll('grow', split);
    const after = assignAll('grow', [...split, { version: 3, weight: 1 / 9 }]);
    const moved = robots.filter((r) => before.get(r) !== after.get(r));
    expect(moved.every((r) => after.get(r) === 3)).toBe(true);
    expect(Math.abs(moved.length / robots.length - 0.1)).toBeLessThan(0.02);
  });

  it('a version that cannot serve hands its robots to the others; nobody else moves', () => {
    const three: VersionWeight[] = [
      { version: 1, weight: 0.5 },
      { version: 2, weight: 0.25 },
      { version: 3, weight: 0.25 },
    ];
    const before = assignAll('failover', three);
    const after = assignAll(
      'failover',
      three.filter((w) => w.version !== 2),
    );
    for (const r of robots) if (before.get(r) !== 2) expect(after.get(r)).toBe(before.get(r));
    const heirs = shares(new Map(robots.filter((r) => before.get(r) === 2).map((r) => [r, after.get(r)])));
    expect(Math.abs(heirs.get(1)! - 2 / 3)).toBeLessThan(0.03);
  });

  it('a new salt reassigns robots independently of the old assignment', () => {
    const a = assignAll('exp-1', [
      { version: 1, weight: 0.5 },
      { version: 2, weight: 0.5 },
    ]);
    const b = assignAll('exp-2', [
      { version: 1, weight: 0.5 },
      { version: 2, weight: 0.5 },
    ]);
    const same = robots.filter((r) => a.get(r) === b.get(r)).length / robots.length;
    expect(Math.abs(same - 0.5)).toBeLessThan(0.02);
  });

  it('is undefined without a version to choose', () => {
    expect(assignVersion('s', 'k', [])).toBeUndefined();
  });

  it('chooses a version for every key whenever one weight is positive, however small the weights', () => {
    const tiny: VersionWeight[] = [
      { version: 1, weight: Number.MIN_VALUE },
      { version: 2, weight: Number.MIN_VALUE },
    ];
    for (const r of robots.slice(0, 500)) expect([1, 2]).toContain(assignVersion('tiny', stickyKeyOf('robot', r, ''), tiny));
  });
});
