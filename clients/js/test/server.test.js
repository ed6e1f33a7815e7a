// The client against a real tickforge server, in both forms: join, play,
// leave; every reject the server gives, as a RejectError with its code;
// the server's closes with their codes and reasons; a dropped connection
// taken back (resume when the server holds seats, else a fresh join),
// never with two sockets at once.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { Client, ClosedError, RejectError, ServerError, encodeClient } from "../index.js";
import { events, sleep, startProxy, startServer, until } from "./harness.js";

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

/** A connected client; closed when the test ends. */
async function connected(t, format, options = {}) {
  const client = new Client({ url: server.url, format, WebSocket, clientName: "js-test", reconnect: false, ...options });
  const errors = [];
  client.on("error", (e) => errors.push(e));
  await client.connect();
  t.after(() => client.close());
  client.errors = errors;
  return client;
}

for (const format of ["bin", "json"]) {
  describe(`tickforge.v1.${format}`, () => {
    test("join, play, leave", async (t) => {
      const client = await connected(t, format);
      assert.equal(client.welcome.type, "welcome");
      assert.equal(client.status, "open");
      const joined = await client.createRoom("arena", { maxPlayers: 4 });
      assert.equal(joined.type, "joined");
      assert.equal(joined.game, "arena");
      assert.deepEqual(joined.input_schema.fields.map((f) => [f.name, f.type]), [
        ["move_x", "i8"],
        ["move_y", "i8"],
        ["buttons", "u8"],
      ]);
      await events(client, "tick", 5);
      const me0 = client.self;
      assert.equal(me0.kind, "player");

      // Hold the stick towards the middle for 20 ticks: one input a tick.
      const dir = me0.x < 500 ? 127 : -127;
      const off = client.on("tick", () => client.sendInput({ move_x: dir, move_y: 0, buttons: 0 }));
      await events(client, "tick", 20);
      off();
      client.sendInput({ move_x: 0, move_y: 0, buttons: 0 });
      await until(() => client.pendingInputs.length === 0, 3000, "every input reported by a tick");
      assert.equal(client.serverInputSeq, client.inputSeq);
      const me1 = client.self;
      assert.ok((me1.x - me0.x) * Math.sign(dir) > 50, `x ${me0.x} -> ${me1.x}`);
      assert.equal(me1.vx, 0, "the last input stopped the avatar");
      // Deltas, not full states: the client acked.
      assert.ok(client.state.mark !== null, "a delta was applied");
      assert.ok(client.stats.ticks >= 25 && client.stats.tickBytes > 0);

      const pong = await client.ping();
      assert.ok(pong.rttMs >= 0 && pong.serverTimeUs > 0);
      const rooms = await client.listRooms({ game: "arena" });
      assert.ok(rooms.some((r) => r.room_id === joined.room_id && r.players === 1));

      // A second player: indications both ways.
      const other = await connected(t, format);
      const seen = events(client, "player_joined");
      await other.joinRoom(joined.room_id);
      assert.equal((await seen).type, "player_joined");
      const gone = events(client, "player_left");
      await other.leave();
      assert.equal((await gone).reason, "left");

      const left = await client.leave();
      assert.deepEqual(left, { type: "left", room_id: joined.room_id });
      assert.equal(client.joined, null);
      const ticksAfter = client.stats.ticks;
      await sleep(200);
      assert.equal(client.stats.ticks, ticksAfter, "no ticks after leaving");
      assert.throws(() => client.sendInput({ move_x: 0, move_y: 0, buttons: 0 }), { kind: "no_schema" });
      assert.deepEqual(client.errors, []);

      const closed = events(client, "close");
      await client.close();
      const ev = await closed;
      assert.equal(ev.code, 1000);
      assert.equal(ev.willReconnect, false);
    });

    test("every reject is a RejectError with its code and reason", async (t) => {
      const client = await connected(t, format);
      const rejects = async (promise, code) => {
        const e = await promise.then(
          () => null,
          (err) => err,
        );
        assert.ok(e instanceof RejectError, `${code}: got ${e}`);
        assert.equal(e.code, code);
        assert.ok(e.reason.length > 0);
        return e;
      };
      await rejects(client.joinRoom("no-such-room"), "not_found");
      await rejects(client.joinOrCreate("no-such-game"), "not_found");
      await rejects(client.leave(), "not_in_room");
      await rejects(client.createRoom("arena", { tickHz: 5 }), "bad_request");
      const joined = await client.createRoom("arena", { maxPlayers: 1 });
      await rejects(client.joinOrCreate("arena"), "already_in_room");
      const other = await connected(t, format);
      const full = await rejects(other.joinRoom(joined.room_id), "room_full");
      assert.equal(full.requestType, "join_room");
      // A request type the server does not know: `unsupported`. The
      // library writes only known requests, so this one goes out raw, and
      // its answer, which matches no request of the client, is an error event.
      const error = events(client, "error");
      const raw = format === "bin" ? Uint8Array.from([0, 99, 77]) : '{"type":"req","id":99,"body":{"type":"fly"}}';
      client.ws.send(raw);
      const e = await error;
      assert.ok(e instanceof RejectError && e.code === "unsupported", `${e}`);
      // An input whose data the room's schema refuses: an error indication.
      const indication = events(client, "error");
      client.ws.send(format === "bin" ? Uint8Array.from([1, 1, 0, 5]) : '{"type":"input","seq":1,"data":{"move_x":1}}');
      const ind = await indication;
      assert.ok(ind instanceof ServerError && ind.code === "bad_request", `${ind}`);
    });

    test("the server's closes surface with their code and reason", async (t) => {
      const client = await connected(t, format);
      const closed = events(client, "close");
      // Undecodable messages: the server closes with 1007 after five.
      for (let i = 0; i < 8; i++) client.ws.send(format === "bin" ? Uint8Array.from([9, 9, 9]) : "{nope");
      const ev = await closed;
      assert.equal(ev.code, 1007);
      assert.match(ev.reason, /undecodable/);
      assert.equal(ev.willReconnect, false);
      assert.equal(client.status, "closed");
      await assert.rejects(client.ping(), ClosedError);

      const big = await connected(t, format);
      const tooLarge = events(big, "close");
      big.ws.send(format === "bin" ? new Uint8Array(70 * 1024) : "x".repeat(70 * 1024));
      const ev2 = await tooLarge;
      assert.equal(ev2.code, 1009);
      assert.match(ev2.reason, /limit/);
    });

    test("a dropped connection is taken back, never with two sockets at once", async (t) => {
      const proxy = await startProxy(server.address);
      t.after(() => proxy.close());
      const client = new Client({ url: proxy.url, format, WebSocket, reconnect: { initialDelayMs: 50 } });
      client.on("error", () => {});
      await client.connect();
      t.after(() => client.close());
      const joined = await client.createRoom("arena");
      await events(client, "tick", 3);
      const closed = events(client, "close");
      const back = events(client, "reconnected", 1, 10_000);
      proxy.cut();
      const ev = await closed;
      assert.equal(ev.code, 1006);
      assert.equal(ev.willReconnect, true);
      const { resumed, joined: again } = await back;
      assert.equal(again.room_id, joined.room_id, "back in the same room");
      if (joined.resume_token) {
        // The server holds seats: the seat itself came back.
        assert.equal(resumed, true);
        assert.equal(again.player_id, joined.player_id);
        assert.equal(again.entity_id, joined.entity_id);
      } else {
        assert.equal(resumed, false, "no resume token: a fresh join");
      }
      const ticks = client.stats.ticks;
      await until(() => client.stats.ticks > ticks + 3, 5000, "ticks after reconnecting");
      assert.equal(proxy.stats.maxOpen, 1, "never two sockets at once");
      assert.equal(proxy.stats.accepted, 2);
    });
  });
}

