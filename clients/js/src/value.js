// The contract's value (PROTOCOL.md section 11): what game options, room
// metadata, filters and game messages carry, in both forms, with every
// bound the Rust side enforces.
//
// In JavaScript a value is:
//   null | boolean | string
//   integer: a number that is a safe integer, or a bigint (i64 range)
//   float: a number that is not a whole number, or a Float (`float(2)`:
//          a whole-valued float keeps its type: 2.0 is not 2)
//   bytes: a Uint8Array
//   list: an array of values
//   map: a plain object of values (keys sorted by UTF-8 bytes on the wire)
// Decoders return exactly these (whole-valued floats as Float, integers
// past 2^53 as bigint), so a value read and written again gives the same
// bytes. A number that is a whole number past 2^53 is written as a float.

import { Reader, Writer, utf8, utf8Length, varintLength, zigzag64 } from "./bincode.js";
import { ValueError, DecodeError } from "./errors.js";
import { Float, formatFloat, writeInt, writeString } from "./json.js";

/** Most levels of lists and maps (the outermost counts as 1). */
export const MAX_DEPTH = 8;
/** Most bytes of UTF-8 in a string or a map key. */
export const MAX_STRING = 1024;
/** Most bytes a value takes in its encoding (JSON text or binary). */
export const MAX_SIZE = 4096;
/** The JSON key marking bytes, reserved in maps. */
export const BYTES_KEY = "$bytes";

const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

/**
 * The type of a value: `null`, `bool`, `int`, `float`, `string`,
 * `bytes`, `list` or `map`.
 * @throws {ValueError} for anything that is not a value
 */
export function valueType(v) {
  if (v === null) return "null";
  switch (typeof v) {
    case "boolean":
      return "bool";
    case "string":
      return "string";
    case "bigint":
      if (v < I64_MIN || v > I64_MAX) throw new ValueError("malformed", `integer ${v} is outside the i64 range`);
      return "int";
    case "number":
      if (!Number.isFinite(v)) throw new ValueError("non_finite", "float in a value is not finite");
      return Number.isSafeInteger(v) && !Object.is(v, -0) ? "int" : "float";
    case "object":
      if (v instanceof Float) {
        if (!Number.isFinite(v.value)) throw new ValueError("non_finite", "float in a value is not finite");
        return "float";
      }
      if (v instanceof Uint8Array) return "bytes";
      if (Array.isArray(v)) return "list";
      return "map";
    default:
      throw new ValueError("malformed", `a ${typeof v} is not a value`);
  }
}

