// The client's copy of a room's state, rebuilt from `tickforge.v1.json` ticks.
//
// Pure: no DOM, no sockets, no clocks (times are arguments), so Node's test
// runner checks it (tests/browser/state.test.mjs) and the page drives it.
//
// A tick's `state` is a delta against `baseline`, the newest tick this client
// acknowledged that the server still keeps (null: a full state). The server
// may send the next delta against any tick we acked, so we keep recent
// snapshots by tick, the way protocol/src/session.rs does.

/** The most snapshots kept as baselines (about 4 s at 30 Hz). */
export const MAX_BASELINES = 128;

/** The newest snapshots kept for drawing, whatever the baselines. */
export const HISTORY = 8;

/** How many recent ticks the clock offset estimate looks at. */
const OFFSET_WINDOW = 90;

/** Drawing runs this many tick periods behind the newest tick's time. */
export const DELAY_PERIODS = 1.25;

/** One applied tick: its number, times, and entities by id. */
export class Snapshot {
  /**
   * @param {number} tick
   * @param {Map<number, object>} entities id -> {id, kind, ...fields}
   * @param {number} serverTimeUs when the room took this state
   * @param {number} arrivedMs local receive time (performance.now())
   */
  constructor(tick, entities, serverTimeUs, arrivedMs) {
    this.tick = tick;
    this.entities = entities;
    this.serverTimeUs = serverTimeUs;
    this.arrivedMs = arrivedMs;
  }
}

/**
 * Applies a JSON state delta to `base` (null: an empty state) and returns a
 * new entity map; `base` is not changed (it may be a baseline again).
 * spawned: added whole; updated: fields merged; removed: deleted.
 * @param {Map<number, object> | null} base
 * @param {{spawned?: object[], updated?: object[], removed?: number[]}} delta
 * @returns {Map<number, object>}
 */
export function applyDelta(base, delta) {
  const out = new Map(base ?? []);
  for (const id of delta.removed ?? []) out.delete(id);
  for (const e of delta.spawned ?? []) out.set(e.id, { ...e });
  for (const u of delta.updated ?? []) {
    const old = out.get(u.id);
    // An update of an entity we do not have cannot be applied; the server
    // only sends one against a baseline that holds it, so skip it quietly.
    if (old) out.set(u.id, { ...old, ...u });
  }
  return out;
}

/** Why a tick was not applied. */
export const Skip = Object.freeze({
  STALE: "stale",
  MISSING_BASELINE: "missing_baseline",
});

/** The ticks of one room: baselines, the newest state, the one before it. */
export class RoomState {
  constructor() {
    /** @type {Snapshot[]} oldest first */
    this.baselines = [];
    /** @type {Snapshot[]} the newest few, oldest first, for drawing */
    this.history = [];
    /** How many ticks were skipped, by reason. */
    this.skipped = { stale: 0, missing_baseline: 0 };
    /** Recent (arrival ms - server time ms), for the clock offset. */
    this.offsets = [];
  }

  /**
   * The local clock minus the server's, plus the fastest recent delivery:
   * the smallest (arrival - tick time) of the last ticks. Server time t is
   * local time t + offset at the earliest.
   */
  get offsetMs() {
    return this.offsets.length ? Math.min(...this.offsets) : 0;
  }

  /** The newest applied snapshot, or null. */
  get latest() {
    return this.baselines.length ? this.baselines[this.baselines.length - 1] : null;
  }

  /** The snapshot applied just before the newest, or null. */
  get previous() {
    return this.baselines.length > 1 ? this.baselines[this.baselines.length - 2] : null;
  }

  /** The newest applied tick number, or null. */
  get latestTick() {
    const l = this.latest;
    return l ? l.tick : null;
  }

  /**
   * Applies one `tick` message.
   * @param {{tick: number, baseline: number|null, server_time_us: number, state: object}} msg
   * @param {number} nowMs local receive time
   * @returns {Snapshot | string} the new snapshot, or a Skip reason
   */
  applyTick(msg, nowMs) {
    const latest = this.latest;
    if (latest && msg.tick <= latest.tick) {
      this.skipped.stale += 1;
      return Skip.STALE;
    }
    let base = null;
    if (msg.baseline !== null && msg.baseline !== undefined) {
      const found = this.baselines.find((s) => s.tick === msg.baseline);
      if (!found) {
        // Keep acking what we have: the server then sends a delta against
        // it, or a full state if it no longer keeps it.
        this.skipped.missing_baseline += 1;
        return Skip.MISSING_BASELINE;
      }
      base = found.entities;
      // Baselines only move forward: nothing older will be asked about.
      while (this.baselines.length && this.baselines[0].tick < msg.baseline) this.baselines.shift();
    }
    const snap = new Snapshot(msg.tick, applyDelta(base, msg.state ?? {}), msg.server_time_us, nowMs);
    if (this.baselines.length >= MAX_BASELINES) this.baselines.shift();
    this.baselines.push(snap);
    if (this.history.length >= HISTORY) this.history.shift();
    this.history.push(snap);
    if (Number.isFinite(msg.server_time_us)) {
      if (this.offsets.length >= OFFSET_WINDOW) this.offsets.shift();
      this.offsets.push(nowMs - msg.server_time_us / 1000);
    }
    return snap;
  }

