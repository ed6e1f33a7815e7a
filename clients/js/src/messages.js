// Every message of the protocol in both forms (PROTOCOL.md sections 2 to
// 5): `tickforge.v1.bin` (bincode 2, standard configuration) and
// `tickforge.v1.json`, byte for byte as the Rust codec writes them.
//
// A message is a plain object shaped like its JSON form:
//   {type: "req", id: 7, body: {type: "join_or_create", game: "arena"}}
//   {type: "tick", tick, server_time_us, baseline, input_seq, state}
// An absent optional field is left out (undefined); `tick.baseline` is
// null for a full state. A tick's `state` is the blob's bytes (a
// Uint8Array, binary) or the parsed state object (JSON); an input's `data`
// is the fields' bytes (binary) or an object by name (JSON).
//
// One table per enum lists each variant's fields in wire order; the
// encoders and decoders of both forms walk it, so the two forms cannot
// drift apart.

import { Reader, Writer } from "./bincode.js";
import { DecodeError, ValueError } from "./errors.js";
import { Float, formatFloat, parseJson, writeInt, writeString } from "./json.js";
import {
  MAX_INPUT_BYTES,
  MAX_INPUT_FIELDS,
  readInputSchemaBin,
  readInputSchemaJson,
  readSchemaBin,
  readSchemaJson,
  writeInputSchemaBin,
  writeInputSchemaJson,
  writeSchemaBin,
  writeSchemaJson,
} from "./schema.js";
import { readValueBin, valueFromJson, valueType, writeValueBin, writeValueJson } from "./value.js";

/** The reject codes, in wire order (their index is the binary form). */
export const REJECT_CODES = Object.freeze([
  "bad_request",
  "unsupported",
  "not_found",
  "room_full",
  "already_in_room",
  "not_in_room",
  "unauthorized",
  "rate_limited",
  "overloaded",
  "internal",
  "refused",
]);

/** The two subprotocols. */
export const SUBPROTOCOLS = Object.freeze({ bin: "tickforge.v1.bin", json: "tickforge.v1.json" });

// A field: [name, type, mode]. mode "opt": an Option, left out of JSON
// when absent; "always" (with a default): written always, read with the
// default when missing; none: required.
const f = (name, type, mode, fallback) => ({ name, type, mode, fallback });

/** Request bodies, by variant index. */
export const REQUESTS = [
  ["hello", [f("token", "string", "opt"), f("client", "string", "opt")]],
  ["list_rooms", [f("game", "string", "opt"), f("filter", "map", "opt")]],
  [
    "create_room",
    [f("game", "string"), f("max_players", "u32", "opt"), f("tick_hz", "u32", "opt"), f("private", "bool", "always", false), f("options", "map", "opt")],
  ],
  ["join_room", [f("room_id", "string"), f("reservation", "string", "opt")]],
  ["join_or_create", [f("game", "string"), f("options", "map", "opt")]],
  ["leave_room", []],
  ["ping", [f("client_time_us", "u64")]],
  ["resume", [f("room_id", "string"), f("resume_token", "string")]],
  ["watch_room", [f("room_id", "string")]],
  ["game_message", [f("name", "string"), f("data", "value")]],
];

/** Confirmation bodies, by variant index. */
export const CONFIRMS = [
  ["welcome", [f("session_id", "string"), f("server_version", "string"), f("user_id", "string", "opt")]],
  ["room_list", [f("rooms", "rooms")]],
  [
    "joined",
    [
      f("room_id", "string"),
      f("game", "string"),
      f("player_id", "u32"),
      f("entity_id", "u32"),
      f("tick_hz", "u32"),
      f("max_players", "u32"),
      f("resume_token", "string"),
      f("schema", "schema"),
      f("input_schema", "input_schema"),
    ],
  ],
  ["left", [f("room_id", "string")]],
  ["pong", [f("client_time_us", "u64"), f("server_time_us", "u64")]],
  ["watching", [f("room_id", "string"), f("game", "string"), f("tick_hz", "u32"), f("schema", "schema"), f("input_schema", "input_schema")]],
  ["game_reply", [f("data", "value")]],
  ["redirect", [f("url", "string"), f("room_id", "string"), f("reservation", "string")]],
];

