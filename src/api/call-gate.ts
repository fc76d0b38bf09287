/**
 * The shape shared by interceptors that may refuse a call: on its metadata (a credential, an open-call bound)
 * or on one of its request messages (too large, over a rate limit). A refusal sends its status at once, and
 * nothing of the call reaches the later interceptors or the handler afterwards.
 */
import * as grpc from '@grpc/grpc-js';

/** A status to end the call with, or undefined to let it through. */
export type Verdict = grpc.StatusObject | undefined;

export interface CallChecks {
  /** Checked when the call's metadata arrives, before any of its messages. */
  readonly metadata?: (metadata: grpc.Metadata) => Verdict;
  /** Checked on each request message before it reaches the handler. */
  readonly message?: (message: unknown) => Verdict;
  /** Called once the call is over: its status sent, or cancelled by the client. */
  readonly ended?: () => void;
}

export function gateCall(call: grpc.ServerInterceptingCallInterface, checks: CallChecks): grpc.ServerInterceptingCall {
  let refused = false;
  const refuse = (status: grpc.StatusObject) => {
    refused = true;
    call.sendStatus(status);
  };
  const listener = new grpc.ServerListenerBuilder()
    .withOnReceiveMetadata((metadata, nextMetadata) => {
      const status = checks.metadata?.(metadata);
      if (status) refuse(status);
      else nextMetadata(metadata);
    })
    .withOnReceiveMessage((message, nextMessage) => {
      if (refused) return;
      const status = checks.message?.(message);
      if (status) refuse(status);
      else nextMessage(message);
    })
    .withOnReceiveHalfClose((nextHalfClose) => {
      if (!refused) nextHalfClose();
    });
  const { ended } = checks;
  if (ended) listener.withOnCancel(ended);
  return new grpc.ServerInterceptingCall(call, { start: (next) => next(listener.build()) });
}
