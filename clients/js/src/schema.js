// Entity schemas and input schemas (PROTOCOL.md sections 7 and 10): field
// types, quantization, dead reckoning's step, and a game's input data in
// both forms.
//
// A field type is `"u8"`, `"i8"`, `"u16"`, `"i16"`, `"i32"` or
// `{fixed: scale}`, as the JSON form writes it. Every field value is a
// quantized i32 on the wire; `fixed` fields are real numbers stepped by
// 1/scale for the game.

import { Reader, Writer, unzigzag32, zigzag32 } from "./bincode.js";
import { DecodeError, InputError, SchemaError } from "./errors.js";
import { Float } from "./json.js";

/** Most fields an entity schema may have. */
export const MAX_FIELDS = 12;
/** Most fields an input schema may have. */
export const MAX_INPUT_FIELDS = 16;
/** Most bytes binary input data may take. */
export const MAX_INPUT_BYTES = 5 * MAX_INPUT_FIELDS;

const NAMES = ["u8", "u16", "i16", "i32", "fixed", "i8"];
const I32_MIN = -2147483648;
const I32_MAX = 2147483647;

/** The scale of a `fixed` type, 0 for the integer types. */
export function scaleOf(type) {
  return typeof type === "object" && type !== null ? type.fixed : 0;
}

/** The smallest and largest quantized value of a type. */
export function rangeOf(type) {
  switch (type) {
    case "u8":
      return [0, 255];
    case "i8":
      return [-128, 127];
    case "u16":
      return [0, 65535];
    case "i16":
      return [-32768, 32767];
    default:
      return [I32_MIN, I32_MAX];
  }
}

