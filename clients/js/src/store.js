// The client's copy of a room's state: every tick applied to the right
// baseline, the baselines the server may still send deltas against, the
// newest few states for drawing, and interpolation between them.
//
// Which states are kept is PROTOCOL.md section 6, as the Rust
// `ClientSession` does it: every applied state from the *mark* (the
// baseline of the newest applied delta) on; a full state does not move the
// mark; at most max(128, tick_hz + 2) states, dropping the oldest other
// than the mark's.

import { applyBin, applyJson } from "./delta.js";
import { DeltaError, ProtocolError } from "./errors.js";
import { compileSchema } from "./schema.js";

/** The least number of states kept as baselines (as the Rust client). */
export const MAX_BASELINES = 128;
/** States kept for drawing, whatever the baselines. */
export const HISTORY = 8;
/** Ticks the clock offset estimate looks at. */
const OFFSET_WINDOW = 90;
/** Drawing runs this many tick periods behind the newest tick by default. */
export const DELAY_PERIODS = 1.25;

/** One room's states, as applied from its ticks. */
export class StateStore {
  /**
   * @param {{schema: object, tickHz: number, format: "bin" | "json", history?: number}} options
   *   `schema` as in `joined` (or already compiled)
   */
  constructor({ schema, tickHz, format, history = HISTORY }) {
    this.schema = schema.fieldIndex ? schema : compileSchema(schema);
    this.tickHz = tickHz;
    this.format = format;
    this.historySize = Math.max(2, history);
    /** @type {import("./delta.js").Snapshot[]} applied states kept as baselines, oldest first */
    this.baselines = [];
    /** @type {{snapshot: import("./delta.js").Snapshot, serverTimeUs: number, arrivedMs: number}[]} newest states, oldest first */
    this.history = [];
    /** The newest applied delta's baseline, or null. */
    this.mark = null;
    /** Recent (arrival ms - server ms) of ticks, for the clock offset. */
    this.offsets = [];
  }

  /** The newest applied state, or null. */
  get latest() {
    return this.baselines.length ? this.baselines[this.baselines.length - 1] : null;
  }

  /** The state applied before the newest, or null. */
  get previous() {
    const h = this.history;
    return h.length > 1 ? h[h.length - 2].snapshot : null;
  }

  /** The newest applied tick, or null. */
  get tick() {
    const l = this.latest;
    return l ? l.tick : null;
  }

  /** The ticks of the states kept as baselines, oldest first. */
  baselineTicks() {
    return this.baselines.map((s) => s.tick);
  }

  /** Entity `id` of the newest state as an object, or undefined. */
  get(id) {
    return this.latest?.get(id);
  }

  /** Every entity of the newest state. */
  entities() {
    return this.latest ? this.latest.entities() : [];
  }

  /**
   * Applies one tick. The store is unchanged when it throws.
   * @param {{tick: number, baseline: number | null, server_time_us: number}} header
   * @param {Uint8Array | object} state the blob (bin) or the state object (json)
   * @param {number} [arrivedMs] local receive time, for interpolation
   * @returns {import("./delta.js").Snapshot}
   * @throws {ProtocolError} `stale_tick` (not newer than the newest), `delta` (the cause is a DeltaError, `missing_baseline` included)
   */
  apply(header, state, arrivedMs = 0) {
    const { tick, baseline } = header;
    const latest = this.latest;
    if (latest && tick <= latest.tick) {
      throw new ProtocolError("stale_tick", `tick ${tick} is not newer than ${latest.tick}`, { tick });
    }
    let base = null;
    if (baseline !== null && baseline !== undefined) {
      base = this.baselines.find((s) => s.tick === baseline) ?? null;
      if (!base) {
        const cause = new DeltaError("missing_baseline", `delta against tick ${baseline}, which this client does not hold`, { baseline });
        throw new ProtocolError("delta", `tick ${tick}: ${cause.message}`, { cause, tick });
      }
    }
    let snap;
    try {
      snap = this.format === "bin" ? applyBin(this.schema, this.tickHz, base, tick, state) : applyJson(this.schema, base, tick, state);
    } catch (e) {
      if (e instanceof DeltaError) throw new ProtocolError("delta", `tick ${tick}: ${e.message}`, { cause: e, tick });
      throw e;
    }
    if (baseline !== null && baseline !== undefined) {
      this.mark = baseline;
      while (this.baselines.length && this.baselines[0].tick < baseline) this.baselines.shift();
    }
    const limit = Math.max(MAX_BASELINES, this.tickHz + 2);
    if (this.baselines.length >= limit) {
      const keepFront = this.mark !== null && this.baselines[0].tick === this.mark;
      this.baselines.splice(keepFront ? 1 : 0, 1);
    }
    this.baselines.push(snap);
    if (this.history.length >= this.historySize) this.history.shift();
    this.history.push({ snapshot: snap, serverTimeUs: header.server_time_us, arrivedMs });
    if (Number.isFinite(header.server_time_us)) {
      if (this.offsets.length >= OFFSET_WINDOW) this.offsets.shift();
      this.offsets.push(arrivedMs - header.server_time_us / 1000);
    }
    return snap;
  }

