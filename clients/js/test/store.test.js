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

// The page's interpolation cases (they moved here with the code).
const arena = {
  kinds: ["player", "npc", "projectile"],
  fields: ["x", "y", "vx", "vy"].map((name) => ({ name, type: { fixed: 16 } })).concat([
    { name: "hp", type: "u8" },
    { name: "score", type: "u16" },
  ]),
};
const body = (id, kind, x, y) => ({ id, kind, x, y, vx: 0, vy: 0, hp: 100, score: 0 });
const fullArena = { spawned: [body(1, "player", 10, 20), body(2, "npc", 500, 500)], updated: [], removed: [] };

test("interpolation runs on the server's clock; spawns, removals and respawns are not smeared", () => {
  const s = new StateStore({ schema: arena, tickHz: 10, format: "json" });
  const at = (now) => new Map(s.interpolate(now).entities.map((e) => [e.id, e]));
  const timed = (n, baseline) => ({ tick: n, baseline, server_time_us: n * 100_000 });
  // Tick n is taken at n × 100 ms and arrives 900 ms later (tick 2 at 950):
  // drawing runs 125 ms behind the newest tick.
  s.apply(timed(1, null), fullArena, 1000);
  s.apply(timed(2, 1), { updated: [{ id: 1, x: 20.0 }], spawned: [body(9, "projectile", 5, 5)], removed: [2] }, 1150);
  assert.equal(s.offsetMs, 900, "the fastest delivery sets the offset");
  assert.equal(at(1125).get(1).x, 10.0, "server time 100 ms: tick 1");
  assert.equal(at(1175).get(1).x, 15.0, "server time 150 ms: half way");
  assert.equal(at(1225).get(1).x, 20.0);
  assert.equal(at(5000).get(1).x, 20.0, "never extrapolates past the newest tick");
  assert.equal(at(1175).get(9).x, 5.0, "a new entity is drawn where it is");
  assert.equal(at(1175).has(2), false, "a removed entity is not drawn");
  assert.equal(at(1125).has(2), true, "but it is drawn before its removal");
  s.apply(timed(3, 2), { updated: [{ id: 1, x: 900.0 }] }, 1200);
  assert.equal(at(1275).get(1).x, 900.0, "a respawn across the map is drawn where it lands");
  s.apply(timed(4, 3), {}, 1300);
  assert.deepEqual(s.baselineTicks(), [3, 4]);
  assert.equal(at(1175).get(1).x, 15.0, "older states stay drawable after the baselines moved on");
  assert.deepEqual(new StateStore({ schema: arena, tickHz: 30, format: "json" }).interpolate(0).entities, []);
});

test("without increasing tick times the two newest states are interpolated from the arrival", () => {
  const s = new StateStore({ schema: arena, tickHz: 10, format: "json" });
  s.apply({ tick: 1, baseline: null, server_time_us: 0 }, fullArena, 1000);
  s.apply({ tick: 2, baseline: 1, server_time_us: 0 }, { updated: [{ id: 1, x: 20.0 }] }, 1100);
  const x = (now) => s.interpolate(now).entities.find((e) => e.id === 1).x;
  assert.equal(x(1100), 10.0);
  assert.equal(x(1150), 15.0);
  assert.equal(x(1300), 20.0);
});

test("the drawing history is bounded", () => {
  const s = new StateStore({ schema: arena, tickHz: 30, format: "json" });
  s.apply({ tick: 1, baseline: null, server_time_us: 0 }, fullArena);
  for (let t = 2; t < 40; t++) s.apply({ tick: t, baseline: t - 1, server_time_us: t }, {});
  assert.equal(s.history.length, 8);
});
