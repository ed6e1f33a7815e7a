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

const EMPTY_IDS = new Uint32Array(0);
const EMPTY_KINDS = new Uint8Array(0);
const EMPTY_VALUES = new Int32Array(0);

/** A room's state at one tick: entities sorted by id, values quantized. */
export class Snapshot {
  /**
   * @param {object} schema a compiled schema (compileSchema)
   * @param {number} tick
   * @param {Uint32Array} ids ascending
   * @param {Uint8Array} kinds
   * @param {Int32Array} values `ids.length × schema.count`, entity-major
   */
  constructor(schema, tick, ids = EMPTY_IDS, kinds = EMPTY_KINDS, values = EMPTY_VALUES) {
    this.schema = schema;
    this.tick = tick;
    this.ids = ids;
    this.kinds = kinds;
    this.values = values;
    /** @type {(object | undefined)[] | null} */
    this.cache = null;
  }

  /** How many entities it holds. */
  get size() {
    return this.ids.length;
  }

  /** The index of entity `id`, or -1. */
  indexOf(id) {
    const ids = this.ids;
    let lo = 0;
    let hi = ids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = ids[mid];
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
    if (!this.cache) this.cache = new Array(this.ids.length);
    let e = this.cache[i];
    if (e === undefined) {
      const s = this.schema;
      e = { id: this.ids[i], kind: s.kinds[this.kinds[i]] };
      const base = i * s.count;
      for (let f = 0; f < s.count; f++) {
        const fd = s.fields[f];
        e[fd.name] = fd.scale ? this.values[base + f] / fd.scale : this.values[base + f];
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
    const out = new Array(this.ids.length);
    for (let i = 0; i < out.length; i++) out[i] = this.at(i);
    return out;
  }

  /** How many entities are of kind `name`. */
  count(name) {
    const k = this.schema.kindIndex.get(name);
    if (k === undefined) return 0;
    let n = 0;
    for (let i = 0; i < this.kinds.length; i++) if (this.kinds[i] === k) n++;
    return n;
  }

  /** The quantized value of field `f` of the entity at index `i`. */
  quantized(i, f) {
    return this.values[i * this.schema.count + f];
  }

  /** The state as rows `[id, kind index, ...quantized values]` (for tests and tools). */
  rows() {
    const n = this.schema.count;
    const out = [];
    for (let i = 0; i < this.ids.length; i++) out.push([this.ids[i], this.kinds[i], ...this.values.subarray(i * n, i * n + n)]);
    return out;
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

/** Reusable scratch arrays of the walk (grown on demand). */
const scratch = { ids: new Uint32Array(64), kinds: new Uint8Array(64), values: new Int32Array(64 * 12), removed: new Uint32Array(64) };

function grow(n, nf) {
  if (scratch.ids.length < n) {
    const size = Math.max(n, scratch.ids.length * 2);
    scratch.ids = new Uint32Array(size);
    scratch.kinds = new Uint8Array(size);
  }
  if (scratch.values.length < n * nf) scratch.values = new Int32Array(Math.max(n * nf, scratch.values.length * 2));
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
  const fields = schema.fields;
  const integrating = schema.integrating;
  const fullMask = schema.fullMask;
  const oldIds = base ? base.ids : EMPTY_IDS;
  const oldKinds = base ? base.kinds : EMPTY_KINDS;
  const oldValues = base ? base.values : EMPTY_VALUES;
  const oldCount = oldIds.length;
  // Dead reckoning's displacement is ticks × step, wrapped to 32 bits: the
  // low 32 bits of `ticks` give the same bits (Math.imul).
  const ticksLow = base ? (tick - base.tick) | 0 : 0;

  let n = count(r);
  if (scratch.removed.length < n) scratch.removed = new Uint32Array(Math.max(n, scratch.removed.length * 2));
  const removed = scratch.removed;
  const removedCount = n;
  let prev = -1;
  for (let i = 0; i < n; i++) {
    prev = nextId(r, prev);
    removed[i] = prev;
  }

  grow(oldCount, nf);
  const ids = scratch.ids;
  const kinds = scratch.kinds;
  const values = scratch.values;
  let out = 0;
  let oi = 0;
  let ri = 0;

  // Carries base entities with ids below `limit` into the output: removed
  // ones dropped, the rest advanced by the prediction.
  const advanceTo = (limit) => {
    while (oi < oldCount) {
      const id = oldIds[oi];
      if (id >= limit) break;
      oi++;
      if (ri < removedCount) {
        const rid = removed[ri];
        if (rid === id) {
          ri++;
          continue;
        }
        if (rid < id) throw unknownEntity(rid);
      }
      carry(oi - 1);
    }
  };
  const carry = (i) => {
    ids[out] = oldIds[i];
    kinds[out] = oldKinds[i];
    const src = i * nf;
    const dst = out * nf;
    for (let f = 0; f < nf; f++) values[dst + f] = oldValues[src + f];
    for (let k = 0; k < integrating.length; k++) {
      const [fi, vi] = integrating[k];
      values[dst + fi] = (oldValues[src + fi] + Math.imul(ticksLow, stepPerTick(oldValues[src + vi], tickHz))) | 0;
    }
    out++;
  };

  n = count(r);
  prev = -1;
  for (let u = 0; u < n; u++) {
    const id = nextId(r, prev);
    prev = id;
    advanceTo(id);
    const mask = r.u32();
    if ((mask & ~fullMask) >>> 0 !== 0) {
      const bit = 31 - Math.clz32((mask & ~fullMask) & -(mask & ~fullMask));
      throw new DeltaError("unknown_field", `field "bit ${bit}" is not in the schema`, { field: `bit ${bit}` });
    }
    // The update's entity must be the next base entity, and not removed.
    if (oi >= oldCount || oldIds[oi] !== id || (ri < removedCount && removed[ri] === id)) throw unknownEntity(id);
    oi++;
    carry(oi - 1);
    const dst = (out - 1) * nf;
    for (let f = 0; f < nf; f++) {
      if (mask & (1 << f)) {
        const v = (values[dst + f] + r.signed()) | 0;
        const fd = fields[f];
        if (v < fd.lo || v > fd.hi) throw badValue(fd.name);
        values[dst + f] = v;
      }
    }
  }
  advanceTo(Infinity);
  if (ri < removedCount) throw unknownEntity(removed[ri]);
  const kept = out;

  n = count(r);
  const spawnIds = new Uint32Array(n);
  const spawnKinds = new Uint8Array(n);
  const spawnValues = new Int32Array(n * nf);
  prev = -1;
  for (let s = 0; s < n; s++) {
    const id = nextId(r, prev);
    prev = id;
    spawnIds[s] = id;
    const kind = r.byte();
    spawnKinds[s] = kind;
    for (let f = 0; f < nf; f++) {
      const fd = fields[f];
      let v;
      if (fd.unsigned) {
        v = r.u32();
        if (v > 0x7fffffff) throw new DeltaError("bad_varint", "malformed varint in state bytes");
      } else v = r.signed();
      spawnValues[s * nf + f] = v;
    }
    if (kind >= schema.kinds.length) throw new DeltaError("unknown_kind", `entity kind ${kind} is not in the schema`, { kindIndex: kind });
    for (let f = 0; f < nf; f++) {
      const v = spawnValues[s * nf + f];
      if (v < fields[f].lo || v > fields[f].hi) throw badValue(fields[f].name);
    }
  }
  if (r.pos < bytes.length) {
    const left = bytes.length - r.pos;
    throw new DeltaError("trailing_bytes", `${left} bytes left over after the state`, { count: left });
  }
  if (kept + n > MAX_ENTITIES) throw new DeltaError("too_many_entities", `state holds more than ${MAX_ENTITIES} entities`, { max: MAX_ENTITIES });
  return merge(schema, tick, ids, kinds, values, kept, spawnIds, spawnKinds, spawnValues, n);
}

/** Merges ascending spawns into ascending kept entities, refusing ids present in both. */
function merge(schema, tick, ids, kinds, values, kept, sIds, sKinds, sValues, spawned) {
  const nf = schema.count;
  const total = kept + spawned;
  const oIds = new Uint32Array(total);
  const oKinds = new Uint8Array(total);
  const oValues = new Int32Array(total * nf);
  if (spawned === 0) {
    oIds.set(ids.subarray(0, kept));
    oKinds.set(kinds.subarray(0, kept));
    oValues.set(values.subarray(0, kept * nf));
    return new Snapshot(schema, tick, oIds, oKinds, oValues);
  }
  let a = 0;
  let b = 0;
  for (let o = 0; o < total; o++) {
    let fromA;
    if (a < kept && b < spawned) {
      if (ids[a] === sIds[b]) throw new DeltaError("duplicate_entity", `entity ${ids[a]} spawned twice`, { id: ids[a] });
      fromA = ids[a] < sIds[b];
    } else fromA = a < kept;
    if (fromA) {
      oIds[o] = ids[a];
      oKinds[o] = kinds[a];
      oValues.set(values.subarray(a * nf, a * nf + nf), o * nf);
      a++;
    } else {
      oIds[o] = sIds[b];
      oKinds[o] = sKinds[b];
      oValues.set(sValues.subarray(b * nf, b * nf + nf), o * nf);
      b++;
    }
  }
  return new Snapshot(schema, tick, oIds, oKinds, oValues);
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
  const removed = removedRaw.map((id) => {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffffffff) {
      throw new DeltaError("json", "state JSON is malformed: removed holds a value that is not a u32");
    }
    return id;
  });
  const sIds = new Uint32Array(spawnedRaw.length);
  const sKinds = new Uint8Array(spawnedRaw.length);
  const sValues = new Int32Array(spawnedRaw.length * nf);
  spawnedRaw.forEach((obj, s) => {
    if (!isObject(obj)) throw new DeltaError("json", "state JSON is malformed: an entity is not an object");
    const id = readId(obj);
    if (typeof obj.kind !== "string") throw badValue("kind");
    const kind = schema.kindIndex.get(obj.kind);
    if (kind === undefined) throw new DeltaError("unknown_kind", `entity kind ${JSON.stringify(obj.kind)} is not in the schema`, { kindName: obj.kind });
    if (readFields(schema, obj, sValues, s * nf) !== schema.fullMask) throw new DeltaError("missing_fields", `spawned entity ${id} lacks fields`, { id });
    sIds[s] = id;
    sKinds[s] = kind;
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
  ascending(sIds);

  const oldIds = base ? base.ids : EMPTY_IDS;
  const oldKinds = base ? base.kinds : EMPTY_KINDS;
  const oldValues = base ? base.values : EMPTY_VALUES;
  grow(oldIds.length, nf);
  const { ids, kinds, values } = scratch;
  let out = 0;
  let ri = 0;
  let ui = 0;
  for (let i = 0; i < oldIds.length; i++) {
    const id = oldIds[i];
    if (ri < removed.length) {
      if (removed[ri] < id) throw unknownEntity(removed[ri]);
      if (removed[ri] === id) {
        ri++;
        if (ui < updates.length && updates[ui].id === id) throw unknownEntity(id);
        continue;
      }
    }
    ids[out] = id;
    kinds[out] = oldKinds[i];
    values.set(oldValues.subarray(i * nf, i * nf + nf), out * nf);
    if (ui < updates.length) {
      const u = updates[ui];
      if (u.id < id) throw unknownEntity(u.id);
      if (u.id === id) {
        for (let f = 0; f < nf; f++) if (u.mask & (1 << f)) values[out * nf + f] = u.values[f];
        ui++;
      }
    }
    out++;
  }
  if (ri < removed.length) throw unknownEntity(removed[ri]);
  if (ui < updates.length) throw unknownEntity(updates[ui].id);
  return merge(schema, tick, ids, kinds, values, out, sIds, sKinds, sValues, sIds.length);
}

/** An entity's real field values from quantized ones (schema order). */
export function entityFromValues(schema, id, kindIndex, quantized) {
  const e = { id, kind: schema.kinds[kindIndex] };
  schema.fields.forEach((fd, f) => {
    e[fd.name] = dequantize(fd.type, quantized[f]);
  });
  return e;
}
