// Snapshots and state deltas (PROTOCOL.md sections 6 to 9): the binary
// blob (LEB128 varints, zigzag, a field bitmask per entity, residuals
// against dead reckoning) and the JSON state object, applied to a
// baseline exactly as the Rust client does, refusing anything that does
// not apply cleanly with a DeltaError and never touching the baseline.
//
// A Snapshot keeps its entities in three typed arrays sorted by id (ids,
// kinds, quantized values): applying a delta allocates three arrays and no
// object per entity. Entity objects (`{id, kind, x, y, ...}`, fixed fields
// as real numbers) are made on demand and cached.

import { DeltaError } from "./errors.js";
import { Float } from "./json.js";
import { dequantize, quantize, stepPerTick } from "./schema.js";

/** Most entities a decoded state may hold. */
export const MAX_ENTITIES = 65536;

const EMPTY = new Int32Array(0);

/**
 * A room's state at one tick: entities sorted by id, values quantized.
 *
 * One Int32Array holds every entity, `stride` = 2 + the schema's field
 * count numbers each: id (as i32 bits), kind index, then the field values
 * in schema order.
 */
export class Snapshot {
  /**
   * @param {object} schema a compiled schema (compileSchema)
   * @param {number} tick
   * @param {Int32Array} [data] `size × (2 + schema.count)` numbers, ids ascending
   */
  constructor(schema, tick, data = EMPTY) {
    this.schema = schema;
    this.tick = tick;
    this.stride = 2 + schema.count;
    this.data = data;
    /** How many entities it holds. */
    this.size = data.length / this.stride;
    /** @type {(object | undefined)[] | null} */
    this.cache = null;
  }

  /** The id of the entity at index `i`. */
  idAt(i) {
    return this.data[i * this.stride] >>> 0;
  }

  /** The kind index of the entity at index `i`. */
  kindAt(i) {
    return this.data[i * this.stride + 1];
  }

  /** The index of entity `id`, or -1. */
  indexOf(id) {
    const d = this.data;
    const stride = this.stride;
    let lo = 0;
    let hi = this.size - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = d[mid * stride] >>> 0;
      if (v === id) return mid;
      if (v < id) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Whether entity `id` is in this state. */
  has(id) {
    return this.indexOf(id) >= 0;
  }

  /** The entity at index `i` as an object: `{id, kind, ...fields}` (fixed fields real). Read-only, cached. */
  at(i) {
    if (!this.cache) this.cache = new Array(this.size);
    let e = this.cache[i];
    if (e === undefined) {
      const s = this.schema;
      const base = i * this.stride;
      e = { id: this.data[base] >>> 0, kind: s.kinds[this.data[base + 1]] };
      for (let f = 0; f < s.count; f++) {
        const fd = s.fields[f];
        const q = this.data[base + 2 + f];
        e[fd.name] = fd.scale ? q / fd.scale : q;
      }
      this.cache[i] = e;
    }
    return e;
  }

  /** Entity `id` as an object, or undefined. */
  get(id) {
    const i = this.indexOf(id);
    return i < 0 ? undefined : this.at(i);
  }

  /** Every entity as an object, in id order. */
  entities() {
    const out = new Array(this.size);
    for (let i = 0; i < out.length; i++) out[i] = this.at(i);
    return out;
  }

  /** How many entities are of kind `name`. */
  count(name) {
    const k = this.schema.kindIndex.get(name);
    if (k === undefined) return 0;
    let n = 0;
    for (let i = 1; i < this.data.length; i += this.stride) if (this.data[i] === k) n++;
    return n;
  }

  /** The quantized value of field `f` of the entity at index `i`. */
  quantized(i, f) {
    return this.data[i * this.stride + 2 + f];
  }

  /** The state as rows `[id, kind index, ...quantized values]` (for tests and tools). */
  rows() {
    const out = [];
    for (let i = 0; i < this.size; i++) {
      const row = Array.from(this.data.subarray(i * this.stride, (i + 1) * this.stride));
      row[0] >>>= 0;
      out.push(row);
    }
    return out;
  }

  /** A snapshot of rows `[id, kind index, ...quantized values]`, ids ascending. */
  static fromRows(schema, tick, rows) {
    const stride = 2 + schema.count;
    const data = new Int32Array(rows.length * stride);
    rows.forEach((r, i) => {
      for (let k = 0; k < stride; k++) data[i * stride + k] = r[k] | 0;
    });
    return new Snapshot(schema, tick, data);
  }
}

// ---- the binary blob --------------------------------------------------------------

/** A LEB128 cursor over a blob. */
class Leb {
  constructor(bytes) {
    this.b = bytes;
    this.pos = 0;
  }