/** Compares two strings by their UTF-8 bytes (code point order), as Rust's BTreeMap<String> orders keys. */
export function compareKeys(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (astral code points) sort after every BMP unit in UTF-8.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

function mapKeys(m) {
  return Object.keys(m).sort(compareKeys);
}

// ---- binary ----------------------------------------------------------------

/**
 * Appends a value's binary encoding (tag byte, content) to `w`. Writes
 * what it is given: use `checkValue` first for a value built by hand.
 * @param {Writer} w
 */
export function writeValueBin(w, v) {
  switch (valueType(v)) {
    case "null":
      w.u8(0);
      return;
    case "bool":
      w.u8(1);
      w.bool(v);
      return;
    case "int":
      w.u8(2);
      w.i64(v);
      return;
    case "float":
      w.u8(3);
      w.f64(Number(v));
      return;
    case "string":
      w.u8(4);
      w.string(v);
      return;
    case "bytes":
      w.u8(5);
      w.byteVec(v);
      return;
    case "list":
      w.u8(6);
      w.varint(v.length);
      for (const item of v) writeValueBin(w, item);
      return;
    default: {
      w.u8(7);
      const keys = mapKeys(v);
      w.varint(keys.length);
      for (const k of keys) {
        w.string(k);
        writeValueBin(w, v[k]);
      }
    }
  }
}

/** A value's binary encoding. */
export function encodeValueBin(v) {
  const w = new Writer();
  writeValueBin(w, v);
  return w.finish();
}

function spend(budget, n) {
  budget.left -= n;
  if (budget.left < 0) throw new ValueError("too_large", `value is over the ${MAX_SIZE}-byte limit`);
}

function checkLevel(level) {
  if (level > MAX_DEPTH) throw new ValueError("too_deep", `value nested deeper than ${MAX_DEPTH} levels of lists and maps`);
}

function readLen(r, budget, minEach) {
  const len = r.u64Any();
  spend(budget, varintLength(len));
  if (typeof len === "bigint" || len * minEach > budget.left) {
    throw new ValueError("too_large", `value is over the ${MAX_SIZE}-byte limit`);
  }
  return len;
}

function readBytes(r, budget, max) {
  const len = readLen(r, budget, 1);
  if (len > max) throw new ValueError("string_too_long", `string of ${len} bytes in a value is over the ${max}-byte limit`);
  spend(budget, len);
  return r.take(len);
}

function readString(r, budget) {
  return r.utf8(readBytes(r, budget, MAX_STRING));
}

/**
 * Reads one value at `r`, `level` lists and maps deep, spending its
 * canonical size from `budget` (as the Rust decoder does).
 * @param {Reader} r
 */
export function readValueBin(r, level = 0, budget = { left: MAX_SIZE }) {
  const tag = r.u32();
  spend(budget, varintLength(tag));
  switch (tag) {
    case 0:
      return null;
    case 1:
      spend(budget, 1);
      return r.bool();
    case 2: {
      const z = r.u64Any();
      spend(budget, varintLength(z));
      const v = typeof z === "bigint" ? unzigzagBig(z) : z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      return v;
    }
    case 3: {
      spend(budget, 8);
      const f = r.f64();
      if (!Number.isFinite(f)) throw new ValueError("non_finite", "float in a value is not finite");
      return Number.isInteger(f) || Object.is(f, -0) ? new Float(f) : f;
    }
    case 4:
      return readString(r, budget);
    case 5:
      return readBytes(r, budget, MAX_SIZE).slice();
    case 6: {
      checkLevel(level + 1);
      const n = readLen(r, budget, 1);
      const items = [];
      for (let i = 0; i < n; i++) items.push(readValueBin(r, level + 1, budget));
      return items;
    }
    case 7: {
      checkLevel(level + 1);
      const n = readLen(r, budget, 2);
      const map = {};
      for (let i = 0; i < n; i++) {
        const key = readString(r, budget);
        if (key === BYTES_KEY) throw new ValueError("reserved_key", 'the map key "$bytes" is reserved for bytes');
        setKey(map, key, readValueBin(r, level + 1, budget));
      }
      return map;
    }
    default:
      throw new ValueError("malformed", `unknown value tag ${tag}`);
  }
}

function unzigzagBig(z) {
  const v = (z >> 1n) ^ -(z & 1n);
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
}

/** Reads a value from exactly `bytes`. */
export function decodeValueBin(bytes) {
  const r = new Reader(bytes);
  const v = wrapMalformed(() => readValueBin(r));
  if (r.remaining > 0) throw new ValueError("malformed", "bytes left over after the value");
  return v;
}

function wrapMalformed(f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof DecodeError) throw new ValueError("malformed", `malformed value: ${e.detail}`);
    throw e;
  }
}

function setKey(map, key, v) {
  if (key === "__proto__") Object.defineProperty(map, key, { value: v, enumerable: true, writable: true, configurable: true });
  else map[key] = v;
}

// ---- JSON --------------------------------------------------------------------

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) BASE64_INDEX[BASE64.charCodeAt(i)] = i;

/** Standard padded base64 (RFC 4648). */
export function base64Encode(bytes) {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += BASE64[n >> 18] + BASE64[(n >> 12) & 63] + BASE64[(n >> 6) & 63] + BASE64[n & 63];
  }
  if (i + 1 === bytes.length) {
    const n = bytes[i] << 16;
    out += `${BASE64[n >> 18]}${BASE64[(n >> 12) & 63]}==`;
  } else if (i + 2 === bytes.length) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += `${BASE64[n >> 18]}${BASE64[(n >> 12) & 63]}${BASE64[(n >> 6) & 63]}=`;
  }
  return out;
}

/**
 * Decodes standard padded base64, refusing what Rust's `base64` standard
 * engine refuses (missing or extra padding, non-zero trailing bits).
 * @throws {ValueError} `bad_base64`
 */
export function base64Decode(text) {
  const bad = () => {
    throw new ValueError("bad_base64", '"$bytes" is not standard padded base64');
  };
  if (text.length % 4 !== 0) bad();
  let pad = 0;
  if (text.endsWith("==")) pad = 2;
  else if (text.endsWith("=")) pad = 1;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    const q = [0, 0, 0, 0];
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j);
      if (c === 61 && last && j >= 4 - pad) continue; // '='
      const v = c < 128 ? BASE64_INDEX[c] : -1;
      if (v < 0) bad();
      q[j] = v;
    }
    const n = (q[0] << 18) | (q[1] << 12) | (q[2] << 6) | q[3];
    if (last && pad === 2) {
      if (n & 0xffff) bad();
      out[o++] = n >> 16;
    } else if (last && pad === 1) {
      if (n & 0xff) bad();
      out[o++] = n >> 16;
      out[o++] = (n >> 8) & 0xff;
    } else {
      out[o++] = n >> 16;
      out[o++] = (n >> 8) & 0xff;
      out[o++] = n & 0xff;
    }
  }
  return out;
}

