// @tickforge/client: a client for tickforge game servers, for browsers and
// Node. See README.md; the types are in index.d.ts.

export { Client, RETRYABLE_CLOSES } from "./src/client.js";
export { StateStore, lerpStates, MAX_BASELINES, DELAY_PERIODS } from "./src/store.js";
export { Snapshot, applyBin, applyJson, MAX_ENTITIES } from "./src/delta.js";
export {
  encodeClient,
  decodeClient,
  encodeServer,
  decodeServer,
  writeJson,
  REJECT_CODES,
  REQUEST_NAMES,
  SUBPROTOCOLS,
} from "./src/messages.js";
export {
  compileSchema,
  checkInputSchema,
  quantizeInput,
  inputData,
  readInputBin,
  readInputJson,
  quantize,
  dequantize,
  stepPerTick,
  MAX_FIELDS,
  MAX_INPUT_FIELDS,
} from "./src/schema.js";
export {
  checkValue,
  checkMap,
  valueEquals,
  valueType,
  encodeValueBin,
  decodeValueBin,
  writeValueJson,
  valueFromJson,
  MAX_DEPTH,
  MAX_STRING,
  MAX_SIZE,
} from "./src/value.js";
export { Float, float, parseJson, formatFloat } from "./src/json.js";
export { Emitter } from "./src/emitter.js";
export {
  TickforgeError,
  RejectError,
  ServerError,
  ClosedError,
  TimeoutError,
  ConnectError,
  DecodeError,
  DeltaError,
  ValueError,
  InputError,
  SchemaError,
  ProtocolError,
} from "./src/errors.js";