/** Indication bodies, by variant index. */
export const INDICATIONS = [
  ["player_joined", [f("player_id", "u32"), f("user_id", "string", "opt"), f("name", "string", "opt")]],
  ["player_left", [f("player_id", "u32"), f("reason", "string")]],
  ["room_closing", [f("reason", "string")]],
  ["error", [f("code", "code"), f("reason", "string")]],
  ["player_disconnected", [f("player_id", "u32")]],
  ["player_reconnected", [f("player_id", "u32")]],
  ["game_event", [f("name", "string"), f("data", "value")]],
];

const ROOM = [
  f("room_id", "string"),
  f("game", "string"),
  f("players", "u32"),
  f("max_players", "u32"),
  f("tick_hz", "u32"),
  f("spectators", "u32", "always", 0),
  f("metadata", "map", "always", {}),
];

const byName = (table) => new Map(table.map(([name, fields], i) => [name, { index: i, fields }]));
const REQUEST_BY_NAME = byName(REQUESTS);
const CONFIRM_BY_NAME = byName(CONFIRMS);
const INDICATION_BY_NAME = byName(INDICATIONS);

/** Every request type name, in variant order. */
export const REQUEST_NAMES = Object.freeze(REQUESTS.map(([n]) => n));

// ---- binary ------------------------------------------------------------------------

function writeFieldBin(w, type, v, where) {
  switch (type) {
    case "u32":
      return w.u32(need(v, where, Number.isInteger, "a u32"));
    case "u64":
      return w.varint(v);
    case "bool":
      return w.bool(Boolean(v));
    case "string":
      return w.string(need(v, where, (x) => typeof x === "string", "a string"));
    case "value":
      return writeValueBin(w, v);
    case "map":
      if (valueType(v) !== "map") throw new ValueError("not_a_map", `${where}: expected a map value`);
      return writeValueBin(w, v);
    case "code": {
      const i = REJECT_CODES.indexOf(v);
      if (i < 0) throw new TypeError(`${where}: unknown reject code ${JSON.stringify(v)}`);
      return w.u8(i);
    }
    case "schema":
      return writeSchemaBin(w, v);
    case "input_schema":
      return writeInputSchemaBin(w, v);
    case "rooms":
      w.varint(v.length);
      for (const row of v) writeFieldsBin(w, ROOM, row, "room");
      return undefined;
    default:
      throw new TypeError(`unknown field type ${type}`);
  }
}

function need(v, where, test, what) {
  if (!test(v)) throw new TypeError(`${where}: expected ${what}, got ${JSON.stringify(v)}`);
  return v;
}

function writeFieldsBin(w, fields, obj, where) {
  for (const fd of fields) {
    const v = obj[fd.name];
    if (fd.mode === "opt") {
      if (v === undefined || v === null) w.u8(0);
      else {
        w.u8(1);
        writeFieldBin(w, fd.type, v, `${where}.${fd.name}`);
      }
    } else {
      writeFieldBin(w, fd.type, v === undefined && fd.mode === "always" ? fd.fallback : v, `${where}.${fd.name}`);
    }
  }
}

function readFieldBin(r, type) {
  switch (type) {
    case "u32":
      return r.u32();
    case "u64":
      return r.u64();
    case "bool":
      return r.bool();
    case "string":
      return r.string();
    case "value":
      return valueOrDecodeError(() => readValueBin(r));
    case "map": {
      const v = valueOrDecodeError(() => readValueBin(r));
      if (valueType(v) !== "map") throw new DecodeError("expected a map value");
      return v;
    }
    case "code": {
      const i = r.u32();
      if (i >= REJECT_CODES.length) throw new DecodeError(`unknown reject code #${i}`);
      return REJECT_CODES[i];
    }
    case "schema":
      return readSchemaBin(r);
    case "input_schema":
      return readInputSchemaBin(r);
    case "rooms": {
      const rooms = [];
      for (let n = r.len(8); n > 0; n--) rooms.push(readFieldsBin(r, ROOM, {}));
      return rooms;
    }
    default:
      throw new TypeError(`unknown field type ${type}`);
  }
}

function valueOrDecodeError(read) {
  try {
    return read();
  } catch (e) {
    if (e instanceof ValueError) throw new DecodeError(e.message);
    throw e;
  }
}