/** A value's compact JSON text, as serde_json writes it. */
export function writeValueJson(v) {
  switch (valueType(v)) {
    case "null":
      return "null";
    case "bool":
      return v ? "true" : "false";
    case "int":
      return writeInt(v);
    case "float":
      return formatFloat(Number(v));
    case "string":
      return writeString(v);
    case "bytes":
      return `{"${BYTES_KEY}":"${base64Encode(v)}"}`;
    case "list":
      return `[${v.map(writeValueJson).join(",")}]`;
    default:
      return `{${mapKeys(v)
        .map((k) => `${writeString(k)}:${writeValueJson(v[k])}`)
        .join(",")}}`;
  }
}

function checkString(s) {
  const len = utf8Length(s);
  if (len > MAX_STRING) throw new ValueError("string_too_long", `string of ${len} bytes in a value is over the ${MAX_STRING}-byte limit`);
}

/**
 * Converts parsed JSON (from `parseJson`) into a value, enforcing every
 * bound: `{"$bytes": ...}` becomes bytes, an integer past the i64 range a
 * float, the size measured as the compact text of the result.
 * @throws {ValueError}
 */
export function valueFromJson(json) {
  const v = convertJson(json, 0);
  if (utf8Length(writeValueJson(v)) > MAX_SIZE) throw new ValueError("too_large", `value is over the ${MAX_SIZE}-byte limit`);
  return v;
}

function convertJson(j, level) {
  if (j === null || typeof j === "boolean") return j;
  if (typeof j === "string") {
    checkString(j);
    return j;
  }
  if (typeof j === "number") return j;
  if (typeof j === "bigint") return j >= I64_MIN && j <= I64_MAX ? j : new Float(Number(j));
  if (j instanceof Float) return j;
  if (Array.isArray(j)) {
    checkLevel(level + 1);
    return j.map((x) => convertJson(x, level + 1));
  }
  if (typeof j === "object") {
    const keys = Object.keys(j);
    if (Object.prototype.hasOwnProperty.call(j, BYTES_KEY)) {
      const text = j[BYTES_KEY];
      if (keys.length !== 1 || typeof text !== "string") {
        throw new ValueError("reserved_key", 'the map key "$bytes" is reserved for bytes, written {"$bytes":"<base64>"} alone');
      }
      if (text.length > MAX_SIZE) throw new ValueError("too_large", `value is over the ${MAX_SIZE}-byte limit`);
      return base64Decode(text);
    }
    checkLevel(level + 1);
    const out = {};
    for (const k of keys.sort(compareKeys)) {
      checkString(k);
      setKey(out, k, convertJson(j[k], level + 1));
    }
    return out;
  }
  throw new ValueError("malformed", `a ${typeof j} is not a value`);
}

/**
 * Checks every bound of a value built by hand: depth, string lengths,
 * finite floats, the reserved key, and the size of both encodings (a
 * value must fit both forms).
 * @throws {ValueError}
 */
export function checkValue(v) {
  checkTree(v, 0);
  if (encodeValueBin(v).length > MAX_SIZE || utf8Length(writeValueJson(v)) > MAX_SIZE) {
    throw new ValueError("too_large", `value is over the ${MAX_SIZE}-byte limit`);
  }
}

function checkTree(v, level) {
  switch (valueType(v)) {
    case "string":
      checkString(v);
      return;
    case "list":
      checkLevel(level + 1);
      for (const x of v) checkTree(x, level + 1);
      return;
    case "map":
      checkLevel(level + 1);
      for (const k of Object.keys(v)) {
        if (k === BYTES_KEY) throw new ValueError("reserved_key", 'the map key "$bytes" is reserved for bytes');
        checkString(k);
        checkTree(v[k], level + 1);
      }
      return;
    default:
  }
}

/** Checks a value that must be a map (options, filters, metadata). */
export function checkMap(v) {
  if (valueType(v) !== "map") throw new ValueError("not_a_map", "expected a map value");
  checkValue(v);
}

/**
 * Whether two values are equal as the protocol defines it: same type and
 * content; `1` is not `1.0`; floats by their bits; maps whatever the key order.
 */
export function valueEquals(a, b) {
  const ta = valueType(a);
  if (ta !== valueType(b)) return false;
  switch (ta) {
    case "int":
      return BigInt(a) === BigInt(b);
    case "float":
      return Object.is(Number(a), Number(b));
    case "bytes":
      return a.length === b.length && a.every((x, i) => x === b[i]);
    case "list":
      return a.length === b.length && a.every((x, i) => valueEquals(x, b[i]));
    case "map": {
      const ka = Object.keys(a);
      return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && valueEquals(a[k], b[k]));
    }
    default:
      return a === b;
  }
}

export { utf8, zigzag64 };
