/**
 * Success rate vs N_o with 95% confidence intervals, as an SVG drawn here and rasterised to PNG by sharp
 * (librsvg), which Node 20 has without a browser or canvas.
 */
import sharp from 'sharp';

export interface SeriesPoint {
  readonly x: number;
  readonly rate: number;
  readonly lo: number;
  readonly hi: number;
  readonly n: number;
}

export interface Series {
  readonly label: string;
  readonly color: string;
  readonly points: readonly SeriesPoint[];
}

export interface PlotSpec {
  readonly title: string;
  readonly subtitle: string;
  readonly xLabel: string;
  /** log2 (N_o doubling, the default) or linear (delays from 0). */
  readonly xScale?: 'log2' | 'linear';
  readonly series: readonly Series[];
}

const W = 720;
const H = 460;
const M = { left: 70, right: 30, top: 64, bottom: 60 };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** x on a log2 (default) or linear axis over the union of the series' x values; y from 0 to 1. */
export function svg(spec: PlotSpec): string {
  const xs = [...new Set(spec.series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const scale = spec.xScale === 'linear' ? (x: number) => x : Math.log2;
  const lx = xs.map(scale);
  const pad = spec.xScale === 'linear' ? 0.05 * Math.max(1, Math.max(...lx) - Math.min(...lx)) : 0.3;
  const x0 = Math.min(...lx) - pad;
  const x1 = Math.max(...lx) + pad;
  const px = (x: number) => M.left + ((scale(x) - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - y * (H - M.top - M.bottom);
  const parts: string[] = [];
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  parts.push(`<text x="${W / 2}" y="26" font-size="18" text-anchor="middle" font-family="sans-serif">${esc(spec.title)}</text>`);
  parts.push(`<text x="${W / 2}" y="46" font-size="12" text-anchor="middle" font-family="sans-serif" fill="#555">${esc(spec.subtitle)}</text>`);
  for (let i = 0; i <= 10; i++) {
    const y = py(i / 10);
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="${i % 5 ? '#eee' : '#ccc'}"/>`);
    if (i % 2 === 0) parts.push(`<text x="${M.left - 8}" y="${y + 4}" font-size="12" text-anchor="end" font-family="sans-serif">${(i / 10).toFixed(1)}</text>`);
  }
  for (const x of xs) {
    parts.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${py(0)}" y2="${py(0) + 5}" stroke="#333"/>`);
    parts.push(`<text x="${px(x)}" y="${py(0) + 20}" font-size="12" text-anchor="middle" font-family="sans-serif">${x}</text>`);
  }
  parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py(0)}" y2="${py(0)}" stroke="#333"/>`);
  parts.push(`<line x1="${M.left}" x2="${M.left}" y1="${py(0)}" y2="${py(1)}" stroke="#333"/>`);
  parts.push(`<text x="${(M.left + W - M.right) / 2}" y="${H - 16}" font-size="13" text-anchor="middle" font-family="sans-serif">${esc(spec.xLabel)}</text>`);
  parts.push(
    `<text x="18" y="${(M.top + H - M.bottom) / 2}" font-size="13" text-anchor="middle" font-family="sans-serif" transform="rotate(-90 18 ${(M.top + H - M.bottom) / 2})">success rate (95% CI)</text>`,
  );
  spec.series.forEach((s, si) => {
    // Series side by side around each x, so their intervals do not hide each other.
    const dx = (si - (spec.series.length - 1) / 2) * 8;
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${px(p.x) + dx},${py(p.rate)}`).join(' ')}"/>`);
    for (const p of pts) {
      const x = px(p.x) + dx;
      parts.push(`<line x1="${x}" x2="${x}" y1="${py(p.lo)}" y2="${py(p.hi)}" stroke="${s.color}" stroke-width="1.5"/>`);
      parts.push(`<line x1="${x - 5}" x2="${x + 5}" y1="${py(p.lo)}" y2="${py(p.lo)}" stroke="${s.color}" stroke-width="1.5"/>`);
      parts.push(`<line x1="${x - 5}" x2="${x + 5}" y1="${py(p.hi)}" y2="${py(p.hi)}" stroke="${s.color}" stroke-width="1.5"/>`);
      parts.push(`<circle cx="${x}" cy="${py(p.rate)}" r="4" fill="${s.color}"/>`);
    }
    const ly = M.top + 8 + si * 20;
    parts.push(`<line x1="${W - M.right - 250}" x2="${W - M.right - 225}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="3"/>`);
    parts.push(`<text x="${W - M.right - 218}" y="${ly + 4}" font-size="12" font-family="sans-serif">${esc(s.label)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${parts.join('')}</svg>`;
}

export async function writePlot(spec: PlotSpec, file: string): Promise<void> {
  await sharp(Buffer.from(svg(spec)))
    .png()
    .toFile(file);
}