  byte() {
    if (this.pos >= this.b.length) throw new DeltaError("truncated", "state bytes are truncated");
    return this.b[this.pos++];
  }

  /** A u32: at most 5 bytes, at most 2^32 - 1. */
  u32() {
    const b0 = this.byte();
    if (b0 < 0x80) return b0;
    let value = b0 & 0x7f;
    let scale = 128;
    for (let i = 1; i < 5; i++) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (value > 0xffffffff) throw new DeltaError("bad_varint", "malformed varint in state bytes");
        return value;
      }
      scale *= 128;
    }
    throw new DeltaError("bad_varint", "malformed varint in state bytes");
  }

  /** A zigzag i32. */
  signed() {
    const z = this.u32();
    return (z >>> 1) ^ -(z & 1);
  }
}

function count(r) {
  const n = r.u32();
  if (n > MAX_ENTITIES) throw new DeltaError("too_many_entities", `state holds more than ${MAX_ENTITIES} entities`, { max: MAX_ENTITIES });
  if (n > r.b.length - r.pos) throw new DeltaError("truncated", "state bytes are truncated");
  return n;
}

function nextId(r, prev) {
  const gap = r.u32();
  if (prev < 0) return gap;
  if (gap === 0) throw new DeltaError("unordered_ids", "entity ids are not ascending");
  const id = prev + gap;
  if (id > 0xffffffff) throw new DeltaError("bad_varint", "malformed varint in state bytes");
  return id;
}

const unknownEntity = (id) => new DeltaError("unknown_entity", `entity ${id} is not in the baseline`, { id });
const badValue = (field) => new DeltaError("bad_value", `field ${JSON.stringify(field)} has an invalid value`, { field });

/** Scratch space of the walks, grown on demand: kept entities, spawned ones, removed ids. */
const scratch = { kept: new Int32Array(64 * 14), spawned: new Int32Array(16 * 14), removed: new Float64Array(64) };

function room(name, n) {
  if (scratch[name].length < n) scratch[name] = new scratch[name].constructor(Math.max(n, scratch[name].length * 2));
  return scratch[name];
}

/** Copies base entity `i` to `kept[out]`, advanced by dead reckoning. */
function carry(kept, out, old, i, stride, integrating, ticksLow, tickHz) {
  const src = i * stride;
  const dst = out * stride;
  for (let k = 0; k < stride; k++) kept[dst + k] = old[src + k];
  for (let k = 0; k < integrating.length; k++) {
    const pair = integrating[k];
    const fi = 2 + pair[0];
    kept[dst + fi] = (old[src + fi] + Math.imul(ticksLow, stepPerTick(old[src + 2 + pair[1]], tickHz))) | 0;
  }
}

/**
 * Decodes a binary state blob and applies it to `base` (null: a full
 * state), giving the state at `tick`. `base` is not changed.
 * @param {object} schema a compiled schema
 * @param {number} tickHz the room's rate (dead reckoning's step)
 * @param {Snapshot | null} base the snapshot of the tick's `baseline`
 * @param {number} tick
 * @param {Uint8Array} bytes
 * @returns {Snapshot}
 * @throws {DeltaError}
 */
