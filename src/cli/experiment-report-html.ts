/**
 * The experiment report as one self-contained HTML page: inline CSS and SVG charts (svg-chart.ts), no script
 * and nothing to fetch, so it opens from a file, an e-mail or a CI artifact. Pure: a page model
 * (experiment-report-model.ts) in, markup out; every text from the store is escaped.
 */
import type { ReportPage, VersionRow, VersionSeries } from './experiment-report-model.js';
import { escapeXml, lineChart, yDomain, type ChartMarker, type ChartSeries } from './svg-chart.js';

/** One colour per version, in version order; colour-blind-safe (Okabe-Ito). */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'] as const;
const DECISION_COLORS: Record<string, string> = { 'candidate better': '#1a7f37', 'candidate worse': '#cf222e', 'keep collecting': '#6e7781' };
const FULL = { width: 1160, height: 300 } as const;
const HALF = { width: 540, height: 240 } as const;
/** The difference chart's y axis fits the intervals of this last share of the history (the first ones are wide). */
const SETTLED_SHARE = 0.75;

const CSS = `
:root { color-scheme: light; }
body { margin: 0; background: #f6f8fa; color: #1f2328; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 6px; }
.meta { color: #59636e; margin: 0 0 18px; }
.meta span { margin-right: 16px; white-space: nowrap; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 16px; }
.card { background: #fff; border: 1px solid #d1d9e0; border-left: 6px solid var(--accent); border-radius: 6px; padding: 10px 14px; min-width: 300px; }
.card .verdict { font-size: 18px; font-weight: 600; color: var(--accent); }
.panel { background: #fff; border: 1px solid #d1d9e0; border-radius: 6px; padding: 14px 18px; margin-bottom: 16px; }
.row { display: flex; gap: 16px; flex-wrap: wrap; }
.row .panel { flex: 1 1 0; min-width: 0; }
.note { color: #59636e; font-size: 12.5px; margin: 2px 0 8px; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 4px 0 6px; font-size: 13px; }
.swatch { display: inline-block; width: 18px; height: 4px; border-radius: 2px; vertical-align: middle; margin-right: 6px; }
.swatch.dashed { background: repeating-linear-gradient(90deg, var(--c) 0 6px, transparent 6px 10px) !important; }
.empty { color: #59636e; font-style: italic; padding: 24px 0; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg .grid { stroke: #eaeef2; }
svg .frame { fill: none; stroke: #d1d9e0; }
svg .reference { stroke: #1f2328; stroke-width: 1; stroke-dasharray: 3 3; }
svg .marker { stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .tick { font-size: 11px; fill: #59636e; }
svg .marker-label { font-size: 12px; font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: right; padding: 5px 6px; border-bottom: 1px solid #eaeef2; white-space: nowrap; }
th { color: #59636e; font-weight: 600; white-space: normal; vertical-align: bottom; }
th:first-child, td:first-child { text-align: left; }
`;

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const pp = (v: number) => `${v >= 0 ? '+' : ''}${(100 * v).toFixed(1)} pp`;
/** Axis ticks: round numbers of percentage points. */
const ppTick = (v: number) => `${v > 0 ? '+' : ''}${Number((100 * v).toFixed(1))} pp`;
const num = (v: number | undefined, digits = 2) => (v === undefined ? '–' : String(Number(v.toFixed(digits))));
const pValue = (p: number | undefined) => (p === undefined ? '–' : p < 1e-4 ? p.toExponential(1) : String(Number(p.toFixed(4))));
const utc = (t: number) => new Date(t).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

function colorOf(page: ReportPage): (version: number) => string {
  const versions = [...new Set([...page.rows.map((r) => r.version), page.controlVersion, page.shadowVersion].filter((v) => v > 0))].sort((a, b) => a - b);
  return (version) => PALETTE[Math.max(0, versions.indexOf(version)) % PALETTE.length];
}

function legend(items: ReadonlyArray<{ label: string; color: string; dashed?: boolean }>): string {
  const item = (i: { label: string; color: string; dashed?: boolean }) =>
    `<span><span class="swatch${i.dashed ? ' dashed' : ''}" style="background:${i.color};--c:${i.color}"></span>${escapeXml(i.label)}</span>`;
  return `<div class="legend">${items.map(item).join('')}</div>`;
}

function versionLabel(page: ReportPage, version: number): string {
  const role = version === page.controlVersion ? ' (control)' : version === page.shadowVersion ? ' (shadow)' : '';
  return `v${version}${role}`;
}