  /** How many entities of `kind` the newest state holds. */
  count(kind) {
    const l = this.latest;
    if (!l) return 0;
    let n = 0;
    for (const e of l.entities.values()) if (e.kind === kind) n += 1;
    return n;
  }
}

function lerp(a, b, t) {
  return a + (b - a) * t;
}

/**
 * The entities to draw at local time `nowMs`.
 *
 * Drawing runs DELAY_PERIODS tick periods behind the newest tick, on the
 * server's clock (each tick's `server_time_us`, mapped to local time by
 * `offsetMs`), so that there are nearly always two ticks around the time
 * drawn: an entity's position is interpolated between them, never
 * extrapolated. The entities drawn are those of the later of the two (an
 * entity spawned there is drawn where it is; one removed there is gone).
 * An entity that jumps further than `maxJump` between them (a respawn) is
 * drawn where it lands. Without usable tick times (they must increase), the
 * last two ticks are interpolated over one period from the newest's arrival.
 * @param {RoomState} room
 * @param {number} nowMs
 * @param {number} periodMs one tick period
 * @param {number} [maxJump]
 * @returns {{alpha: number, tick: number|null, entities: object[]}}
 */
export function interpolate(room, nowMs, periodMs, maxJump = 100) {
  const h = room.history;
  if (!h.length) return { alpha: 1, tick: null, entities: [] };
  const last = h[h.length - 1];
  let from = h.length > 1 ? h[h.length - 2] : null;
  let to = last;
  let alpha;
  const timed = from !== null && to.serverTimeUs > from.serverTimeUs;
  if (timed) {
    const t = (nowMs - room.offsetMs - DELAY_PERIODS * periodMs) * 1000; // server µs
    let i = h.length - 1;
    while (i > 0 && h[i - 1].serverTimeUs >= t) i -= 1;
    // Now h[i] is the first snapshot at or after t (or the oldest kept).
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
    alpha = Math.min(1, Math.max(0, (nowMs - last.arrivedMs) / Math.max(1, periodMs)));
  }
  const out = [];
  for (const e of to.entities.values()) {
    const p = from ? from.entities.get(e.id) : undefined;
    if (!p || typeof e.x !== "number" || typeof e.y !== "number") {
      out.push(e);
    } else if (Math.abs(e.x - p.x) > maxJump || Math.abs(e.y - p.y) > maxJump) {
      out.push(e);
    } else {
      out.push({ ...e, x: lerp(p.x, e.x, alpha), y: lerp(p.y, e.y, alpha) });
    }
  }
  return { alpha, tick: to.tick, entities: out };
}

/**
 * The stick value for the keys held: -127..127 per axis, diagonals scaled to
 * the same length. `held` has the logical directions pressed.
 * @param {{left: boolean, right: boolean, up: boolean, down: boolean}} held
 * @returns {{move_x: number, move_y: number}}
 */
export function stick(held) {
  let x = (held.right ? 1 : 0) - (held.left ? 1 : 0);
  let y = (held.down ? 1 : 0) - (held.up ? 1 : 0);
  const scale = x !== 0 && y !== 0 ? Math.SQRT1_2 : 1;
  return { move_x: Math.round(x * scale * 127), move_y: Math.round(y * scale * 127) };
}

/**
 * The UTF-8 length of a text frame (its payload bytes on the wire).
 * @param {string} text
 */
export function utf8Length(text) {
  // eslint-disable-next-line no-control-regex
  if (!/[^\x00-\x7f]/.test(text)) return text.length;
  return new TextEncoder().encode(text).length;
}

/**
 * The bytes a server-to-client WebSocket frame of `payload` bytes takes on
 * the wire (unmasked header: 2, 4 or 10 bytes), as WORKLOAD.md's "bytes per
 * client-tick" counts them.
 * @param {number} payload
 */
export function frameLength(payload) {
  if (payload < 126) return payload + 2;
  if (payload < 65536) return payload + 4;
  return payload + 10;
}

/** A WebSocket close code's meaning (RFC 6455 and CONTRACT.md). */
export function closeCodeName(code) {
  const names = {
    1000: "normal closure",
    1001: "server going away",
    1002: "protocol error",
    1003: "wrong frame type",
    1005: "no status",
    1006: "abnormal closure (no close frame)",
    1007: "message did not decode",
    1008: "policy violation",
    1009: "message too big",
    1011: "internal server error",
    1015: "TLS handshake failure",
  };
  return names[code] ?? "unknown code";
}

/**
 * The WebSocket URL for a page location: same host and port, ws:// for
 * http: pages and wss:// for https: pages, path /ws.
 * @param {{protocol: string, host: string}} location
 */
export function wsUrlFor(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}
