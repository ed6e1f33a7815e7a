// Unit tests of the page's pure state module (server/web/state.js), run by
// Node's test runner before the browser test: delta application by
// baseline, interpolation, the stick from held keys.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  RoomState,
  Skip,
  applyDelta,
  interpolate,
  stick,
  utf8Length,
  frameLength,
  closeCodeName,
  wsUrlFor,
  MAX_BASELINES,
  HISTORY,
} from "../../server/web/state.js";

const full = {
  spawned: [
    { id: 1, kind: "player", x: 10.0, y: 20.0, vx: 0.0, vy: 0.0, hp: 100, score: 0 },
    { id: 2, kind: "npc", x: 500.0, y: 500.0, vx: 0.0, vy: 0.0, hp: 100, score: 0 },
  ],
  updated: [],
  removed: [],
};

function tick(n, baseline, state) {
  return { type: "tick", tick: n, server_time_us: n * 33_333, baseline, input_seq: 0, state };
}

test("applyDelta adds, merges and removes without touching the base", () => {
  const a = applyDelta(null, full);
  assert.equal(a.size, 2);
  const b = applyDelta(a, {
    spawned: [{ id: 3, kind: "projectile", x: 1.0, y: 2.0, vx: 400.0, vy: 0.0, hp: 100, score: 0 }],
    updated: [{ id: 1, x: 11.5 }],
    removed: [2],
  });
  assert.deepEqual([...b.keys()].sort(), [1, 3]);
  assert.equal(b.get(1).x, 11.5);
  assert.equal(b.get(1).y, 20.0, "fields not in the update are kept");
  assert.equal(b.get(1).kind, "player");
  assert.equal(a.get(1).x, 10.0, "the baseline is unchanged");
  assert.ok(a.has(2));
});

test("ticks apply against their own baseline, not just the newest", () => {
  const room = new RoomState();
  assert.ok(typeof room.applyTick(tick(1, null, full), 0) === "object");
  room.applyTick(tick(2, 1, { updated: [{ id: 1, x: 12.0 }] }), 33);
  // The server had not seen our ack of 2 yet: tick 3 is against 1.
  room.applyTick(tick(3, 1, { updated: [{ id: 1, y: 30.0 }] }), 66);
  const me = room.latest.entities.get(1);
  assert.equal(me.x, 10.0, "tick 3's delta is against tick 1, where x was 10");
  assert.equal(me.y, 30.0);
  assert.equal(room.latestTick, 3);
  assert.equal(room.count("player"), 1);
  assert.equal(room.count("npc"), 1);
  // Baselines older than the one the server used are dropped.
  assert.deepEqual(
    room.baselines.map((s) => s.tick),
    [1, 2, 3],
  );
  room.applyTick(tick(4, 3, {}), 99);
  assert.deepEqual(
    room.baselines.map((s) => s.tick),
    [3, 4],
  );
});

test("stale ticks and unknown baselines are skipped, a full state always applies", () => {
  const room = new RoomState();
  room.applyTick(tick(5, null, full), 0);
  assert.equal(room.applyTick(tick(5, null, full), 1), Skip.STALE);
  assert.equal(room.applyTick(tick(4, null, full), 1), Skip.STALE);
  assert.equal(room.applyTick(tick(6, 2, {}), 1), Skip.MISSING_BASELINE);
  assert.equal(room.latestTick, 5);
  assert.deepEqual(room.skipped, { stale: 2, missing_baseline: 1 });
  assert.equal(typeof room.applyTick(tick(7, null, { spawned: [full.spawned[0]] }), 2), "object");
  assert.equal(room.latest.entities.size, 1, "a full state replaces everything");
});

test("the baseline store is bounded", () => {
  const room = new RoomState();
  room.applyTick(tick(1, null, full), 0);
  for (let t = 2; t < MAX_BASELINES + 50; t++) room.applyTick(tick(t, 1, {}), t);
  assert.equal(room.baselines.length, MAX_BASELINES);
});