function seriesChart(
  page: ReportPage,
  title: string,
  series: readonly ChartSeries[],
  size: { width: number; height: number },
  yFormat: (v: number) => string,
  extra: { yRange?: [number, number]; referenceY?: number; markers?: ChartMarker[]; empty?: string } = {},
): string {
  if (series.every((s) => s.points.length === 0)) return `<p class="empty">${escapeXml(extra.empty ?? 'nothing recorded yet')}</p>`;
  return lineChart({ title, ...size, series, timeRange: page.timeRange, yFormat, ...extra });
}

/** Legend entries of the versions a chart draws. */
function drawn(page: ReportPage, list: readonly VersionSeries[]): Array<{ label: string; color: string }> {
  const color = colorOf(page);
  return [...new Set(list.map((s) => s.version))].sort((a, b) => a - b).map((v) => ({ label: versionLabel(page, v), color: color(v) }));
}

function versionSeries(page: ReportPage, list: readonly VersionSeries[], band = false, dashed = false): ChartSeries[] {
  const color = colorOf(page);
  return list.map((s) => ({ label: versionLabel(page, s.version), color: color(s.version), points: s.points, band, dashed }));
}

function panel(title: string, note: string, body: string): string {
  return `<section class="panel"><h2>${escapeXml(title)}</h2><p class="note">${escapeXml(note)}</p>${body}</section>`;
}

function decisionCards(page: ReportPage): string {
  if (page.tests.length === 0) {
    const why = page.controlVersion === 0 ? 'this experiment has no control (no split set): nothing is tested' : 'no candidate has counts yet';
    return `<div class="cards"><div class="card" style="--accent:#6e7781"><div class="verdict">No decision</div><div>${escapeXml(why)}</div></div></div>`;
  }
  const cards = page.tests.map((t) => {
    const accent = DECISION_COLORS[t.decision] ?? '#6e7781';
    const when =
      t.decision === 'keep collecting'
        ? 'not decided yet'
        : t.decidedAt !== undefined
          ? `reached by ${utc(t.decidedAt)}`
          : 'reached before the recorded history';
    const cs = t.current
      ? `difference ${pp(t.points[t.points.length - 1].value)}, confidence sequence [${pp(t.current.low)}, ${pp(t.current.high)}]`
      : 'no outcomes in both groups yet';
    return `<div class="card" style="--accent:${accent}"><div>v${t.version} against control v${page.controlVersion}</div><div class="verdict">${escapeXml(t.decision)}</div><div>${escapeXml(when)} · always-valid p ${pValue(t.pValue)}</div><div>${escapeXml(cs)}</div></div>`;
  });
  return `<div class="cards">${cards.join('')}</div>`;
}

/**
 * The difference chart's y range: the whole line, 0 and the intervals of the settled part of the history, within
 * ±100 pp (the first intervals, from a handful of outcomes, would flatten everything else).
 */
export function differenceRange(points: readonly ChartSeries['points'][number][]): [number, number] {
  const settled = points.slice(Math.floor(points.length * (1 - SETTLED_SHARE)));
  const [lo, hi] = yDomain({
    series: [
      { label: '', color: '', points, band: false },
      { label: '', color: '', points: settled, band: true },
    ],
    referenceY: 0,
  });
  return [Math.max(-1, lo), Math.min(1, hi)];
}

function differenceCharts(page: ReportPage): string {
  return page.tests
    .map((t) => {
      const color = colorOf(page)(t.version);
      const markers: ChartMarker[] = t.decidedAt !== undefined ? [{ t: t.decidedAt, label: t.decision, color: DECISION_COLORS[t.decision] ?? '#1f2328' }] : [];
      const series: ChartSeries = { label: `v${t.version} − v${page.controlVersion}`, color, points: t.points, band: true };
      const chart = seriesChart(page, `v${t.version} minus v${page.controlVersion}`, [series], FULL, ppTick, {
        yRange: differenceRange(t.points),
        referenceY: 0,
        markers,
      });
      return panel(
        `Difference in success rate: v${t.version} − control v${page.controlVersion}`,
        `Shaded: the always-valid ${Math.round(100 * (1 - page.alpha))}% confidence sequence of the server's mixture SPRT (alpha ${page.alpha}, mixing sd ${page.tau}); the test decides when it leaves 0. The dashed line marks the first history point that carried the decision. The first intervals are wide and cut at the chart's edge.`,
        legend([{ label: `v${t.version} − v${page.controlVersion}`, color }]) + chart,
      );
    })
    .join('');
}