function readFieldsBin(r, fields, out) {
  for (const fd of fields) {
    if (fd.mode === "opt") {
      const v = r.option(() => readFieldBin(r, fd.type));
      if (v !== undefined) out[fd.name] = v;
    } else {
      out[fd.name] = readFieldBin(r, fd.type);
    }
  }
  return out;
}

function variant(table, name, where) {
  const v = table.get(name);
  if (!v) throw new TypeError(`${where}: unknown type ${JSON.stringify(name)}`);
  return v;
}

function writeBodyBin(w, table, body, where) {
  const { index, fields } = variant(table, body?.type, where);
  w.u8(index);
  writeFieldsBin(w, fields, body, where);
}

function readBodyBin(r, table, where) {
  const index = r.u32();
  const entry = table[index];
  if (!entry) throw new DecodeError(`unknown ${where} #${index}`);
  return readFieldsBin(r, entry[1], { type: entry[0] });
}

// ---- JSON ----------------------------------------------------------------------------

/** Canonical JSON text of parsed JSON (a tick's state object, input data). */
export function writeJson(v) {
  if (v === null) return "null";
  switch (typeof v) {
    case "boolean":
      return v ? "true" : "false";
    case "string":
      return writeString(v);
    case "bigint":
      return writeInt(v);
    case "number":
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? String(v) : formatFloat(v);
    default:
      if (v instanceof Float) return formatFloat(v.value);
      if (Array.isArray(v)) return `[${v.map(writeJson).join(",")}]`;
      return `{${Object.keys(v)
        .filter((k) => v[k] !== undefined)
        .map((k) => `${writeString(k)}:${writeJson(v[k])}`)
        .join(",")}}`;
  }
}

function writeFieldJson(type, v, where) {
  switch (type) {
    case "u32":
      need(v, where, (x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff, "a u32");
      return String(v);
    case "u64":
      return writeInt(v);
    case "bool":
      return v ? "true" : "false";
    case "string":
      return writeString(need(v, where, (x) => typeof x === "string", "a string"));
    case "value":
      return writeValueJson(v);
    case "map":
      if (valueType(v) !== "map") throw new ValueError("not_a_map", `${where}: expected a map value`);
      return writeValueJson(v);
    case "code":
      if (!REJECT_CODES.includes(v)) throw new TypeError(`${where}: unknown reject code ${JSON.stringify(v)}`);
      return `"${v}"`;
    case "schema":
      return writeSchemaJson(v);
    case "input_schema":
      return writeInputSchemaJson(v);
    case "rooms":
      return `[${v.map((row) => `{${writeFieldsJson(ROOM, row, "room")}}`).join(",")}]`;
    default:
      throw new TypeError(`unknown field type ${type}`);
  }
}

function writeFieldsJson(fields, obj, where) {
  const parts = [];
  for (const fd of fields) {
    let v = obj[fd.name];
    if (fd.mode === "opt" && (v === undefined || v === null)) continue;
    if (v === undefined && fd.mode === "always") v = fd.fallback;
    parts.push(`"${fd.name}":${writeFieldJson(fd.type, v, `${where}.${fd.name}`)}`);
  }
  return parts.join(",");
}

function writeBodyJson(table, body, where) {
  const { fields } = variant(table, body?.type, where);
  const rest = writeFieldsJson(fields, body, where);
  return `{"type":"${body.type}"${rest ? `,${rest}` : ""}}`;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Float);

function readU32Json(v, name) {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new DecodeError(`${name}: expected a u32, got ${describe(v)}`);
  }
  return v;
}

function readU64Json(v, name) {
  if (typeof v === "bigint") throw new DecodeError(`${name}: ${v} is past 2^53, which this client does not support`);
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) throw new DecodeError(`${name}: expected a u64, got ${describe(v)}`);
  return v;
}

function describe(v) {
  if (v instanceof Float) return `the float ${formatFloat(v.value)}`;
  if (typeof v === "bigint") return String(v);
  return v === undefined ? "nothing" : JSON.stringify(v);
}