/** Rust's `f64::round`: half away from zero. */
export function roundHalfAway(x) {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * Quantizes a real value as the Rust side does: `round(value × scale)` for
 * `fixed` (half away from zero), plain rounding otherwise, saturating at
 * the type's range (NaN gives 0).
 */
export function quantize(type, value) {
  const scale = scaleOf(type);
  const scaled = scale ? value * scale : value;
  if (Number.isNaN(scaled)) return 0;
  const [lo, hi] = rangeOf(type);
  return Math.min(hi, Math.max(lo, roundHalfAway(scaled)));
}

/** The real value of a quantized one (`q / scale` for `fixed`). */
export function dequantize(type, q) {
  const scale = scaleOf(type);
  return scale ? q / scale : q;
}

/**
 * The displacement one tick of velocity `v` (quantized) gives at `tickHz`:
 * `v / tickHz` rounded half away from zero (a zero rate counts as 1 Hz).
 */
export function stepPerTick(v, tickHz) {
  const hz = Math.max(1, tickHz);
  const half = Math.floor(hz / 2);
  return v >= 0 ? Math.trunc((v + half) / hz) : Math.trunc((v - half) / hz);
}

function typeName(type) {
  return typeof type === "string" ? type : "fixed";
}

function checkType(type, where) {
  if (typeof type === "string" && NAMES.includes(type) && type !== "fixed") return;
  if (typeof type === "object" && type !== null && Number.isInteger(type.fixed) && type.fixed >= 0 && type.fixed <= 0xffffffff) return;
  throw new SchemaError(`${where}: ${JSON.stringify(type)} is not a field type`);
}

/**
 * An entity schema ready for decoding: fields with their ranges, scales
 * and dead-reckoning sources, kinds by index and name. Validated as the
 * Rust `Schema::validate` does.
 * @param {{kinds: string[], fields: {name: string, type: any, integrates?: number}[]}} schema
 * @throws {SchemaError}
 */
export function compileSchema(schema) {
  const { kinds, fields } = schema;
  if (!Array.isArray(kinds) || !Array.isArray(fields)) throw new SchemaError("a schema has kinds and fields");
  if (fields.length > MAX_FIELDS) throw new SchemaError(`schema has ${fields.length} fields, at most ${MAX_FIELDS} are supported`);
  if (kinds.length === 0 || kinds.length > 256) throw new SchemaError(`schema has ${kinds.length} entity kinds, 1 to 256 are supported`);
  const kindIndex = new Map();
  kinds.forEach((k, i) => {
    if (kindIndex.has(k)) throw new SchemaError(`entity kind ${JSON.stringify(k)} is named twice`);
    kindIndex.set(k, i);
  });
  const out = fields.map((f, i) => {
    checkType(f.type, `field ${JSON.stringify(f.name)}`);
    if (f.name === "id" || f.name === "kind" || fields.slice(0, i).some((g) => g.name === f.name)) {
      throw new SchemaError(`field name ${JSON.stringify(f.name)} is used twice or reserved`);
    }
    const scale = scaleOf(f.type);
    if (typeof f.type === "object" && scale === 0) throw new SchemaError(`field ${JSON.stringify(f.name)} has scale 0`);
    const integrates = f.integrates ?? -1;
    if (integrates !== -1) {
      const v = fields[integrates];
      if (!v || integrates === i || !scale || scaleOf(v.type) !== scale) {
        throw new SchemaError(`field ${JSON.stringify(f.name)} integrates field ${integrates}, which is not a fixed field of the same scale`);
      }
    }
    const [lo, hi] = rangeOf(f.type);
    return { name: f.name, type: f.type, scale, lo, hi, integrates, unsigned: f.type === "u8" || f.type === "u16" };
  });
  const integrating = out.map((f, i) => [i, f.integrates]).filter(([, v]) => v >= 0);
  return {
    source: schema,
    kinds: kinds.slice(),
    kindIndex,
    fields: out,
    names: out.map((f) => f.name),
    fieldIndex: new Map(out.map((f, i) => [f.name, i])),
    count: out.length,
    fullMask: out.length >= 32 ? 0xffffffff : (1 << out.length) - 1,
    /** [field, velocity field] pairs that move by dead reckoning. */
    integrating,
  };
}

// ---- schemas on the wire -------------------------------------------------------

/** Writes a field type (bincode: variant index, the scale for `fixed`). */
export function writeFieldTypeBin(w, type) {
  if (typeof type === "object") {
    w.u8(4);
    w.u32(type.fixed);
  } else {
    w.u8(NAMES.indexOf(type));
  }
}

/** Reads a field type. */
export function readFieldTypeBin(r) {
  const v = r.u32();
  if (v === 4) return { fixed: r.u32() };
  if (v < NAMES.length) return NAMES[v];
  throw new DecodeError(`unknown field type #${v}`);
}

/** Writes an entity schema in bincode. */
export function writeSchemaBin(w, s) {
  w.varint(s.kinds.length);
  for (const k of s.kinds) w.string(k);
  w.varint(s.fields.length);
  for (const f of s.fields) {
    w.string(f.name);
    writeFieldTypeBin(w, f.type);
    if (f.integrates === undefined || f.integrates === null) w.u8(0);
    else {
      w.u8(1);
      w.u8(f.integrates);
    }
  }
}

/** Reads an entity schema in bincode. */
export function readSchemaBin(r) {
  const kinds = [];
  for (let n = r.len(); n > 0; n--) kinds.push(r.string());
  const fields = [];
  for (let n = r.len(2); n > 0; n--) {
    const name = r.string();
    const type = readFieldTypeBin(r);
    const integrates = r.option(() => r.u8());
    fields.push(integrates === undefined ? { name, type } : { name, type, integrates });
  }
  return { kinds, fields };
}

/** Writes an input schema in bincode. */
export function writeInputSchemaBin(w, s) {
  w.varint(s.fields.length);
  for (const f of s.fields) {
    w.string(f.name);
    writeFieldTypeBin(w, f.type);
  }
}

/** Reads an input schema in bincode. */
export function readInputSchemaBin(r) {
  const fields = [];
  for (let n = r.len(2); n > 0; n--) fields.push({ name: r.string(), type: readFieldTypeBin(r) });
  return { fields };
}

function fieldTypeJson(type) {
  return typeof type === "object" ? `{"fixed":${type.fixed}}` : JSON.stringify(type);
}

/** An entity schema's JSON text. */
export function writeSchemaJson(s) {
  const fields = s.fields.map((f) => {
    const integrates = f.integrates === undefined || f.integrates === null ? "" : `,"integrates":${f.integrates}`;
    return `{"name":${JSON.stringify(f.name)},"type":${fieldTypeJson(f.type)}${integrates}}`;
  });
  return `{"kinds":[${s.kinds.map((k) => JSON.stringify(k)).join(",")}],"fields":[${fields.join(",")}]}`;
}

/** An input schema's JSON text. */
export function writeInputSchemaJson(s) {
  return `{"fields":[${s.fields.map((f) => `{"name":${JSON.stringify(f.name)},"type":${fieldTypeJson(f.type)}}`).join(",")}]}`;
}

function readFieldTypeJson(v) {
  if (typeof v === "string" && NAMES.includes(v) && v !== "fixed") return v;
  if (v && typeof v === "object" && !Array.isArray(v)) {
    const keys = Object.keys(v);
    const scale = v.fixed;
    if (keys.length === 1 && typeof scale === "number" && Number.isInteger(scale) && scale >= 0 && scale <= 0xffffffff) {
      return { fixed: scale };
    }
  }
  throw new DecodeError(`${JSON.stringify(v)} is not a field type`);
}

function need(obj, key, test, what) {
  const v = obj?.[key];
  if (!test(v)) throw new DecodeError(`${key}: expected ${what}`);
  return v;
}

const isString = (v) => typeof v === "string";

/** Reads an entity schema from parsed JSON. */
export function readSchemaJson(obj) {
  const kinds = need(obj, "kinds", Array.isArray, "a list");
  if (!kinds.every(isString)) throw new DecodeError("kinds: expected strings");
  const fields = need(obj, "fields", Array.isArray, "a list").map((f) => {
    const name = need(f, "name", isString, "a string");
    const type = readFieldTypeJson(f?.type);
    const integrates = f.integrates;
    if (integrates === undefined || integrates === null) return { name, type };
    if (!Number.isInteger(integrates) || integrates < 0 || integrates > 255) throw new DecodeError("integrates: expected a u8");
    return { name, type, integrates };
  });
  return { kinds: kinds.slice(), fields };
}

/** Reads an input schema from parsed JSON. */
export function readInputSchemaJson(obj) {
  const fields = need(obj, "fields", Array.isArray, "a list").map((f) => ({
    name: need(f, "name", isString, "a string"),
    type: readFieldTypeJson(f?.type),
  }));
  return { fields };
}

// ---- input data --------------------------------------------------------------------

/**
 * Checks an input schema (at most 16 fields, names all different, no
 * `fixed` of scale 0).
 * @throws {SchemaError}
 */
export function checkInputSchema(s) {
  if (!s || !Array.isArray(s.fields)) throw new SchemaError("an input schema has fields");
  if (s.fields.length > MAX_INPUT_FIELDS) throw new SchemaError(`input schema has ${s.fields.length} fields, at most ${MAX_INPUT_FIELDS} are supported`);
  s.fields.forEach((f, i) => {
    checkType(f.type, `input field ${JSON.stringify(f.name)}`);
    if (s.fields.slice(0, i).some((g) => g.name === f.name)) throw new SchemaError(`field name ${JSON.stringify(f.name)} is used twice or reserved`);
    if (typeof f.type === "object" && f.type.fixed === 0) throw new SchemaError(`field ${JSON.stringify(f.name)} has scale 0`);
  });
}

/**
 * Quantizes an input given by name (`{move_x: 10, move_y: -5, buttons: 1}`):
 * integers for the integer types, real numbers for `fixed`. Returns the
 * quantized values in schema order.
 * @throws {InputError} a field missing, not a number of its type, out of range, or unknown
 */
export function quantizeInput(schema, values) {
  if (!values || typeof values !== "object") throw new InputError("wrong_type", "input values are an object of fields by name");
  for (const name of Object.keys(values)) {
    if (!schema.fields.some((f) => f.name === name)) {
      throw new InputError("unknown_field", `input field ${JSON.stringify(name)} is not in the game's input schema`, name);
    }
  }
  return schema.fields.map((f) => {
    const v = values[f.name];
    if (v === undefined || v === null) throw new InputError("missing", `input field ${JSON.stringify(f.name)} is missing`, f.name);
    const n = Number(v);
    if (typeof v !== "number" && !(v instanceof Float)) {
      throw new InputError("wrong_type", `input field ${JSON.stringify(f.name)} is not a number of its type`, f.name);
    }
    let q;
    const scale = scaleOf(f.type);
    if (scale) {
      q = roundHalfAway(n * scale);
      if (!Number.isFinite(q) || q < I32_MIN || q > I32_MAX) {
        throw new InputError("out_of_range", `input field ${JSON.stringify(f.name)} is out of range for its type`, f.name);
      }
    } else {
      if (!Number.isInteger(n) || v instanceof Float) {
        throw new InputError("wrong_type", `input field ${JSON.stringify(f.name)} is not a number of its type`, f.name);
      }
      q = n;
    }
    const [lo, hi] = rangeOf(f.type);
    if (q < lo || q > hi) throw new InputError("out_of_range", `input field ${JSON.stringify(f.name)} is out of range for its type`, f.name);
    return q;
  });
}

function putVarint(w, v) {
  // bincode's varint of a u32.
  w.varint(v >>> 0);
}

/**
 * Input data for `format` from quantized values (schema order): the bytes
 * of the fields (binary), or an object by name with fixed fields as floats
 * (JSON).
 * @returns {Uint8Array | Record<string, number | Float>}
 */
export function inputData(format, schema, quantized) {
  if (format === "bin") {
    const w = new Writer(16);
    schema.fields.forEach((f, i) => {
      const q = quantized[i];
      if (f.type === "u8" || f.type === "i8") w.u8(q);
      else if (f.type === "u16") putVarint(w, q);
      else putVarint(w, zigzag32(q));
    });
    return w.finish();
  }
  const out = {};
  schema.fields.forEach((f, i) => {
    const scale = scaleOf(f.type);
    out[f.name] = scale ? new Float(quantized[i] / scale) : quantized[i];
  });
  return out;
}

/**
 * Reads binary input data with the schema (what a server does): the
 * quantized values in schema order.
 * @throws {InputError}
 */
export function readInputBin(schema, bytes) {
  const r = new Reader(bytes);
  const values = schema.fields.map((f) => {
    try {
      if (f.type === "u8") return r.u8();
      if (f.type === "i8") return r.i8();
      const m = r.u8();
      let v;
      if (m < 251) v = m;
      else if (m === 251) v = r.le(2);
      else if (m === 252) v = r.le(4);
      else if (m === 253) {
        const lo = r.le(4);
        const hi = r.le(4);
        if (hi !== 0) throw new InputError("out_of_range", `input field ${JSON.stringify(f.name)} is out of range for its type`, f.name);
        v = lo;
      } else throw new InputError("bad_varint", `input field ${JSON.stringify(f.name)} has a malformed varint`, f.name);
      if (f.type === "u16" || f.type === "i16") {
        if (v > 0xffff) throw new InputError("out_of_range", `input field ${JSON.stringify(f.name)} is out of range for its type`, f.name);
        return f.type === "u16" ? v : unzigzag32(v);
      }
      return unzigzag32(v);
    } catch (e) {
      if (e instanceof DecodeError) throw new InputError("missing", `input field ${JSON.stringify(f.name)} is missing`, f.name);
      throw e;
    }
  });
  if (r.remaining > 0) throw new InputError("trailing_bytes", `${r.remaining} bytes after the input's last field`);
  return values;
}

/** Reads JSON input data (a parsed object) with the schema: quantized values. */
export function readInputJson(schema, data) {
  if (!data || typeof data !== "object" || Array.isArray(data)) throw new InputError("wrong_type", "input data is an object");
  return quantizeInput(schema, data);
}

export { typeName };