function cell(row: VersionRow): string[] {
  return [
    `v${row.version}${row.role === 'version' ? '' : ` (${row.role})`}`,
    row.weight === undefined ? '–' : num(row.weight, 3),
    String(row.requests),
    String(row.robots),
    `${row.episodes} / ${row.episodesServed}`,
    row.successRate === undefined ? '–' : `${pct(row.successRate)} [${pct(row.wilson.low)}, ${pct(row.wilson.high)}]`,
    pValue(row.pValue),
    row.decision,
    `${num(row.latencyP50Ms, 1)} / ${num(row.latencyP99Ms, 1)}`,
    num(row.meanVisionSteps, 2),
    num(row.meanSurprise, 3),
    `${row.shadowRequests} / ${row.shadowShed}`,
    num(row.meanShadowDivergence, 3),
  ];
}

const HEADERS = [
  'version',
  'weight',
  'requests',
  'robots',
  'episodes (outcome / served)',
  'success rate [95% Wilson]',
  'p (always valid)',
  'decision',
  'latency p50 / p99 ms',
  'mean N_o',
  'surprise',
  'shadow n / shed',
  'shadow divergence',
];

function summaryTable(page: ReportPage): string {
  const head = `<tr>${HEADERS.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr>`;
  const rows = page.rows
    .map(
      (r) =>
        `<tr>${cell(r)
          .map((c) => `<td>${escapeXml(c)}</td>`)
          .join('')}</tr>`,
    )
    .join('');
  return `<table>${head}${rows}</table>`;
}

export function renderReportHtml(page: ReportPage): string {
  const meta = [
    `experiment ${page.experimentId}`,
    page.salt ? `salt ${page.salt}` : 'no split (implicit experiment)',
    `sticky ${page.stickyKey}`,
    page.controlVersion ? `control v${page.controlVersion}` : 'no control',
    page.shadowVersion ? `shadow v${page.shadowVersion} (${pct(page.shadowFraction)} mirrored)` : 'no shadow',
    `started ${utc(page.startedAt)}`,
    `report ${utc(page.generatedAt)}`,
  ];
  const latency = [
    ...versionSeries(page, page.latencyP50),
    ...versionSeries(page, page.latencyP99, false, true).map((s) => ({ ...s, label: `${s.label} p99` })),
  ];
  const shadow = page.shadowDivergence.length === 0 ? '<p class="empty">no shadow traffic recorded</p>' : '';
  const body = [
    `<h1>${escapeXml(page.model)} — A/B experiment report</h1>`,
    `<p class="meta">${meta.map((m) => `<span>${escapeXml(m)}</span>`).join('')}</p>`,
    decisionCards(page),
    panel(
      'Success rate per version',
      `Running success rate of the episodes with a reported outcome; shaded: 95% Wilson interval at each point (one look${page.tests.length > 0 ? '; the test against the control is below' : ''}).`,
      legend(drawn(page, page.successRate)) +
        seriesChart(page, 'success rate per version', versionSeries(page, page.successRate, true), FULL, pct, {
          yRange: [0, 1],
          empty: 'no outcomes reported yet (ReportOutcome)',
        }),
    ),
    differenceCharts(page),
    '<div class="row">',
    panel(
      'Latency',
      'Server time per request over every request so far: p50 (solid), p99 (dashed).',
      legend([...drawn(page, page.latencyP50), { label: 'p99', color: '#59636e', dashed: true }]) +
        seriesChart(page, 'latency', latency, HALF, (v) => `${num(v, 1)} ms`),
    ),
    panel(
      'Vision steps N_o',
      'Mean N_o per request in each history window.',
      legend(drawn(page, page.visionSteps)) + seriesChart(page, 'mean N_o', versionSeries(page, page.visionSteps), HALF, (v) => num(v, 2)),
    ),
    '</div><div class="row">',
    panel(
      'World-model surprise',
      'Mean world-model surprise of the requests that reported one, per window.',
      legend(drawn(page, page.surprise)) +
        seriesChart(page, 'world-model surprise', versionSeries(page, page.surprise), HALF, (v) => num(v, 3), {
          empty: 'no request reported a world-model surprise yet',
        }),
    ),
    panel(
      'Shadow divergence',
      "Mean L2 distance of the shadow version's actions from the primary's (normalized action space), per window.",
      shadow ||
        legend(drawn(page, page.shadowDivergence)) + seriesChart(page, 'shadow divergence', versionSeries(page, page.shadowDivergence), HALF, (v) => num(v, 3)),
    ),
    '</div>',
    panel('Totals', 'As the store last wrote them; split-routed traffic of the current experiment only.', summaryTable(page)),
  ];
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeXml(page.model)} experiment ${page.experimentId}</title>`,
    `<style>${CSS}</style></head>`,
    `<body><main>${body.join('\n')}</main></body></html>`,
    '',
  ].join('\n');
}