export function applyBin(schema, tickHz, base, tick, bytes) {
  const r = new Leb(bytes);
  const nf = schema.count;
  const stride = 2 + nf;
  const fields = schema.fields;
  const integrating = schema.integrating;
  const fullMask = schema.fullMask;
  const old = base ? base.data : EMPTY;
  const oldCount = base ? base.size : 0;
  // Dead reckoning's displacement is ticks × step, wrapped to 32 bits: the
  // low 32 bits of `ticks` give the same bits (Math.imul).
  const ticksLow = base ? (tick - base.tick) | 0 : 0;

  const removedCount = count(r);
  const removed = room("removed", removedCount);
  let prev = -1;
  for (let i = 0; i < removedCount; i++) {
    prev = nextId(r, prev);
    removed[i] = prev;
  }

  const kept = room("kept", oldCount * stride);
  let out = 0; // entities written to `kept`
  let oi = 0; // next base entity
  let ri = 0; // next removed id

  let n = count(r);
  prev = -1;
  for (let u = 0; u <= n; u++) {
    // Carry base entities with ids below the next update's (all of them
    // after the last update): removed ones dropped, the rest advanced by
    // the prediction.
    const limit = u < n ? nextId(r, prev) : Infinity;
    while (oi < oldCount) {
      const id = old[oi * stride] >>> 0;
      if (id >= limit) break;
      if (ri < removedCount && removed[ri] <= id) {
        if (removed[ri] < id) throw unknownEntity(removed[ri]);
        ri++;
        oi++;
        continue;
      }
      carry(kept, out++, old, oi++, stride, integrating, ticksLow, tickHz);
    }
    if (u === n) break;
    const id = limit;
    prev = id;
    const mask = r.u32();
    const extra = (mask & ~fullMask) >>> 0;
    if (extra !== 0) {
      const bit = 31 - Math.clz32(extra & -extra);
      throw new DeltaError("unknown_field", `field "bit ${bit}" is not in the schema`, { field: `bit ${bit}` });
    }
    // The update's entity must be the next base entity, and not removed.
    if (oi >= oldCount || old[oi * stride] >>> 0 !== id || (ri < removedCount && removed[ri] === id)) throw unknownEntity(id);
    carry(kept, out, old, oi++, stride, integrating, ticksLow, tickHz);
    const dst = out++ * stride + 2;
    for (let f = 0; f < nf; f++) {
      if (mask & (1 << f)) {
        const v = (kept[dst + f] + r.signed()) | 0;
        const fd = fields[f];
        if (v < fd.lo || v > fd.hi) throw badValue(fd.name);
        kept[dst + f] = v;
      }
    }
  }
  if (ri < removedCount) throw unknownEntity(removed[ri]);

  n = count(r);
  const spawned = room("spawned", n * stride);
  prev = -1;
  for (let s = 0; s < n; s++) {
    const id = nextId(r, prev);
    prev = id;
    const at = s * stride;
    spawned[at] = id | 0;
    const kind = r.byte();
    spawned[at + 1] = kind;
    for (let f = 0; f < nf; f++) {
      let v;
      if (fields[f].unsigned) {
        v = r.u32();
        if (v > 0x7fffffff) throw new DeltaError("bad_varint", "malformed varint in state bytes");
      } else v = r.signed();
      spawned[at + 2 + f] = v;
    }
    if (kind >= schema.kinds.length) throw new DeltaError("unknown_kind", `entity kind ${kind} is not in the schema`, { kindIndex: kind });
    for (let f = 0; f < nf; f++) {
      const v = spawned[at + 2 + f];
      if (v < fields[f].lo || v > fields[f].hi) throw badValue(fields[f].name);
    }
  }
  if (r.pos < bytes.length) {
    const left = bytes.length - r.pos;
    throw new DeltaError("trailing_bytes", `${left} bytes left over after the state`, { count: left });
  }
  if (out + n > MAX_ENTITIES) throw new DeltaError("too_many_entities", `state holds more than ${MAX_ENTITIES} entities`, { max: MAX_ENTITIES });
  return merge(schema, tick, kept, out, spawned, n);
}

/** Merges ascending spawns into ascending kept entities, refusing ids present in both. */
function merge(schema, tick, kept, keptCount, spawned, spawnedCount) {
  const stride = 2 + schema.count;
  if (spawnedCount === 0) return new Snapshot(schema, tick, kept.slice(0, keptCount * stride));
  const data = new Int32Array((keptCount + spawnedCount) * stride);
  // Spawns are few: copy the runs of kept entities between them whole.
  let a = 0;
  let o = 0;
  for (let b = 0; b < spawnedCount; b++) {
    const id = spawned[b * stride] >>> 0;
    const from = a;
    while (a < keptCount && kept[a * stride] >>> 0 < id) a++;
    if (a < keptCount && kept[a * stride] >>> 0 === id) throw new DeltaError("duplicate_entity", `entity ${id} spawned twice`, { id });
    if (a > from) {
      data.set(kept.subarray(from * stride, a * stride), o);
      o += (a - from) * stride;
    }
    for (let k = 0; k < stride; k++) data[o + k] = spawned[b * stride + k];
    o += stride;
  }
  if (a < keptCount) data.set(kept.subarray(a * stride, keptCount * stride), o);
  return new Snapshot(schema, tick, data);
}

// ---- the JSON state object ------------------------------------------------------------

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Float);

function readId(obj) {
  const id = obj.id;
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffffffff) throw badValue("id");
  return id;
}

function readFieldValue(fd, v) {
  if (fd.scale) {
    if (typeof v !== "number" && !(v instanceof Float) && typeof v !== "bigint") throw badValue(fd.name);
    return quantize(fd.type, Number(v));
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v < fd.lo || v > fd.hi) throw badValue(fd.name);
  return v;
}

/** Reads an entity's fields (other than id and kind) into `values` at `at`; returns the mask of those present. */
function readFields(schema, obj, values, at) {
  let mask = 0;
  for (const name of Object.keys(obj)) {
    if (name === "id" || name === "kind") continue;
    const f = schema.fieldIndex.get(name);
    if (f === undefined) throw new DeltaError("unknown_field", `field ${JSON.stringify(name)} is not in the schema`, { field: name });
    values[at + f] = readFieldValue(schema.fields[f], obj[name]);
    mask |= 1 << f;
  }
  return mask;
}