test("a server that wants a token: unauthorized before hello and for a bad one", async (t) => {
  const guarded = await startServer(["--token", "s3cret"]);
  t.after(() => guarded.stop());
  const anon = new Client({ url: guarded.url, WebSocket, reconnect: false });
  await anon.connect();
  t.after(() => anon.close());
  const e = await anon.listRooms().catch((err) => err);
  assert.ok(e instanceof RejectError && e.code === "unauthorized", `${e}`);
  const closed = events(anon, "close");
  const bad = await anon.hello({ token: "wrong" }).catch((err) => err);
  assert.ok(bad instanceof RejectError && bad.code === "unauthorized", `${bad}`);
  const ev = await closed;
  assert.equal(ev.code, 1008);

  const good = new Client({ url: guarded.url, WebSocket, token: "s3cret", reconnect: false });
  await good.connect();
  t.after(() => good.close());
  assert.equal(good.welcome.type, "welcome");
  assert.ok(Array.isArray(await good.listRooms()));
});

test("limits: rate_limited and overloaded", async (t) => {
  const tight = await startServer(["--max-requests-per-sec", "3", "--max-rooms", "1"]);
  t.after(() => tight.stop());
  const a = new Client({ url: tight.url, WebSocket, reconnect: false });
  const b = new Client({ url: tight.url, WebSocket, reconnect: false });
  await a.connect();
  await b.connect();
  t.after(() => a.close());
  t.after(() => b.close());
  await a.createRoom("arena");
  const overloaded = await b.createRoom("arena").catch((e) => e);
  assert.ok(overloaded instanceof RejectError && overloaded.code === "overloaded", `${overloaded}`);
  const answers = await Promise.allSettled(Array.from({ length: 8 }, () => b.ping()));
  const limited = answers.filter((r) => r.status === "rejected" && r.reason.code === "rate_limited");
  assert.ok(limited.length > 0, `${answers.map((r) => r.status)}`);
});

test("the raw request of the reject test is what the encoder would write", () => {
  // The bin frame above is `req`, id 99, variant 77: one past every request.
  assert.deepEqual(encodeClient("bin", { type: "req", id: 99, body: { type: "leave_room" } }), Uint8Array.from([0, 99, 5]));
});
