// The client against a fake server that misbehaves on purpose: malformed
// frames, frames of the wrong type, ticks that do not apply, answers to no
// request, a listener that throws. Each surfaces as an `error` event with
// its kind; nothing is thrown into the caller, and the client stays usable.
// Plus what a real server cannot be made to do yet or on demand: a
// redirect to another server, resume with a rotating token then a fresh
// join, a subprotocol the client did not ask for, a request never answered,
// a close with an application code.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import {
  Client,
  ConnectError,
  ProtocolError,
  RejectError,
  SUBPROTOCOLS,
  TimeoutError,
  decodeClient,
  encodeServer,
} from "../index.js";
import { events, sleep, until } from "./harness.js";

const SCHEMA = { kinds: ["player"], fields: [{ name: "x", type: { fixed: 16 } }, { name: "hp", type: "u8" }] };
const INPUT_SCHEMA = { fields: [{ name: "move_x", type: "i8" }, { name: "move_y", type: "i8" }, { name: "buttons", type: "u8" }] };

function joinedBody(overrides = {}) {
  return {
    type: "joined",
    room_id: "r-9-1",
    game: "fake",
    player_id: 1,
    entity_id: 1,
    tick_hz: 30,
    max_players: 4,
    resume_token: "",
    schema: SCHEMA,
    input_schema: INPUT_SCHEMA,
    ...overrides,
  };
}

/** States by form: a full state (x 1.0, hp 100), a delta (hp 90), a delta against an entity that does not exist. */
const STATES = {
  bin: {
    full: Uint8Array.from([0, 0, 1, 1, 0, 32, 100]),
    hurt: Uint8Array.from([0, 1, 1, 0b10, 19, 0]),
    bad: Uint8Array.from([0, 1, 5, 1, 0, 0]),
  },
  json: {
    full: { spawned: [{ id: 1, kind: "player", x: 1.5, hp: 100 }], updated: [], removed: [] },
    hurt: { spawned: [], updated: [{ id: 1, hp: 90 }], removed: [] },
    bad: { spawned: [], updated: [{ id: 5, hp: 90 }], removed: [] },
  },
};

/**
 * A fake server: `onRequest(msg, socket, send)` answers requests (default:
 * joins answered `joined`, pings `pong`). `protocols` chooses the
 * subprotocol it answers.
 */
async function fakeServer({ onRequest, protocol } = {}) {
  const sockets = new Set();
  const wss = new WebSocketServer({
    port: 0,
    host: "127.0.0.1",
    handleProtocols: (offered) => (protocol === undefined ? [...offered][0] : protocol),
  });
  await new Promise((resolve) => wss.once("listening", resolve));
  const fake = {
    url: `ws://127.0.0.1:${wss.address().port}/ws`,
    connections: 0,
    open: 0,
    maxOpen: 0,
    requests: [],
    last: null,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.terminate();
        wss.close(resolve);
      }),
  };
  wss.on("connection", (socket) => {
    sockets.add(socket);
    fake.connections += 1;
    fake.open += 1;
    fake.maxOpen = Math.max(fake.maxOpen, fake.open);
    fake.last = socket;
    const format = socket.protocol === SUBPROTOCOLS.bin ? "bin" : "json";
    const send = (msg) => socket.send(encodeServer(format, msg));
    socket.on("close", () => {
      fake.open -= 1;
      sockets.delete(socket);
    });
    socket.on("message", (data, isBinary) => {
      const msg = decodeClient(format, isBinary ? new Uint8Array(data) : data.toString());
      if (msg.type !== "req") return;
      fake.requests.push(msg.body);
      if (onRequest && onRequest(msg, socket, send) !== false) return;
      if (msg.body.type === "ping") send({ type: "cfm", id: msg.id, body: { type: "pong", client_time_us: msg.body.client_time_us, server_time_us: 1 } });
      else send({ type: "cfm", id: msg.id, body: joinedBody() });
    });
  });
  return fake;
}

