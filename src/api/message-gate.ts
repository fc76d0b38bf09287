/**
 * The shape shared by interceptors that may refuse a call on one of its request messages (too large, over a
 * rate limit): each message is checked before it reaches the handler; a refusal sends its status and nothing
 * of the call reaches the handler afterwards.
 */
import * as grpc from '@grpc/grpc-js';

/** A status to end the call with, or undefined to let the message through. */
export type MessageCheck = (message: unknown) => grpc.StatusObject | undefined;

/** `readMetadata` sees the call's metadata before any of its messages (what the check may depend on). */
export function gateMessages(
  call: grpc.ServerInterceptingCallInterface,
  check: MessageCheck,
  readMetadata?: (metadata: grpc.Metadata) => void,
): grpc.ServerInterceptingCall {
  let refused = false;
  return new grpc.ServerInterceptingCall(call, {
    start: (next) =>
      next(
        new grpc.ServerListenerBuilder()
          .withOnReceiveMetadata((metadata, nextMetadata) => {
            readMetadata?.(metadata);
            nextMetadata(metadata);
          })
          .withOnReceiveMessage((message, nextMessage) => {
            if (refused) return;
            const status = check(message);
            if (!status) {
              nextMessage(message);
              return;
            }
            refused = true;
            call.sendStatus(status);
          })
          .withOnReceiveHalfClose((nextHalfClose) => {
            if (!refused) nextHalfClose();
          })
          .build(),
      ),
  });
}
