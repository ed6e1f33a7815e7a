// Unit tests of the page's pure modules, run by Node's test runner before
// the browser test: the stick from held keys, frame sizes, the form and
// the view a page address asks for, arena's prediction of the own avatar.
// (The room's state, deltas and interpolation are the client library's,
// tested in clients/js.)

import { test } from "node:test";
import assert from "node:assert/strict";
import { stick, frameLength, closeCodeName, wsUrlFor, formatFor, viewFor } from "../../server/web/state.js";
import { ARENA, Smoother, axisVelocity, predictArena } from "../../server/web/predict.js";

test("stick maps held keys to -127..127 with diagonals the same length", () => {
  const none = { left: false, right: false, up: false, down: false };
  assert.deepEqual(stick(none), { move_x: 0, move_y: 0 });
  assert.deepEqual(stick({ ...none, right: true }), { move_x: 127, move_y: 0 });
  assert.deepEqual(stick({ ...none, up: true }), { move_x: 0, move_y: -127 });
  assert.deepEqual(stick({ ...none, left: true, right: true }), { move_x: 0, move_y: 0 });
  assert.deepEqual(stick({ ...none, left: true, down: true }), { move_x: -90, move_y: 90 });
});

test("helpers: frame sizes, close code names, the WebSocket URL", () => {
  assert.equal(frameLength(125), 127);
  assert.equal(frameLength(126), 130);
  assert.equal(frameLength(65535), 65539);
  assert.equal(frameLength(65536), 65546);
  assert.equal(closeCodeName(1009), "message too big");
  assert.equal(closeCodeName(4999), "unknown code");
  assert.equal(wsUrlFor({ protocol: "http:", host: "127.0.0.1:7700" }), "ws://127.0.0.1:7700/ws");
  assert.equal(wsUrlFor({ protocol: "https:", host: "example.org" }), "wss://example.org/ws");
});

test("the binary form by default, JSON on request", () => {
  assert.equal(formatFor(new URLSearchParams("")), "bin");
  assert.equal(formatFor(new URLSearchParams("room=r-0-1")), "bin");
  assert.equal(formatFor(new URLSearchParams("json")), "json");
  assert.equal(formatFor(new URLSearchParams("room=r&json=")), "json");
  assert.equal(formatFor(new URLSearchParams("format=json")), "json");
});

test("a game the page cannot draw is shown as a table", () => {
  const xy = { fields: [{ name: "x" }, { name: "y" }, { name: "hp" }] };
  const none = new URLSearchParams("");
  assert.equal(viewFor("arena", xy, none), "canvas");
  assert.equal(viewFor("arena", xy, new URLSearchParams("view=table")), "table");
  assert.equal(viewFor("chess", xy, none), "table", "a game the page does not know");
  assert.equal(viewFor("arena", { fields: [{ name: "hp" }] }, none), "table", "no position to draw");
});

test("arena's prediction: one tick of arena's movement per pending input", () => {
  // Full stick: 200 units/s = 3200 quantized; at 30 Hz a step of 107 (1/16 units).
  assert.equal(axisVelocity(127), 3200);
  assert.equal(axisVelocity(-128), -3200, "-128 is read as -127");
  const right = { values: { move_x: 127, move_y: 0 } };
  assert.deepEqual(predictArena(1600, 1600, [], 30), { x: 1600, y: 1600 }, "nothing pending: the server's position");
  assert.deepEqual(predictArena(1600, 1600, [right, right, right], 30), { x: 1600 + 3 * 107, y: 1600 });
  // Clamped to the world, as the server clamps.
  assert.deepEqual(predictArena(ARENA.worldQ - 50, 0, [right, { values: { move_x: 0, move_y: -127 } }], 30), { x: ARENA.worldQ, y: 0 });
  // A diagonal: each axis its own quantized velocity and step.
  const d = predictArena(0, 0, [{ values: { move_x: 90, move_y: 90 } }], 30);
  assert.equal(d.x, Math.round(Math.round((90 / 127) * 200 * 16) / 30));
});

test("the smoother slides small corrections and takes jumps at once", () => {
  const s = new Smoother(40, 60);
  assert.deepEqual(s.follow(100, 100, 0), { x: 100, y: 100 });
  const half = s.follow(110, 100, 40);
  assert.ok(Math.abs(half.x - 105) < 1e-9, `${half.x}`);
  assert.deepEqual(s.follow(900, 100, 50), { x: 900, y: 100 }, "a respawn is not slid");
});