function readFieldJson(type, v, name) {
  switch (type) {
    case "u32":
      return readU32Json(v, name);
    case "u64":
      return readU64Json(v, name);
    case "bool":
      if (typeof v !== "boolean") throw new DecodeError(`${name}: expected a bool, got ${describe(v)}`);
      return v;
    case "string":
      if (typeof v !== "string") throw new DecodeError(`${name}: expected a string, got ${describe(v)}`);
      return v;
    case "value":
      return valueOrDecodeError(() => valueFromJson(v));
    case "map": {
      const value = valueOrDecodeError(() => valueFromJson(v));
      if (valueType(value) !== "map") throw new DecodeError(`${name}: expected a map value`);
      return value;
    }
    case "code":
      if (!REJECT_CODES.includes(v)) throw new DecodeError(`${name}: unknown reject code ${describe(v)}`);
      return v;
    case "schema":
      return readSchemaJson(v);
    case "input_schema":
      return readInputSchemaJson(v);
    case "rooms":
      if (!Array.isArray(v)) throw new DecodeError(`${name}: expected a list`);
      return v.map((row) => {
        if (!isObject(row)) throw new DecodeError("room: expected an object");
        return readFieldsJson(ROOM, row, {}, "room");
      });
    default:
      throw new TypeError(`unknown field type ${type}`);
  }
}

function readFieldsJson(fields, obj, out, where) {
  for (const fd of fields) {
    const v = obj[fd.name];
    if (v === undefined || (v === null && fd.type !== "value")) {
      if (fd.mode === "opt") continue;
      if (fd.mode === "always") {
        out[fd.name] = typeof fd.fallback === "object" ? {} : fd.fallback;
        continue;
      }
      throw new DecodeError(`${where}: missing field ${fd.name}`);
    }
    out[fd.name] = readFieldJson(fd.type, v, `${where}.${fd.name}`);
  }
  return out;
}

function readBodyJson(table, names, body, where) {
  if (!isObject(body)) throw new DecodeError(`${where}: expected an object`);
  if (typeof body.type !== "string") throw new DecodeError(`${where}: missing type`);
  const entry = table.get(body.type);
  if (!entry) throw new DecodeError(`${where}: unknown variant ${JSON.stringify(body.type)}, expected one of ${names}`);
  return readFieldsJson(entry.fields, body, { type: body.type }, where);
}

const names = (table) => table.map(([n]) => n).join(", ");
const REQUEST_LIST = names(REQUESTS);
const CONFIRM_LIST = names(CONFIRMS);
const INDICATION_LIST = names(INDICATIONS);

// ---- client messages ------------------------------------------------------------------

/**
 * Encodes a client message: the binary bytes, or the JSON text.
 * @param {"bin" | "json"} format
 * @returns {Uint8Array | string}
 */
export function encodeClient(format, msg) {
  if (format === "bin") {
    const w = new Writer(32);
    switch (msg.type) {
      case "req":
        w.u8(0);
        w.u32(msg.id);
        writeBodyBin(w, REQUEST_BY_NAME, msg.body, "request");
        break;
      case "input":
        if (!(msg.data instanceof Uint8Array)) throw new TypeError("a binary input's data is its bytes (see inputData)");
        w.u8(1);
        w.u32(msg.seq);
        if (msg.ack === undefined || msg.ack === null) w.u8(0);
        else {
          w.u8(1);
          w.varint(msg.ack);
        }
        w.bytes(msg.data);
        break;
      case "ack":
        w.u8(2);
        w.varint(msg.tick);
        break;
      default:
        throw new TypeError(`unknown client message ${JSON.stringify(msg.type)}`);
    }
    return w.finish();
  }
  switch (msg.type) {
    case "req":
      readU32Json(msg.id, "id");
      return `{"type":"req","id":${msg.id},"body":${writeBodyJson(REQUEST_BY_NAME, msg.body, "request")}}`;
    case "input": {
      if (!isObject(msg.data) || msg.data instanceof Uint8Array) throw new TypeError("a JSON input's data is an object (see inputData)");
      const ack = msg.ack === undefined || msg.ack === null ? "" : `,"ack":${writeInt(msg.ack)}`;
      return `{"type":"input","seq":${readU32Json(msg.seq, "seq")}${ack},"data":${writeJson(msg.data)}}`;
    }
    case "ack":
      return `{"type":"ack","tick":${writeInt(msg.tick)}}`;
    default:
      throw new TypeError(`unknown client message ${JSON.stringify(msg.type)}`);
  }
}

/**
 * Decodes a client message (what a server does; for tests and tools).
 * @param {"bin" | "json"} format
 * @param {Uint8Array | ArrayBuffer | string} data
 * @throws {DecodeError} with `id` when a request's id could still be read
 */
