/** PredictRequest and PredictResponse to and from protobuf bytes, for raw HTTP/2 calls and pre-serialized requests. */
import { loadProtos, POLICY_SERVICE_NAME } from '../../src/api/index.js';
import type { PredictRequest } from '@dust-serve/client/gen/dust/serving/v1/PredictRequest';
import type { PredictResponse__Output } from '@dust-serve/client/gen/dust/serving/v1/PredictResponse';

export interface Codec {
  readonly serialize: (req: PredictRequest) => Buffer;
  readonly deserialize: (buf: Buffer) => PredictResponse__Output;
  readonly streamPath: string;
  readonly unaryPath: string;
}

/** The protobuf codec of the serving protos, the same the server uses. */
export function policyCodec(): Codec {
  const { packageDefinition } = loadProtos();
  const service = packageDefinition[POLICY_SERVICE_NAME] as Record<
    string,
    { path: string; requestSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown }
  >;
  const stream = service.StreamPredict;
  return {
    serialize: (req) => stream.requestSerialize(req),
    deserialize: (buf) => stream.responseDeserialize(buf) as PredictResponse__Output,
    streamPath: stream.path,
    unaryPath: service.Predict.path,
  };
}
