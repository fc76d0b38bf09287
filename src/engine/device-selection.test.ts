import { describe, expect, it } from 'vitest';
import { DeviceUnavailableError } from '../errors/index.js';
import { selectDevice, type DeviceProbe, type GpuDevice, type ProbeResult } from './device-selection.js';

/** A probe that answers from a table and records what it was asked. */
function fakeProbe(answers: Partial<Record<GpuDevice, ProbeResult>>): DeviceProbe & { asked: GpuDevice[] } {
  const asked: GpuDevice[] = [];
  const probe = async (device: GpuDevice) => {
    asked.push(device);
    return answers[device] ?? { ok: false, missing: `${device} provider`, fix: `install ${device}` };
  };
  return Object.assign(probe, { asked });
}

const ok = (detail: string): ProbeResult => ({ ok: true, detail });

describe('selectDevice', () => {
  it('cpu needs no probe', async () => {
    const probe = fakeProbe({});
    await expect(selectDevice('cpu', probe)).resolves.toEqual({ device: 'cpu', reason: '--device cpu' });
    expect(probe.asked).toEqual([]);
  });

  it('an explicit GPU device that the probe accepts is chosen, with what the probe saw', async () => {
    const choice = await selectDevice('cuda', fakeProbe({ cuda: ok('provider ran') }));
    expect(choice).toEqual({ device: 'cuda', reason: '--device cuda: provider ran' });
  });

  it('an explicit GPU device that fails the probe fails start-up, naming what is missing and the fix, and never tries another', async () => {
    const probe = fakeProbe({ cuda: { ok: false, missing: 'the CUDA libraries libcublas.so.13', fix: 'install cuBLAS' }, webgpu: ok('fine') });
    const err = await selectDevice('cuda', probe).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceUnavailableError);
    expect((err as Error).message).toBe('--device cuda cannot run here: missing the CUDA libraries libcublas.so.13. To fix: install cuBLAS');
    expect(probe.asked).toEqual(['cuda']);
  });

  it('auto prefers cuda', async () => {
    const probe = fakeProbe({ cuda: ok('cuda ran'), webgpu: ok('webgpu ran') });
    await expect(selectDevice('auto', probe)).resolves.toEqual({ device: 'cuda', reason: '--device auto chose cuda: cuda ran' });
    expect(probe.asked).toEqual(['cuda']);
  });

  it('auto falls to webgpu and says why cuda was skipped', async () => {
    const choice = await selectDevice('auto', fakeProbe({ webgpu: ok('adapter found') }));
    expect(choice.device).toBe('webgpu');
    expect(choice.reason).toBe('--device auto chose webgpu: adapter found; skipped cuda (missing cuda provider)');
  });

  it('auto ends on cpu and lists every GPU device it skipped', async () => {
    const choice = await selectDevice('auto', fakeProbe({}));
    expect(choice).toEqual({ device: 'cpu', reason: '--device auto chose cpu; skipped cuda (missing cuda provider), webgpu (missing webgpu provider)' });
  });
});