for (const format of ["bin", "json"]) {
  describe(`a misbehaving server, tickforge.v1.${format}`, () => {
    let fake;
    before(async () => {
      fake = await fakeServer();
    });
    after(() => fake.close());

    test("malformed frames surface as errors, never as throws, and the client goes on", async (t) => {
      const uncaught = [];
      const onUncaught = (e) => uncaught.push(e);
      process.on("uncaughtException", onUncaught);
      t.after(() => process.off("uncaughtException", onUncaught));

      const client = new Client({ url: fake.url, format, WebSocket, reconnect: false });
      await client.connect();
      t.after(() => client.close());
      await client.joinOrCreate("fake");
      const errors = [];
      client.on("error", (e) => errors.push(e));
      const socket = fake.last;
      const s = STATES[format];
      const tick = (n, baseline, state) => encodeServer(format, { type: "tick", tick: n, server_time_us: n * 33_333, baseline, input_seq: 0, state });
      const frames = [
        // 1. not a message at all
        format === "bin" ? Uint8Array.from([0xff, 0x00, 0x01]) : "{not json",
        // 2. a good full state
        tick(1, null, s.full),
        // 3. a delta that names an entity the baseline lacks
        tick(2, 1, s.bad),
        // 4. a frame of the other type
        format === "bin" ? '{"type":"tick"}' : Uint8Array.from([3, 1]),
        // 5. a delta against a tick the client never had
        tick(3, 2, s.hurt),
        // 6. a tick not newer than the newest
        tick(1, null, s.full),
        // 7. a reject of no request
        encodeServer(format, { type: "rej", id: 4242, code: "internal", reason: "who asked" }),
        // 8. a confirmation cut short
        format === "bin" ? Uint8Array.from([0, 1, 2, 5]) : '{"type":"cfm","id":1,"body":{"type":"joined"}}',
        // 9. a tick whose bytes run past the message
        format === "bin" ? Uint8Array.from([3, 5, 0, 0, 0, 9, 0]) : '{"type":"tick","tick":5}',
        // 10. a good delta
        tick(4, 1, s.hurt),
      ];
      const applied = [];
      client.on("tick", (e) => applied.push(e.tick));
      for (const f of frames) socket.send(f);
      await until(() => client.state.tick === 4, 5000, "tick 4 applied");
      assert.deepEqual(applied, [1, 4], "only the good ticks apply");
      const kinds = errors.map((e) => (e instanceof ProtocolError ? `${e.kind}${e.cause?.kind ? `/${e.cause.kind}` : ""}` : e.constructor.name));
      assert.deepEqual(kinds, [
        "decode",
        "delta/unknown_entity",
        "decode",
        "delta/missing_baseline",
        "stale_tick",
        "RejectError",
        "decode",
        "decode",
      ]);
      assert.equal(client.state.tick, 4);
      assert.equal(client.self.hp, 90);
      assert.equal(client.stats.decodeErrors, 4);
      assert.equal(client.stats.deltaErrors, 2);
      assert.equal(client.stats.staleTicks, 1);
      // Still usable: a request goes out and its answer comes back.
      const pong = await client.ping();
      assert.equal(pong.serverTimeUs, 1);
      // A listener that throws: reported as an error, the next tick still applies.
      const off = client.on("tick", () => {
        throw new Error("the game's own bug");
      });
      const reported = events(client, "error");
      socket.send(tick(5, 4, format === "bin" ? Uint8Array.from([0, 0, 0]) : { spawned: [], updated: [], removed: [] }));
      assert.equal((await reported).message, "the game's own bug");
      off();
      socket.send(tick(6, 5, format === "bin" ? Uint8Array.from([0, 0, 0]) : { spawned: [], updated: [], removed: [] }));
      await events(client, "tick");
      assert.equal(client.state.tick, 6);
      assert.deepEqual(uncaught, []);
    });

    test("a close with an application code is surfaced, not retried", async (t) => {
      const client = new Client({ url: fake.url, format, WebSocket });
      await client.connect();
      t.after(() => client.close());
      const closed = events(client, "close");
      fake.last.close(4001, "kicked by the fake");
      const ev = await closed;
      assert.deepEqual([ev.code, ev.reason, ev.willReconnect], [4001, "kicked by the fake", false]);
      assert.equal(client.status, "closed");
    });
  });
}

test("a request never answered times out", async (t) => {
  const fake = await fakeServer({ onRequest: () => true });
  t.after(() => fake.close());
  const client = new Client({ url: fake.url, WebSocket, requestTimeoutMs: 100, reconnect: false });
  await client.connect();
  t.after(() => client.close());
  await assert.rejects(client.ping(), (e) => e instanceof TimeoutError && e.requestType === "ping");
});

test("a server answering another subprotocol, or none, is refused", async (t) => {
  for (const protocol of [SUBPROTOCOLS.json, false]) {
    const fake = await fakeServer({ protocol });
    t.after(() => fake.close());
    const client = new Client({ url: fake.url, format: "bin", WebSocket, reconnect: false });
    await assert.rejects(client.connect(), ConnectError);
    assert.equal(client.status, "closed");
  }
});