  /**
   * The local clock minus the server's, plus the fastest recent delivery:
   * the smallest (arrival - tick time) of the last ticks.
   */
  get offsetMs() {
    let min = Infinity;
    for (const o of this.offsets) if (o < min) min = o;
    return min === Infinity ? 0 : min;
  }

  /**
   * The entities to draw at local time `nowMs`, interpolated between the
   * two states around it: drawing runs `delayPeriods` tick periods behind
   * the newest tick on the server's clock (each tick's `server_time_us`,
   * mapped to local time by `offsetMs`), so there are nearly always two
   * states around the time drawn. `fixed` fields are interpolated; other
   * fields, and entities present in only one state, are the later state's.
   * An entity whose fixed fields jump further than `maxJump` (a respawn)
   * is drawn where it lands. Without usable tick times, the two newest
   * states are interpolated over one period from the newest's arrival.
   * @param {number} nowMs local time (performance.now())
   * @param {{delayPeriods?: number, maxJump?: number}} [options]
   * @returns {{alpha: number, tick: number | null, entities: object[]}}
   */
  interpolate(nowMs, { delayPeriods = DELAY_PERIODS, maxJump = 100 } = {}) {
    const h = this.history;
    if (!h.length) return { alpha: 1, tick: null, entities: [] };
    const periodMs = 1000 / Math.max(1, this.tickHz);
    const last = h[h.length - 1];
    let from = h.length > 1 ? h[h.length - 2] : null;
    let to = last;
    let alpha;
    if (from !== null && to.serverTimeUs > from.serverTimeUs) {
      const t = (nowMs - this.offsetMs - delayPeriods * periodMs) * 1000; // server µs
      let i = h.length - 1;
      while (i > 0 && h[i - 1].serverTimeUs >= t) i -= 1;
      if (i === 0) {
        from = null;
        to = h[0];
        alpha = 1;
      } else {
        from = h[i - 1];
        to = h[i];
        const span = to.serverTimeUs - from.serverTimeUs;
        alpha = span > 0 ? Math.min(1, Math.max(0, (t - from.serverTimeUs) / span)) : 1;
      }
    } else {
      alpha = Math.min(1, Math.max(0, (nowMs - last.arrivedMs) / periodMs));
    }
    const entities = from ? lerpStates(from.snapshot, to.snapshot, alpha, maxJump) : to.snapshot.entities();
    return { alpha, tick: to.snapshot.tick, entities };
  }

  /** Forgets every state (a new join, a resume, a watch). */
  reset() {
    this.baselines = [];
    this.history = [];
    this.mark = null;
    this.offsets = [];
  }
}

/**
 * The entities of `to` with their `fixed` fields interpolated from `from`
 * by `alpha` (0: from, 1: to). Entities only in `to` are as in `to`;
 * those only in `from` are gone. One whose fixed fields differ by more than
 * `maxJump` is left where `to` has it.
 * @param {import("./delta.js").Snapshot} from
 * @param {import("./delta.js").Snapshot} to
 * @param {number} alpha
 * @param {number} [maxJump]
 * @returns {object[]}
 */
export function lerpStates(from, to, alpha, maxJump = Infinity) {
  const schema = to.schema;
  const fixed = schema.fields.map((f, i) => [f.name, i, f.scale]).filter(([, , scale]) => scale);
  const out = new Array(to.size);
  for (let i = 0; i < to.size; i++) {
    const e = to.at(i);
    const j = from.indexOf(e.id);
    if (j < 0 || from.kindAt(j) !== to.kindAt(i) || !fixed.length) {
      out[i] = e;
      continue;
    }
    const p = from.at(j);
    let jump = false;
    for (const [name] of fixed) if (Math.abs(e[name] - p[name]) > maxJump) jump = true;
    if (jump) {
      out[i] = e;
      continue;
    }
    const m = { ...e };
    for (const [name] of fixed) m[name] = p[name] + (e[name] - p[name]) * alpha;
    out[i] = m;
  }
  return out;
}
