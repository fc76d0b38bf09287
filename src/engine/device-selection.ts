/**
 * Which execution provider a server runs its models on, decided once at start-up (docs/operations.md,
 * "Configuration": `--device cpu|webgpu|cuda|auto`).
 *
 * - `cpu`: always available.
 * - `cuda` / `webgpu`: the probe must show the provider working here, or start-up fails with what is missing
 *   and the command that fixes it. A GPU server that quietly served on CPU would look healthy while running
 *   far slower, so an explicit device never falls back.
 * - `auto`: the first of cuda, webgpu, cpu that the probe accepts; the reason names what was skipped and why.
 *
 * The probe is injected: the real one (device-probe.ts) loads ONNX Runtime's providers, tests pass fakes.
 */
import { DeviceUnavailableError } from '../errors/index.js';
import type { Device } from './device.js';

export type DeviceRequest = Device | 'auto';
export type GpuDevice = Exclude<Device, 'cpu'>;

/** What the probe found for one GPU device: usable (with what it saw), or what is missing and how to fix it. */
export type ProbeResult = { readonly ok: true; readonly detail: string } | { readonly ok: false; readonly missing: string; readonly fix: string };

export type DeviceProbe = (device: GpuDevice) => Promise<ProbeResult>;

export interface DeviceChoice {
  readonly device: Device;
  /** One line for the start-up log: what was asked, what was chosen, why. */
  readonly reason: string;
}

/** The order `auto` tries: fastest first. CPU needs no probe. */
export const AUTO_ORDER: readonly GpuDevice[] = ['cuda', 'webgpu'];

/** @throws DeviceUnavailableError when an explicitly requested GPU device does not pass the probe. */
export async function selectDevice(requested: DeviceRequest, probe: DeviceProbe): Promise<DeviceChoice> {
  if (requested === 'cpu') return { device: 'cpu', reason: '--device cpu' };
  if (requested !== 'auto') {
    const found = await probe(requested);
    if (!found.ok) throw new DeviceUnavailableError(requested, found.missing, found.fix);
    return { device: requested, reason: `--device ${requested}: ${found.detail}` };
  }
  const skipped: string[] = [];
  for (const device of AUTO_ORDER) {
    const found = await probe(device);
    if (found.ok) return { device, reason: `--device auto chose ${device}: ${found.detail}${skippedNote(skipped)}` };
    skipped.push(`${device} (missing ${found.missing})`);
  }
  return { device: 'cpu', reason: `--device auto chose cpu${skippedNote(skipped)}` };
}

function skippedNote(skipped: readonly string[]): string {
  return skipped.length > 0 ? `; skipped ${skipped.join(', ')}` : '';
}
