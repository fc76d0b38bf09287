/**
 * Faults a test or a drill can inject into the native executor's ONNX Runtime calls, from the main thread
 * (ModelWorker.injectDeviceLost): the addon wrapped so that its sessions' runs fail as ONNX Runtime fails when a
 * GPU is lost. Nothing is injected until asked.
 */
import type { NativeOrt, NativeSession } from './native-ort.js';

export interface Faults {
  /** The next run fails with a CUDA error that leaves the device unusable. */
  deviceLost: boolean;
}

/** What ONNX Runtime's CUDA provider reports when the device is gone (native-executor.ts DEVICE_LOST knows it). */
export const INJECTED_DEVICE_LOST = 'run: CUDA failure 999: unknown error ; GPU=0 ; (injected fault)';

function ortError(message: string): Error {
  return Object.assign(new Error(message), { name: 'OrtError', code: 'ORT_FAIL', ortCode: 1 });
}

export function withFaults(ort: NativeOrt, faults: Faults): NativeOrt {
  const Session = class {
    private readonly inner: NativeSession;
    constructor(...args: ConstructorParameters<NativeOrt['Session']>) {
      this.inner = new ort.Session(...args);
    }
    get device() {
      return this.inner.device;
    }
    inputs() {
      return this.inner.inputs();
    }
    outputs() {
      return this.inner.outputs();
    }
    run(...args: Parameters<NativeSession['run']>) {
      if (faults.deviceLost) throw ortError(INJECTED_DEVICE_LOST);
      this.inner.run(...args);
    }
    release() {
      this.inner.release();
    }
    /** The addon's own session, for the addon's functions that take one. */
    get native(): NativeSession {
      return this.inner;
    }
  };
  const unwrap = (s: NativeSession) => (s instanceof Session ? s.native : s);
  return {
    init: (p) => ort.init(p),
    registerProviderLibrary: (n, p) => ort.registerProviderLibrary(n, p),
    copy: (pairs) => ort.copy(pairs),
    axpyRows: (x, v, dt, out) => ort.axpyRows(x, v, dt, out),
    Session,
    Buffer: class {
      constructor(session: NativeSession, bytes: number) {
        return new ort.Buffer(unwrap(session), bytes);
      }
    } as unknown as NativeOrt['Buffer'],
    Value: ort.Value,
  };
}
