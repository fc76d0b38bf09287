import { describe, expect, it } from 'vitest';
import type { HistoryPoint, StoredExperiment } from '../experiment/index.js';
import { differenceRange, renderReportHtml } from './experiment-report-html.js';
import { reportPage } from './experiment-report-model.js';
import { newExperiment } from '../experiment/testing/records.js';

const T0 = Date.UTC(2026, 11, 7, 6, 0, 0);

function point(version: number, minute: number, episodes: number, successes: number, decision: HistoryPoint['decision'] = 'keep collecting'): HistoryPoint {
  return {
    version,
    at: T0 + minute * 60_000,
    requests: episodes * 2,
    episodes,
    successes,
    visionStepsSum: episodes * 8,
    surpriseSum: episodes * 0.2,
    surpriseCount: episodes,
    latencyP50Ms: 40,
    latencyP99Ms: 90,
    shadowRequests: 0,
    shadowDivergenceSum: 0,
    alwaysValidPValue: decision === 'keep collecting' ? 0.5 : 0.01,
    decision,
  };
}

const stored: StoredExperiment = {
  experiment: { id: 3, ...newExperiment({ model: 'push<script>alert(1)</script>', salt: 'a&b', startedAt: T0 }) },
  versions: [1, 2].map((version) => ({
    version,
    requests: 80,
    robots: 5,
    episodesServed: 40,
    episodes: 40,
    successes: version === 1 ? 12 : 34,
    visionStepsSum: 320,
    surpriseSum: 8,
    surpriseCount: 40,
    latencyP50Ms: 40,
    latencyP99Ms: 90,
    shadowRequests: 0,
    shadowShed: 0,
    shadowDivergenceSum: 0,
    alwaysValidPValue: version === 1 ? 1 : 0.01,
    decision: version === 1 ? 'keep collecting' : 'candidate better',
  })),
  history: [point(1, 1, 20, 8), point(2, 1, 20, 12), point(1, 2, 40, 12), point(2, 2, 40, 34, 'candidate better')],
};

const html = renderReportHtml(reportPage(stored, { alpha: 0.05, tau: 0.1, generatedAt: T0 + 3 * 60_000 }));

describe('renderReportHtml', () => {
  it('is one page that loads nothing', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).not.toMatch(/<script|<link|<img|\ssrc=|\shref=|url\(/i);
  });

  it('escapes what the store holds', () => {
    expect(html).toContain('push&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('salt a&amp;b');
  });

  it('states the decision, when it was reached and the interval now', () => {
    expect(html).toContain('<div class="verdict">candidate better</div><div>reached by 2026-12-07 06:02:00 UTC · always-valid p 0.01</div>');
    expect(html).toMatch(/difference \+55\.0 pp, confidence sequence \[\+\d+\.\d pp, \+\d+\.\d pp\]/);
    // The decision's marker on the difference chart.
    expect(html).toContain('>candidate better</text>');
  });

  it('draws a chart per panel, and says so where nothing was recorded', () => {
    expect(html.match(/<svg /g)).toHaveLength(5);
    expect(html).toContain('no shadow traffic recorded');
  });
});

describe('a page without a split or outcomes', () => {
  const bare = renderReportHtml(
    reportPage(
      {
        experiment: { ...stored.experiment, salt: '', weights: [], controlVersion: 0 },
        versions: stored.versions.map((v) => ({ ...v, episodes: 0, successes: 0 })),
        history: stored.history.map((p) => ({ ...p, episodes: 0, successes: 0 })),
      },
      { alpha: 0.05, tau: 0.1, generatedAt: T0 },
    ),
  );

  it('says why nothing is tested and what is missing', () => {
    expect(bare).toContain('this experiment has no control (no split set): nothing is tested');
    expect(bare).toContain('no outcomes reported yet (ReportOutcome)');
    expect(bare).not.toContain('Difference in success rate');
  });
});

describe('differenceRange', () => {
  it('fits the settled intervals and the whole line, within ±100 pp', () => {
    const points = [
      { t: 0, value: 0.5, low: -3, high: 4 },
      { t: 1, value: 0.3, low: 0.05, high: 0.55 },
      { t: 2, value: 0.2, low: 0.1, high: 0.3 },
      { t: 3, value: 0.2, low: 0.12, high: 0.28 },
    ];
    expect(differenceRange(points)).toEqual([0, 0.6]);
    expect(differenceRange([{ t: 0, value: 0.1, low: -5, high: 5 }])).toEqual([-1, 1]);
  });
});
