import { describe, expect, it } from 'vitest';
import { escapeXml, lineChart, niceStep, timeLabel, timeTicks, yDomain } from './svg-chart.js';

describe('svg-chart', () => {
  it('picks round steps and widens the range to them', () => {
    expect(niceStep(0, 1)).toBe(0.2);
    expect(niceStep(0, 37)).toBe(10);
    expect(niceStep(0.09, 0.19)).toBeCloseTo(0.02, 12);
    expect(
      yDomain({
        series: [
          {
            label: '',
            color: '',
            points: [
              { t: 0, value: 13 },
              { t: 1, value: 87 },
            ],
          },
        ],
      }),
    ).toEqual([0, 100]);
    // Bands count only where drawn; the reference line is always in range.
    const band = { label: '', color: '', points: [{ t: 0, value: 0.2, low: 0.1, high: 0.3 }] };
    expect(yDomain({ series: [band], referenceY: 0 })).toEqual([0, 0.2]);
    expect(yDomain({ series: [{ ...band, band: true }], referenceY: 0 })).toEqual([0, 0.3]);
    expect(yDomain({ series: [] })).toEqual([0, 1]);
  });

  it('puts time ticks on round clock steps', () => {
    const t0 = Date.UTC(2026, 11, 7, 6, 0, 0);
    expect(timeTicks(t0, t0 + 119 * 60_000).map((t) => timeLabel(t, 119 * 60_000))).toEqual(['06:00', '06:30', '07:00', '07:30']);
    expect(timeTicks(t0 + 7_000, t0 + 40_000).map((t) => timeLabel(t, 33_000))).toEqual(['06:00:10', '06:00:20', '06:00:30', '06:00:40']);
  });

  it('labels time in UTC at the resolution of the span', () => {
    const t = Date.UTC(2026, 11, 7, 6, 5, 9);
    expect(timeLabel(t, 60_000)).toBe('06:05:09');
    expect(timeLabel(t, 3600_000)).toBe('06:05');
    expect(timeLabel(t, 7 * 86_400_000)).toBe('12-07 06:05');
  });

  it('draws lines, bands, ticks and markers, escaping text', () => {
    const svg = lineChart({
      title: 'a < b',
      width: 400,
      height: 200,
      timeRange: [0, 120_000],
      yFormat: (v) => `${v}%`,
      series: [
        {
          label: 's',
          color: '#123456',
          band: true,
          points: [
            { t: 0, value: 1, low: 0, high: 2 },
            { t: 120_000, value: 3, low: 2, high: 4 },
          ],
        },
      ],
      markers: [{ t: 60_000, label: 'x & y', color: '#000' }],
      referenceY: 0,
    });
    expect(svg).toContain('<title>a &lt; b</title>');
    expect(svg).toContain('<polygon points=');
    expect(svg.match(/<circle /g)).toHaveLength(2);
    expect(svg).toContain('>x &amp; y</text>');
    expect(svg).toContain('>4%</text>');
    expect(escapeXml(`"'&<>`)).toBe('&quot;&#39;&amp;&lt;&gt;');
  });
});
