/**
 * Top-down orthographic rendering of a MuJoCo world's geoms to RGB frames, in TypeScript: MuJoCo's own renderer
 * needs OpenGL, which Node lacks. The scene is planar, so a view from above is exact: spheres and cylinders are
 * discs, boxes and planes are (rotated) rectangles, drawn from low to high in painter's order with each geom's
 * rgba. Each pixel averages SUPERSAMPLE^2 samples, so an object's position moves its edge pixels smoothly
 * (sub-pixel positions are visible to a policy that sees 64 x 64 frames).
 */

const SUPERSAMPLE = 2;

/** One geom as seen from above. */
export type Primitive =
  | { readonly kind: 'disc'; readonly x: number; readonly y: number; readonly top: number; readonly rgb: readonly number[]; readonly r: number }
  | {
      readonly kind: 'rect';
      readonly x: number;
      readonly y: number;
      readonly top: number;
      readonly rgb: readonly number[];
      readonly hx: number;
      readonly hy: number;
      /** Direction of the rectangle's x axis in the world. */
      readonly cos: number;
      readonly sin: number;
    };

/** A view: the world point at the image centre, half the side of the square it shows, its rotation. */
export interface View {
  readonly x: number;
  readonly y: number;
  readonly halfExtent: number;
  /** Image right is the world direction (cos yaw, sin yaw); image up is 90 degrees counter-clockwise from it. */
  readonly yaw: number;
}

// mjtGeom values (mjmodel.h).
const GEOM_PLANE = 0;
const GEOM_SPHERE = 2;
const GEOM_CYLINDER = 5;
const GEOM_BOX = 6;

/** What the renderer reads from MuJoCo: the model's geom tables and the data's geom poses. */
export interface GeomSource {
  readonly ngeom: number;
  readonly type: ArrayLike<number>;
  readonly size: ArrayLike<number>;
  readonly rgba: ArrayLike<number>;
  readonly xpos: ArrayLike<number>;
  readonly xmat: ArrayLike<number>;
}

/** The geoms of a world as primitives, lowest first. Geom types without a top-down footprint are skipped. */
export function primitives(g: GeomSource): Primitive[] {
  const out: Primitive[] = [];
  for (let i = 0; i < g.ngeom; i++) {
    const type = g.type[i];
    const x = g.xpos[3 * i];
    const y = g.xpos[3 * i + 1];
    const z = g.xpos[3 * i + 2];
    const rgb = [g.rgba[4 * i] * 255, g.rgba[4 * i + 1] * 255, g.rgba[4 * i + 2] * 255];
    const s0 = g.size[3 * i];
    if (type === GEOM_SPHERE) out.push({ kind: 'disc', x, y, top: z + s0, rgb, r: s0 });
    else if (type === GEOM_CYLINDER) out.push({ kind: 'disc', x, y, top: z + g.size[3 * i + 1], rgb, r: s0 });
    else if (type === GEOM_BOX || type === GEOM_PLANE) {
      // xmat is row-major: the geom's x axis in world coordinates is its first column.
      const cos = g.xmat[9 * i];
      const sin = g.xmat[9 * i + 3];
      const top = type === GEOM_BOX ? z + g.size[3 * i + 2] : z;
      out.push({ kind: 'rect', x, y, top, rgb, hx: s0, hy: g.size[3 * i + 1], cos, sin });
    }
  }
  return out.sort((a, b) => a.top - b.top);
}

function covers(p: Primitive, wx: number, wy: number): boolean {
  const dx = wx - p.x;
  const dy = wy - p.y;
  if (p.kind === 'disc') return dx * dx + dy * dy <= p.r * p.r;
  const u = dx * p.cos + dy * p.sin;
  const v = -dx * p.sin + dy * p.cos;
  return Math.abs(u) <= p.hx && Math.abs(v) <= p.hy;
}

/** Radius of a circle around the primitive's centre that contains it (for the pixel bounds). */
function reach(p: Primitive): number {
  return p.kind === 'disc' ? p.r : Math.hypot(p.hx, p.hy);
}

/**
 * Renders `prims` (lowest first) in `view` to a size x size RGB image (row-major, top row first). Pixels no
 * primitive covers are black.
 */
export function render(prims: readonly Primitive[], view: View, size: number): Uint8Array {
  const n = size * SUPERSAMPLE;
  const samples = new Float32Array(n * n * 3);
  const scale = (2 * view.halfExtent) / n;
  const c = Math.cos(view.yaw);
  const s = Math.sin(view.yaw);
  for (const p of prims) {
    // The primitive's centre in image-plane coordinates (right, up), then its sample bounds.
    const dx = p.x - view.x;
    const dy = p.y - view.y;
    const u0 = dx * c + dy * s;
    const v0 = -dx * s + dy * c;
    const r = reach(p);
    const colLo = Math.max(0, Math.floor((u0 - r + view.halfExtent) / scale));
    const colHi = Math.min(n - 1, Math.ceil((u0 + r + view.halfExtent) / scale));
    const rowLo = Math.max(0, Math.floor((view.halfExtent - (v0 + r)) / scale));
    const rowHi = Math.min(n - 1, Math.ceil((view.halfExtent - (v0 - r)) / scale));
    for (let row = rowLo; row <= rowHi; row++) {
      const v = view.halfExtent - (row + 0.5) * scale;
      for (let col = colLo; col <= colHi; col++) {
        const u = (col + 0.5) * scale - view.halfExtent;
        const wx = view.x + u * c - v * s;
        const wy = view.y + u * s + v * c;
        if (!covers(p, wx, wy)) continue;
        const k = (row * n + col) * 3;
        samples[k] = p.rgb[0];
        samples[k + 1] = p.rgb[1];
        samples[k + 2] = p.rgb[2];
      }
    }
  }
  const out = new Uint8Array(size * size * 3);
  const norm = 1 / (SUPERSAMPLE * SUPERSAMPLE);
  for (let row = 0; row < size; row++) {
    for (let col = 0; col < size; col++) {
      for (let ch = 0; ch < 3; ch++) {
        let sum = 0;
        for (let a = 0; a < SUPERSAMPLE; a++) {
          for (let b = 0; b < SUPERSAMPLE; b++) sum += samples[((row * SUPERSAMPLE + a) * n + col * SUPERSAMPLE + b) * 3 + ch];
        }
        out[(row * size + col) * 3 + ch] = Math.round(sum * norm);
      }
    }
  }
  return out;
}