test("interpolation runs on the server's clock, between the two ticks around the time drawn", () => {
  const room = new RoomState();
  const at = (now) => new Map(interpolate(room, now, 100).entities.map((e) => [e.id, e]));
  const timed = (n, baseline, state) => ({ ...tick(n, baseline, state), server_time_us: n * 100_000 });
  // Tick n is taken at n * 100 ms server time and arrives 900 ms later locally
  // (tick 2 even later, 950): drawing runs 125 ms behind the newest tick.
  room.applyTick(timed(1, null, full), 1000);
  room.applyTick(
    timed(2, 1, {
      updated: [{ id: 1, x: 20.0 }],
      spawned: [{ id: 9, kind: "projectile", x: 5.0, y: 5.0, vx: 0, vy: 0, hp: 100, score: 0 }],
      removed: [2],
    }),
    1150,
  );
  assert.equal(room.offsetMs, 900, "the fastest delivery sets the offset");
  assert.equal(at(1125).get(1).x, 10.0, "server time 100 ms: tick 1");
  assert.equal(at(1175).get(1).x, 15.0, "server time 150 ms: half way");
  assert.equal(at(1225).get(1).x, 20.0);
  assert.equal(at(5000).get(1).x, 20.0, "never extrapolates past the newest tick");
  assert.equal(at(1175).get(9).x, 5.0, "a new entity is drawn where it is");
  assert.equal(at(1175).has(2), false, "a removed entity is not drawn");
  assert.equal(at(1125).has(2), true, "but it is drawn before its removal");
  // A respawn (a jump across the map) is not smeared.
  room.applyTick(timed(3, 2, { updated: [{ id: 1, x: 900.0 }] }), 1200);
  assert.equal(at(1275).get(1).x, 900.0);
  // Older snapshots stay drawable after the baselines moved on.
  room.applyTick(timed(4, 3, {}), 1300);
  assert.deepEqual(
    room.baselines.map((s) => s.tick),
    [3, 4],
  );
  assert.equal(at(1175).get(1).x, 15.0);
  assert.deepEqual(interpolate(new RoomState(), 0, 33).entities, []);
});

test("without increasing tick times the last two ticks are interpolated from the arrival", () => {
  const room = new RoomState();
  const flat = (n, baseline, state) => ({ ...tick(n, baseline, state), server_time_us: 0 });
  room.applyTick(flat(1, null, full), 1000);
  room.applyTick(flat(2, 1, { updated: [{ id: 1, x: 20.0 }] }), 1100);
  const x = (now) => interpolate(room, now, 100).entities.find((e) => e.id === 1).x;
  assert.equal(x(1100), 10.0);
  assert.equal(x(1150), 15.0);
  assert.equal(x(1300), 20.0);
});

test("the drawing history is bounded", () => {
  const room = new RoomState();
  room.applyTick(tick(1, null, full), 0);
  for (let t = 2; t < 40; t++) room.applyTick(tick(t, t - 1, {}), t);
  assert.equal(room.history.length, HISTORY);
});

test("stick maps held keys to -127..127 with diagonals the same length", () => {
  const none = { left: false, right: false, up: false, down: false };
  assert.deepEqual(stick(none), { move_x: 0, move_y: 0 });
  assert.deepEqual(stick({ ...none, right: true }), { move_x: 127, move_y: 0 });
  assert.deepEqual(stick({ ...none, up: true }), { move_x: 0, move_y: -127 });
  assert.deepEqual(stick({ ...none, left: true, right: true }), { move_x: 0, move_y: 0 });
  const d = stick({ ...none, left: true, down: true });
  assert.deepEqual(d, { move_x: -90, move_y: 90 });
});

test("helpers: UTF-8 length, close code names, the WebSocket URL", () => {
  assert.equal(utf8Length('{"a":1}'), 7);
  assert.equal(utf8Length("é"), 2);
  assert.equal(frameLength(125), 127);
  assert.equal(frameLength(126), 130);
  assert.equal(frameLength(65535), 65539);
  assert.equal(frameLength(65536), 65546);
  assert.equal(closeCodeName(1009), "message too big");
  assert.equal(closeCodeName(4999), "unknown code");
  assert.equal(wsUrlFor({ protocol: "http:", host: "127.0.0.1:7700" }), "ws://127.0.0.1:7700/ws");
  assert.equal(wsUrlFor({ protocol: "https:", host: "example.org" }), "wss://example.org/ws");
});
