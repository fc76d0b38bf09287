/**
 * A small time-series line chart drawn as inline SVG text, so that a report is one file with nothing to load
 * (no script, no font, no URL: SVG inside HTML needs no namespace declaration). Lines with optional interval
 * bands, a reference line, vertical markers, and axes with round ticks. Pure: a spec in, markup out.
 */

export interface ChartPoint {
  /** Epoch ms. */
  readonly t: number;
  readonly value: number;
  readonly low?: number;
  readonly high?: number;
}

export interface ChartSeries {
  readonly label: string;
  readonly color: string;
  readonly points: readonly ChartPoint[];
  /** Shade [low, high] around the line. */
  readonly band?: boolean;
  readonly dashed?: boolean;
}

export interface ChartMarker {
  readonly t: number;
  readonly label: string;
  readonly color: string;
}

export interface ChartSpec {
  /** Text for screen readers (the SVG's title). */
  readonly title: string;
  readonly width: number;
  readonly height: number;
  readonly series: readonly ChartSeries[];
  readonly timeRange: readonly [number, number];
  /** Fixed y range; otherwise from the data. */
  readonly yRange?: readonly [number, number];
  readonly yFormat: (v: number) => string;
  /** A horizontal line (the zero of a difference). */
  readonly referenceY?: number;
  readonly markers?: readonly ChartMarker[];
}

const MARGIN = { left: 64, right: 16, top: 12, bottom: 28 } as const;
/** Points are drawn as dots too while a series has at most this many (single points would be invisible). */
const MAX_DOTTED_POINTS = 80;
/** A history of one moment still gets a readable axis: at least this long. */
const MIN_SPAN_MS = 60_000;
const TICKS = 5;

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A round step (1, 2 or 5 times a power of ten) giving about `count` ticks over [lo, hi]. */
export function niceStep(lo: number, hi: number, count = TICKS): number {
  const raw = (hi - lo) / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

/** The y range a chart draws: the data (bands and reference included), widened to round ticks. */
export function yDomain(spec: Pick<ChartSpec, 'series' | 'yRange' | 'referenceY'>): [number, number] {
  if (spec.yRange) return [spec.yRange[0], spec.yRange[1]];
  const values = spec.series.flatMap((s) => s.points.flatMap((p) => [p.value, ...(s.band ? [p.low ?? p.value, p.high ?? p.value] : [])]));
  if (spec.referenceY !== undefined) values.push(spec.referenceY);
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (hi - lo < 1e-9) {
    const pad = Math.abs(hi) > 0 ? Math.abs(hi) * 0.1 : 1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep(lo, hi);
  // toPrecision: 3 × 0.1 is 0.30000000000000004 in binary; the axis wants 0.3.
  return [Number((Math.floor(lo / step) * step).toPrecision(12)), Number((Math.ceil(hi / step) * step).toPrecision(12))];
}

/** Clock time of a tick, UTC: seconds for a short history, the date for a long one. */
export function timeLabel(t: number, spanMs: number): string {
  const iso = new Date(t).toISOString();
  if (spanMs > 36 * 3600_000) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return spanMs < 600_000 ? iso.slice(11, 19) : iso.slice(11, 16);
}

const fixed = (v: number) => Number(v.toFixed(1));

/** Clock-round steps of the time axis (UTC): seconds to days. */
const TIME_STEPS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800].map((s) => s * 1000);
/** A tick label this close to the plot's edge is anchored inside it. */
const EDGE_PX = 24;

/** Times on round clock steps (10:15, 10:30, ...) within [t0, t1], about TICKS of them. */
export function timeTicks(t0: number, t1: number): number[] {
  const step = TIME_STEPS_MS.find((s) => (t1 - t0) / s <= TICKS) ?? TIME_STEPS_MS[TIME_STEPS_MS.length - 1];
  const out: number[] = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) out.push(t);
  return out;
}

export function lineChart(spec: ChartSpec): string {
  const { width, height } = spec;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  let [t0, t1] = spec.timeRange;
  // A young experiment's axis starts where it started and runs a minute on, rather than before its start.
  if (t1 - t0 < MIN_SPAN_MS) t1 = t0 + MIN_SPAN_MS;
  const [y0, y1] = yDomain(spec);
  const x = (t: number) => fixed(MARGIN.left + ((t - t0) / (t1 - t0)) * plotW);
  const y = (v: number) => fixed(MARGIN.top + (1 - (Math.min(y1, Math.max(y0, v)) - y0) / (y1 - y0)) * plotH);
  const out: string[] = [
    `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" class="chart">`,
    `<title>${escapeXml(spec.title)}</title>`,
  ];
  const yStep = niceStep(y0, y1);
  // Ticks at multiples of the step (a fixed or clamped range need not start at one).
  for (let i = Math.ceil(y0 / yStep - 1e-9); i * yStep <= y1 + yStep / 1e6; i++) {
    const v = Number((i * yStep).toPrecision(12));
    out.push(`<line class="grid" x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${y(v)}" y2="${y(v)}"/>`);
    out.push(`<text class="tick" x="${MARGIN.left - 6}" y="${y(v) + 4}" text-anchor="end">${escapeXml(spec.yFormat(v))}</text>`);
  }
  for (const t of timeTicks(t0, t1)) {
    const left = x(t) - MARGIN.left;
    const anchor = left < EDGE_PX ? 'start' : plotW - left < EDGE_PX ? 'end' : 'middle';
    out.push(`<text class="tick" x="${x(t)}" y="${height - 8}" text-anchor="${anchor}">${escapeXml(timeLabel(t, t1 - t0))}</text>`);
  }
  out.push(`<rect class="frame" x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}"/>`);
  if (spec.referenceY !== undefined) {
    out.push(`<line class="reference" x1="${MARGIN.left}" x2="${width - MARGIN.right}" y1="${y(spec.referenceY)}" y2="${y(spec.referenceY)}"/>`);
  }
  for (const s of spec.series) {
    if (!s.band || s.points.length === 0) continue;
    const upper = s.points.map((p) => `${x(p.t)},${y(p.high ?? p.value)}`);
    const lower = [...s.points].reverse().map((p) => `${x(p.t)},${y(p.low ?? p.value)}`);
    // One point has no width: give its interval a visible bar instead.
    if (s.points.length === 1) {
      const p = s.points[0];
      out.push(
        `<line x1="${x(p.t)}" x2="${x(p.t)}" y1="${y(p.high ?? p.value)}" y2="${y(p.low ?? p.value)}" stroke="${s.color}" stroke-width="6" stroke-opacity="0.25"/>`,
      );
    } else out.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${s.color}" fill-opacity="0.15" stroke="none"/>`);
  }
  for (const s of spec.series) {
    if (s.points.length === 0) continue;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline points="${s.points.map((p) => `${x(p.t)},${y(p.value)}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    if (s.points.length <= MAX_DOTTED_POINTS) for (const p of s.points) out.push(`<circle cx="${x(p.t)}" cy="${y(p.value)}" r="3" fill="${s.color}"/>`);
  }
  for (const m of spec.markers ?? []) {
    out.push(`<line class="marker" x1="${x(m.t)}" x2="${x(m.t)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="${m.color}"/>`);
    const anchor = x(m.t) > MARGIN.left + plotW * 0.7 ? 'end' : 'start';
    const dx = anchor === 'end' ? -4 : 4;
    out.push(`<text class="marker-label" x="${x(m.t) + dx}" y="${MARGIN.top + 14}" text-anchor="${anchor}" fill="${m.color}">${escapeXml(m.label)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n');
}