export function decodeClient(format, data) {
  if (format === "bin") {
    const bytes = asBytes(data);
    const r = new Reader(bytes);
    let id;
    try {
      const kind = r.u32();
      if (kind === 0) {
        id = r.u32();
        const index = r.u32();
        if (index >= REQUESTS.length) throw new DecodeError(`unknown request type #${index}`, { id, unsupported: `#${index}` });
        const body = readFieldsBin(r, REQUESTS[index][1], { type: REQUESTS[index][0] });
        r.end();
        return { type: "req", id, body };
      }
      if (kind === 1) {
        const seq = r.u32();
        const ack = r.option(() => r.u64());
        const data = r.take(r.remaining).slice();
        if (data.length > MAX_INPUT_BYTES) throw new DecodeError(`input data of ${data.length} bytes is over ${MAX_INPUT_BYTES}`);
        return ack === undefined ? { type: "input", seq, data } : { type: "input", seq, ack, data };
      }
      if (kind === 2) {
        const tick = r.u64();
        r.end();
        return { type: "ack", tick };
      }
      throw new DecodeError(`unknown client message #${kind}`);
    } catch (e) {
      if (e instanceof DecodeError && e.id === undefined && id !== undefined) throw new DecodeError(e.detail, { id });
      throw e;
    }
  }
  const obj = parseJson(asText(data));
  if (!isObject(obj)) throw new DecodeError("expected a message object");
  const id = obj.type === "req" && typeof obj.id === "number" && Number.isInteger(obj.id) && obj.id >= 0 && obj.id <= 0xffffffff ? obj.id : undefined;
  try {
    switch (obj.type) {
      case "req": {
        readU32Json(obj.id, "id");
        const name = obj.body?.type;
        if (typeof name === "string" && !REQUEST_BY_NAME.has(name)) {
          throw new DecodeError(`unknown request type ${JSON.stringify(name)}`, { id, unsupported: name.slice(0, 64) });
        }
        return { type: "req", id: obj.id, body: readBodyJson(REQUEST_BY_NAME, REQUEST_LIST, obj.body, "body") };
      }
      case "input": {
        const seq = readU32Json(obj.seq, "seq");
        const out = { type: "input", seq };
        if (obj.ack !== undefined && obj.ack !== null) out.ack = readU64Json(obj.ack, "ack");
        if (!isObject(obj.data)) throw new DecodeError("data: expected an object");
        if (Object.keys(obj.data).length > MAX_INPUT_FIELDS) throw new DecodeError(`input data has more than ${MAX_INPUT_FIELDS} fields`);
        out.data = obj.data;
        return out;
      }
      case "ack":
        return { type: "ack", tick: readU64Json(obj.tick, "tick") };
      default:
        throw new DecodeError(`unknown message type ${describe(obj.type)}`);
    }
  } catch (e) {
    if (e instanceof DecodeError && e.id === undefined && id !== undefined) throw new DecodeError(e.detail, { id });
    throw e;
  }
}

// ---- server messages ----------------------------------------------------------------------

/**
 * Encodes a server message (what a server does; for tests and tools).
 * @param {"bin" | "json"} format
 * @returns {Uint8Array | string}
 */