test("a refused handshake is a ConnectError", async () => {
  const client = new Client({ url: "ws://127.0.0.1:9/ws", WebSocket, reconnect: false });
  await assert.rejects(client.connect(), ConnectError);
});

test("a redirect is followed to the server holding the seat, closing the first connection before the second opens", async (t) => {
  const b = await fakeServer({
    onRequest: (msg, socket, send) => {
      if (msg.body.type !== "join_room") return false;
      assert.equal(msg.body.reservation, "rsv-1");
      send({ type: "cfm", id: msg.id, body: joinedBody({ room_id: msg.body.room_id }) });
      return true;
    },
  });
  t.after(() => b.close());
  let aOpen = 0;
  const a = await fakeServer({
    onRequest: (msg, socket, send) => {
      aOpen = 1;
      socket.on("close", () => {
        aOpen = 0;
      });
      send({ type: "cfm", id: msg.id, body: { type: "redirect", url: b.url, room_id: "r-7-3", reservation: "rsv-1" } });
      return true;
    },
  });
  t.after(() => a.close());
  const client = new Client({ url: a.url, WebSocket, reconnect: false });
  await client.connect();
  t.after(() => client.close());
  let overlap = false;
  client.on("open", () => {
    if (aOpen) overlap = true;
  });
  const joined = await client.joinOrCreate("arena");
  assert.equal(joined.room_id, "r-7-3");
  assert.equal(client.url, b.url);
  assert.equal(overlap, false, "the first connection was closed before the second opened");
  assert.equal(b.maxOpen, 1);
});

test("reconnection: resume with the newest token, then a fresh join when the token is refused", async (t) => {
  let token = 0;
  const fake = await fakeServer({
    onRequest: (msg, socket, send) => {
      const body = msg.body;
      if (body.type === "join_or_create" || body.type === "join_room") {
        token += 1;
        send({ type: "cfm", id: msg.id, body: joinedBody({ player_id: body.type === "join_room" ? 2 : 1, resume_token: `tok${token}` }) });
      } else if (body.type === "resume") {
        if (body.resume_token === "tok1") {
          token += 1;
          send({ type: "cfm", id: msg.id, body: joinedBody({ resume_token: `tok${token}` }) });
        } else {
          send({ type: "rej", id: msg.id, code: "not_found", reason: "no seat for that token" });
        }
      } else return false;
      return true;
    },
  });
  t.after(() => fake.close());
  const client = new Client({ url: fake.url, WebSocket, reconnect: { initialDelayMs: 20 } });
  client.on("error", () => {});
  await client.connect();
  t.after(() => client.close());
  await client.joinOrCreate("arena");
  assert.equal(client.joined.resume_token, "tok1");

  const first = events(client, "reconnected");
  fake.last.terminate();
  const r1 = await first;
  assert.equal(r1.resumed, true);
  assert.equal(r1.joined.player_id, 1);
  assert.equal(client.joined.resume_token, "tok2", "the new token replaces the used one");

  const second = events(client, "reconnected");
  fake.last.terminate();
  const r2 = await second;
  assert.equal(r2.resumed, false, "tok2 refused: a fresh join");
  assert.equal(r2.joined.player_id, 2);
  const kinds = fake.requests.map((b) => (b.type === "resume" ? `resume:${b.resume_token}` : b.type));
  assert.deepEqual(kinds, ["join_or_create", "resume:tok1", "resume:tok2", "join_room"]);
  assert.equal(fake.maxOpen, 1, "never two sockets at once");
  await sleep(10);
});

test("a connection that drops again while being taken back is retried, one socket at a time", async (t) => {
  const fake = await fakeServer({
    onRequest: (msg, socket, send) => {
      // The second and third connections die on their first request.
      if (fake.connections === 2 || fake.connections === 3) {
        socket.terminate();
        return true;
      }
      return false;
    },
  });
  t.after(() => fake.close());
  const client = new Client({ url: fake.url, WebSocket, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
  client.on("error", () => {});
  const attempts = [];
  client.on("reconnecting", (e) => attempts.push(e.attempt));
  await client.connect();
  t.after(() => client.close());
  await client.joinOrCreate("arena");
  const back = events(client, "reconnected", 1, 5000);
  fake.last.terminate();
  const r = await back;
  assert.equal(r.joined.room_id, "r-9-1");
  assert.equal(fake.connections, 4);
  assert.equal(fake.maxOpen, 1, "never two sockets at once");
  assert.deepEqual(attempts, [1, 2, 3], "the attempts count on while the connection keeps dropping");
});
