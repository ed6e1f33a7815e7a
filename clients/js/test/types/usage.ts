// Compiled (never run) by test/types.test.js: the hand-written index.d.ts
// must describe the API as a game uses it.

import {
  Client,
  RejectError,
  StateStore,
  decodeServer,
  encodeClient,
  float,
  type Entity,
  type Joined,
  type TickEvent,
  type Value,
} from "../../index.js";

// In Node: the ws package's WebSocket; in a browser: the global one.
declare const WebSocket: new (url: string, protocols?: string[]) => unknown;

async function play(): Promise<void> {
  const client = new Client({ url: "ws://127.0.0.1:7700/ws", format: "bin", WebSocket, reconnect: { attempts: 3 } });
  await client.connect();
  const joined: Joined = await client.joinOrCreate("arena", { options: { mode: "duel", rounds: 3, ratio: float(2) } });
  client.on("tick", (t: TickEvent) => {
    const me: Entity | undefined = client.self;
    const x: number | string | undefined = me?.x;
    const seq: number = client.sendInput({ move_x: 127, move_y: 0, buttons: t.inputSeq > 0 ? 1 : 0 });
    void [x, seq, t.snapshot.get(joined.entity_id)];
  });
  client.on("close", (e) => console.log(e.code, e.reason, e.willReconnect));
  client.on("error", (e) => {
    if (e instanceof RejectError) console.log(e.code satisfies string);
  });
  const drawn = client.state?.interpolate(performance.now(), { delayPeriods: 1 });
  const reply: Value = await client.gameMessage("chat", { text: "gg", bytes: new Uint8Array([1]) });
  const rooms = await client.listRooms({ game: "arena", filter: { mode: "duel" } });
  const pending = client.pendingInputs.map((i) => i.quantized);
  void [drawn?.entities, reply, rooms[0]?.metadata, pending];
  await client.leave();
  await client.close();
}

const store = new StateStore({ schema: { kinds: ["a"], fields: [{ name: "x", type: { fixed: 16 } }] }, tickHz: 30, format: "json" });
store.apply({ tick: 1, baseline: null, server_time_us: 0 }, { spawned: [{ id: 1, kind: "a", x: 1 }] });
const bytes: Uint8Array = encodeClient("bin", { type: "ack", tick: 1 });
const msg = decodeServer("bin", bytes);
if (msg.type === "tick") void msg.input_seq;
void play;