export function encodeServer(format, msg) {
  if (format === "bin") {
    const w = new Writer(64);
    switch (msg.type) {
      case "cfm":
        w.u8(0);
        w.u32(msg.id);
        writeBodyBin(w, CONFIRM_BY_NAME, msg.body, "confirm");
        break;
      case "rej":
        w.u8(1);
        w.u32(msg.id);
        writeFieldBin(w, "code", msg.code, "rej.code");
        w.string(msg.reason);
        break;
      case "ind":
        w.u8(2);
        writeBodyBin(w, INDICATION_BY_NAME, msg.body, "indication");
        break;
      case "tick":
        if (!(msg.state instanceof Uint8Array)) throw new TypeError("a binary tick's state is the blob's bytes");
        w.u8(3);
        w.varint(msg.tick);
        w.varint(msg.server_time_us);
        if (msg.baseline === null || msg.baseline === undefined) w.u8(0);
        else {
          w.u8(1);
          w.varint(msg.baseline);
        }
        w.u32(msg.input_seq);
        w.byteVec(msg.state);
        break;
      default:
        throw new TypeError(`unknown server message ${JSON.stringify(msg.type)}`);
    }
    return w.finish();
  }
  switch (msg.type) {
    case "cfm":
      return `{"type":"cfm","id":${readU32Json(msg.id, "id")},"body":${writeBodyJson(CONFIRM_BY_NAME, msg.body, "confirm")}}`;
    case "rej":
      return `{"type":"rej","id":${readU32Json(msg.id, "id")},"code":${writeFieldJson("code", msg.code, "code")},"reason":${writeString(msg.reason)}}`;
    case "ind":
      return `{"type":"ind","body":${writeBodyJson(INDICATION_BY_NAME, msg.body, "indication")}}`;
    case "tick": {
      const baseline = msg.baseline === null || msg.baseline === undefined ? "null" : writeInt(msg.baseline);
      const state = typeof msg.state === "string" ? msg.state : writeJson(msg.state);
      return `{"type":"tick","tick":${writeInt(msg.tick)},"server_time_us":${writeInt(msg.server_time_us)},"baseline":${baseline},"input_seq":${readU32Json(msg.input_seq, "input_seq")},"state":${state}}`;
    }
    default:
      throw new TypeError(`unknown server message ${JSON.stringify(msg.type)}`);
  }
}

/**
 * Decodes a server message. A binary tick's `state` is a view into
 * `data` (apply it before reusing the buffer).
 * @param {"bin" | "json"} format
 * @param {Uint8Array | ArrayBuffer | string} data
 * @throws {DecodeError}
 */
export function decodeServer(format, data) {
  if (format === "bin") {
    const r = new Reader(asBytes(data));
    const kind = r.u32();
    let msg;
    switch (kind) {
      case 0:
        msg = { type: "cfm", id: r.u32(), body: null };
        msg.body = readBodyBin(r, CONFIRMS, "confirmation");
        break;
      case 1:
        msg = { type: "rej", id: r.u32(), code: readFieldBin(r, "code"), reason: r.string() };
        break;
      case 2:
        msg = { type: "ind", body: readBodyBin(r, INDICATIONS, "indication") };
        break;
      case 3: {
        const tick = r.u64();
        const serverTime = r.u64();
        const baseline = r.option(() => r.u64());
        const inputSeq = r.u32();
        const state = r.take(r.len());
        msg = { type: "tick", tick, server_time_us: serverTime, baseline: baseline ?? null, input_seq: inputSeq, state };
        break;
      }
      default:
        throw new DecodeError(`unknown server message #${kind}`);
    }
    r.end();
    return msg;
  }
  const obj = parseJson(asText(data));
  if (!isObject(obj)) throw new DecodeError("expected a message object");
  switch (obj.type) {
    case "cfm":
      return { type: "cfm", id: readU32Json(obj.id, "id"), body: readBodyJson(CONFIRM_BY_NAME, CONFIRM_LIST, obj.body, "body") };
    case "rej":
      return { type: "rej", id: readU32Json(obj.id, "id"), code: readFieldJson("code", obj.code, "code"), reason: readFieldJson("string", obj.reason, "reason") };
    case "ind":
      return { type: "ind", body: readBodyJson(INDICATION_BY_NAME, INDICATION_LIST, obj.body, "body") };
    case "tick": {
      const baseline = obj.baseline === undefined || obj.baseline === null ? null : readU64Json(obj.baseline, "baseline");
      if (!isObject(obj.state)) throw new DecodeError("state: expected an object");
      return {
        type: "tick",
        tick: readU64Json(obj.tick, "tick"),
        server_time_us: readU64Json(obj.server_time_us, "server_time_us"),
        baseline,
        input_seq: readU32Json(obj.input_seq, "input_seq"),
        state: obj.state,
      };
    }
    default:
      throw new DecodeError(`unknown message type ${describe(obj.type)}, expected cfm, rej, ind or tick`);
  }
}

/** The bytes of a binary frame's data. */
export function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) return concat(data.map(asBytes)); // ws's fragmented messages
  throw new DecodeError(`a ${typeof data} frame where binary bytes were expected`);
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** The text of a JSON frame's data. */
export function asText(data) {
  if (typeof data === "string") return data;
  try {
    return textDecoder.decode(asBytes(data));
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError("a text frame is not valid UTF-8");
  }
}

export { REQUEST_BY_NAME, CONFIRM_BY_NAME, INDICATION_BY_NAME };
