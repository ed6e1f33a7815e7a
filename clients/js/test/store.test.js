// The state store: which baselines it keeps (PROTOCOL.md section 6, as
// the Rust ClientSession), what it refuses, and interpolation.

import assert from "node:assert/strict";
import { test } from "node:test";
import { ProtocolError, StateStore, lerpStates } from "../index.js";

const schema = {
  kinds: ["player"],
  fields: [
    { name: "x", type: { fixed: 16 } },
    { name: "hp", type: "u8" },
  ],
};

const full = (x) => ({ spawned: [{ id: 1, kind: "player", x, hp: 100 }], updated: [], removed: [] });
const moved = (x) => ({ spawned: [], updated: [{ id: 1, x }], removed: [] });
const header = (tick, baseline) => ({ tick, baseline, server_time_us: tick * 33_333 });

test("a full state while an older ack is in flight keeps that baseline", () => {
  const s = new StateStore({ schema, tickHz: 30, format: "json" });
  s.apply(header(1, null), full(1));
  for (const t of [2, 3, 4]) s.apply(header(t, null), full(t));
  assert.deepEqual(s.baselineTicks(), [1, 2, 3, 4]);
  // Tick 5 comes against tick 1: still there although every tick since was full.
  s.apply(header(5, 1), moved(5));
  assert.equal(s.get(1).x, 5);
  assert.equal(s.mark, 1);
  // A delta against 4 moves the mark: older states go.
  s.apply(header(6, 4), moved(6));
  assert.deepEqual(s.baselineTicks(), [4, 5, 6]);
});

test("stale ticks and missing baselines are refused and change nothing", () => {
  const s = new StateStore({ schema, tickHz: 30, format: "json" });
  s.apply(header(3, null), full(3));
  assert.throws(() => s.apply(header(3, null), full(9)), (e) => e instanceof ProtocolError && e.kind === "stale_tick");
  assert.throws(
    () => s.apply(header(4, 2), moved(4)),
    (e) => e instanceof ProtocolError && e.kind === "delta" && e.cause.kind === "missing_baseline",
  );
  assert.throws(() => s.apply(header(4, 3), { updated: [{ id: 7, x: 1.0 }] }), (e) => e.cause?.kind === "unknown_entity");
  assert.deepEqual(s.baselineTicks(), [3]);
  assert.equal(s.get(1).x, 3);
});

test("baselines are bounded, never dropping the mark", () => {
  const s = new StateStore({ schema, tickHz: 30, format: "json" });
  s.apply(header(1, null), full(1));
  // Acks stall: every delta comes against tick 1.
  for (let t = 2; t <= 300; t++) s.apply(header(t, 1), moved(t));
  const kept = s.baselineTicks();
  assert.equal(kept.length, 128);
  assert.equal(kept[0], 1, "the mark stays");
  assert.equal(kept[kept.length - 1], 300);
});

test("interpolation between the two states around the time drawn", () => {
  const s = new StateStore({ schema, tickHz: 10, format: "json" });
  // Ticks every 100 ms of server time, arriving at once (offset 0).
  s.apply({ tick: 1, baseline: null, server_time_us: 1_000_000 }, full(0), 1000);
  s.apply({ tick: 2, baseline: 1, server_time_us: 1_100_000 }, moved(10), 1100);
  s.apply({ tick: 3, baseline: 2, server_time_us: 1_200_000 }, moved(20), 1200);
  // Drawn 1.25 periods (125 ms) behind: at local 1250 ms, server 1.125 s.
  const { alpha, tick, entities } = s.interpolate(1250);
  // Between tick 2 (1.1 s) and tick 3 (1.2 s), a quarter of the way.
  assert.equal(tick, 3);
  assert.ok(Math.abs(alpha - 0.25) < 1e-9, `alpha ${alpha}`);
  assert.ok(Math.abs(entities[0].x - 12.5) < 1e-9, `x ${entities[0].x}`);
  assert.equal(entities[0].hp, 100, "integer fields are not interpolated");
  // A jump (a respawn) is drawn where it lands.
  const out = lerpStates(s.history[1].snapshot, s.history[2].snapshot, 0.5, 5);
  assert.equal(out[0].x, 20);
});
