/**
 * Faults a test or a drill can inject into the native executor's ONNX Runtime calls: the addon wrapped so that a
 * session's run or a device allocation fails as ONNX Runtime fails (a lost GPU from the main thread through
 * ModelWorker.injectDeviceLost; out of memory in the executor's tests), or a run returns wrong values (a CUDA graph
 * that replays what it should not). Nothing is injected until a hook says so.
 */
import type { NativeOrt, NativeSession } from './native-ort.js';

/** Consulted before the addon's calls: a message makes that call throw ONNX Runtime's error with it. */
export interface FaultHooks {
  /** Before a session's run, with the CUDA graph id it was given. */
  readonly run?: (graphId: number | undefined) => string | undefined;
  /** Before a device buffer of `bytes` is allocated. */
  readonly allocate?: (bytes: number) => string | undefined;
  /** After a session's run, with its graph id: true zeroes every output the run wrote. */
  readonly corrupt?: (graphId: number | undefined) => boolean;
}

/** What ONNX Runtime's CUDA provider reports when the device is gone (native-executor.ts DEVICE_LOST knows it). */
export const INJECTED_DEVICE_LOST = 'run: CUDA failure 999: unknown error ; GPU=0 ; (injected fault)';

function ortError(message: string): Error {
  return Object.assign(new Error(message), { name: 'OrtError', code: 'ORT_FAIL', ortCode: 1 });
}

export function withFaults(ort: NativeOrt, hooks: FaultHooks): NativeOrt {
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
    run(inputs: Parameters<NativeSession['run']>[0], outputs: Parameters<NativeSession['run']>[1], graphId?: number) {
      const fault = hooks.run?.(graphId);
      if (fault) throw ortError(fault);
      this.inner.run(inputs, outputs, graphId);
      if (hooks.corrupt?.(graphId)) {
        for (const out of Object.values(outputs)) {
          const zeros = new ort.Value(new Uint8Array(out.bytes), 0, 'uint8', [out.bytes]);
          ort.copy([[zeros, out]]);
          zeros.release();
        }
      }
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
        const fault = hooks.allocate?.(bytes);
        if (fault) throw ortError(fault);
        return new ort.Buffer(unwrap(session), bytes);
      }
    } as unknown as NativeOrt['Buffer'],
    Value: ort.Value,
  };
}
