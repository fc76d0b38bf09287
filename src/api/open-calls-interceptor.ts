/**
 * Applies OpenCalls to every call: admitted when its headers arrive, released when it ends (grpc-js tells every
 * interceptor's listener onCancel once a call is over, whether its status was sent or the client cancelled).
 * A call over a bound gets RESOURCE_EXHAUSTED at once and nothing of it reaches the later interceptors or the
 * handler; streamCloserInterceptor then closes its stream.
 */
import * as grpc from '@grpc/grpc-js';
import { currentCallScope } from '../telemetry/index.js';
import { gateCall } from './call-gate.js';
import type { OpenCalls } from './open-calls.js';

/** The reason dust_rejected_total counts these refusals under. */
export const OPEN_CALLS_REJECT_REASON = 'too_many_calls';

export function openCallsInterceptor(openCalls: OpenCalls): grpc.ServerInterceptor {
  return (method, call) => {
    let release: (() => void) | undefined;
    return gateCall(call, {
      metadata: () => {
        // The peer ("address:port") tells connections apart: each has its own client port.
        const admission = openCalls.admit(method.path, call.getPeer());
        if (admission.ok) {
          release = admission.release;
          return undefined;
        }
        const scope = currentCallScope();
        if (scope) scope.rejectReason = OPEN_CALLS_REJECT_REASON;
        return { code: grpc.status.RESOURCE_EXHAUSTED, details: admission.details, metadata: new grpc.Metadata() };
      },
      ended: () => release?.(),
    });
  };
}