function list(state, key) {
  const v = state[key];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new DeltaError("json", `state JSON is malformed: ${key} is not a list`);
  return v;
}

function ascending(ids) {
  for (let i = 1; i < ids.length; i++) if (ids[i - 1] >= ids[i]) throw new DeltaError("unordered_ids", "entity ids are not ascending");
}

/**
 * Applies a JSON state object (as parsed from a `tickforge.v1.json`
 * tick) to `base` (null: a full state), giving the state at `tick`.
 * @param {object} schema a compiled schema
 * @param {Snapshot | null} base
 * @param {number} tick
 * @param {object} state `{spawned, updated, removed}`
 * @returns {Snapshot}
 * @throws {DeltaError}
 */
export function applyJson(schema, base, tick, state) {
  if (!isObject(state)) throw new DeltaError("json", "state JSON is malformed: not an object");
  for (const key of Object.keys(state)) {
    if (key !== "spawned" && key !== "updated" && key !== "removed") {
      throw new DeltaError("json", `state JSON is malformed: unknown field ${JSON.stringify(key)}, expected spawned, updated or removed`);
    }
  }
  const spawnedRaw = list(state, "spawned");
  const updatedRaw = list(state, "updated");
  const removedRaw = list(state, "removed");
  if (spawnedRaw.length + updatedRaw.length + removedRaw.length > MAX_ENTITIES) {
    throw new DeltaError("too_many_entities", `state holds more than ${MAX_ENTITIES} entities`, { max: MAX_ENTITIES });
  }
  const nf = schema.count;
  const stride = 2 + nf;
  const removed = removedRaw.map((id) => {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new DeltaError("json", "state JSON is malformed: removed holds a value that is not a u32");
    }
    return id;
  });
  const spawned = room("spawned", spawnedRaw.length * stride);
  const spawnIds = [];
  spawnedRaw.forEach((obj, s) => {
    if (!isObject(obj)) throw new DeltaError("json", "state JSON is malformed: an entity is not an object");
    const id = readId(obj);
    if (typeof obj.kind !== "string") throw badValue("kind");
    const kind = schema.kindIndex.get(obj.kind);
    if (kind === undefined) throw new DeltaError("unknown_kind", `entity kind ${JSON.stringify(obj.kind)} is not in the schema`, { kindName: obj.kind });
    if (readFields(schema, obj, spawned, s * stride + 2) !== schema.fullMask) {
      throw new DeltaError("missing_fields", `spawned entity ${id} lacks fields`, { id });
    }
    spawned[s * stride] = id | 0;
    spawned[s * stride + 1] = kind;
    spawnIds.push(id);
  });
  const updates = updatedRaw.map((obj) => {
    if (!isObject(obj)) throw new DeltaError("json", "state JSON is malformed: an entity is not an object");
    const id = readId(obj);
    const values = new Int32Array(nf);
    const mask = readFields(schema, obj, values, 0);
    return { id, mask, values };
  });
  ascending(removed);
  ascending(updates.map((u) => u.id));
  ascending(spawnIds);

  const old = base ? base.data : EMPTY;
  const oldCount = base ? base.size : 0;
  const kept = room("kept", oldCount * stride);
  let out = 0;
  let ri = 0;
  let ui = 0;
  for (let i = 0; i < oldCount; i++) {
    const id = old[i * stride] >>> 0;
    if (ri < removed.length) {
      if (removed[ri] < id) throw unknownEntity(removed[ri]);
      if (removed[ri] === id) {
        ri++;
        if (ui < updates.length && updates[ui].id === id) throw unknownEntity(id);
        continue;
      }
    }
    const dst = out * stride;
    for (let k = 0; k < stride; k++) kept[dst + k] = old[i * stride + k];
    if (ui < updates.length) {
      const u = updates[ui];
      if (u.id < id) throw unknownEntity(u.id);
      if (u.id === id) {
        for (let f = 0; f < nf; f++) if (u.mask & (1 << f)) kept[dst + 2 + f] = u.values[f];
        ui++;
      }
    }
    out++;
  }
  if (ri < removed.length) throw unknownEntity(removed[ri]);
  if (ui < updates.length) throw unknownEntity(updates[ui].id);
  return merge(schema, tick, kept, out, spawned, spawnIds.length);
}

/** An entity's real field values from quantized ones (schema order). */
export function entityFromValues(schema, id, kindIndex, quantized) {
  const e = { id, kind: schema.kinds[kindIndex] };
  schema.fields.forEach((fd, f) => {
    e[fd.name] = dequantize(fd.type, quantized[f]);
  });
  return e;
}
