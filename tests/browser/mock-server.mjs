// A stand-in for the tickforge server, for working on the page without one:
// serves server/web/ (open it as /?json: the mock speaks no binary form)
// and speaks enough of `tickforge.v1.json` (CONTRACT.md)
// for the page: hello, join_or_create, join_room, create_room, leave_room,
// ping, list_rooms, a toy arena ticking at 30 Hz with deltas against each
// player's acked tick, a 64 KiB message limit (close 1009).
//
//   node tests/browser/mock-server.mjs [port]     (default 7700)
//   TICKFORGE_BIN unset + MOCK=1 scripts/browser-test.sh runs the test on it
//
// Not the server under test: the browser test runs against the real one.

import http from "node:http";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const webDir = path.join(here, "../../server/web");
const port = Number(process.argv[2] ?? 7700);
const HZ = 30;
const MAX_MESSAGE = 64 * 1024;

const schema = {
  kinds: ["player", "npc", "projectile"],
  fields: [
    { name: "x", type: { fixed: 16 }, integrates: 2 },
    { name: "y", type: { fixed: 16 }, integrates: 3 },
    { name: "vx", type: { fixed: 16 } },
    { name: "vy", type: { fixed: 16 } },
    { name: "hp", type: "u8" },
    { name: "score", type: "u16" },
  ],
};
const FIELDS = ["x", "y", "vx", "vy", "hp", "score"];
const q = (v) => Math.round(v * 16) / 16;

let nextRoom = 1;
const rooms = new Map();

function newRoom(maxPlayers = 8) {
  const r = {
    id: `r-0-${nextRoom++}`,
    maxPlayers,
    tick: 0,
    nextEntity: 1,
    nextPlayer: 1,
    entities: new Map(),
    players: new Map(), // player id -> conn
    history: new Map(), // tick -> Map id -> entity
  };
  for (let i = 0; i < 16; i++) {
    const id = r.nextEntity++;
    r.entities.set(id, { id, kind: "npc", x: Math.random() * 1000, y: Math.random() * 1000, vx: 0, vy: 0, hp: 100, score: 0, tx: Math.random() * 1000, ty: Math.random() * 1000 });
  }
  r.timer = setInterval(() => step(r), 1000 / HZ);
  rooms.set(r.id, r);
  return r;
}

function step(r) {
  r.tick += 1;
  const dt = 1 / HZ;
  for (const c of r.players.values()) {
    const e = r.entities.get(c.entity);
    const inp = c.input;
    e.vx = (inp.move_x / 127) * 200;
    e.vy = (inp.move_y / 127) * 200;
    if (inp.buttons & 1 && r.tick - (c.lastFire ?? -99) >= HZ / 4) {
      c.lastFire = r.tick;
      const id = r.nextEntity++;
      const sp = Math.hypot(e.vx, e.vy);
      const [dx, dy] = sp ? [e.vx / sp, e.vy / sp] : [1, 0];
      r.entities.set(id, { id, kind: "projectile", x: e.x, y: e.y, vx: dx * 400, vy: dy * 400, hp: 100, score: 0, die: r.tick + HZ });
    }
  }
  for (const e of r.entities.values()) {
    if (e.kind === "npc") {
      const dx = e.tx - e.x;
      const dy = e.ty - e.y;
      const d = Math.hypot(dx, dy);
      if (d < 5) {
        e.tx = Math.random() * 1000;
        e.ty = Math.random() * 1000;
      } else {
        e.vx = (dx / d) * 100;
        e.vy = (dy / d) * 100;
      }
    }
    if (e.kind === "projectile" && r.tick >= e.die) {
      r.entities.delete(e.id);
      continue;
    }
    e.x = q(Math.min(1000, Math.max(0, e.x + e.vx * dt)));
    e.y = q(Math.min(1000, Math.max(0, e.y + e.vy * dt)));
    e.vx = q(e.vx);
    e.vy = q(e.vy);
  }
  const snap = new Map([...r.entities.values()].map((e) => [e.id, pick(e)]));
  r.history.set(r.tick, snap);
  r.history.delete(r.tick - 64);
  for (const c of r.players.values()) sendTick(r, c, snap);
}

function pick(e) {
  const o = { id: e.id, kind: e.kind };
  for (const f of FIELDS) o[f] = e[f];
  return o;
}

function sendTick(r, c, snap) {
  const base = c.ack !== null ? r.history.get(c.ack) : undefined;
  const state = { spawned: [], updated: [], removed: [] };
  for (const e of snap.values()) {
    const b = base?.get(e.id);
    if (!b) {
      state.spawned.push(e);
      continue;
    }
    const u = { id: e.id };
    let changed = false;
    for (const f of FIELDS) {
      if (b[f] !== e[f]) {
        u[f] = e[f];
        changed = true;
      }
    }
    if (changed) state.updated.push(u);
  }
  if (base) for (const id of base.keys()) if (!snap.has(id)) state.removed.push(id);
  const text = `{"type":"tick","tick":${r.tick},"server_time_us":${Date.now() * 1000},"baseline":${base ? c.ack : null},"input_seq":${c.seq},"state":${JSON.stringify(state)}}`;
  c.sendText(text);
}

function join(c, r) {
  const pid = r.nextPlayer++;
  const id = r.nextEntity++;
  r.entities.set(id, { id, kind: "player", x: q(100 + Math.random() * 800), y: q(100 + Math.random() * 800), vx: 0, vy: 0, hp: 100, score: 0 });
  for (const o of r.players.values()) o.sendJson({ type: "ind", body: { type: "player_joined", player_id: pid } });
  r.players.set(pid, c);
  Object.assign(c, { room: r, player: pid, entity: id, ack: null, seq: 0, input: { move_x: 0, move_y: 0, buttons: 0 } });
  return { type: "joined", room_id: r.id, game: "arena", player_id: pid, entity_id: id, tick_hz: HZ, max_players: r.maxPlayers, schema };
}

function leave(c, reason) {
  const r = c.room;
  if (!r) return;
  r.players.delete(c.player);
  r.entities.delete(c.entity);
  c.room = null;
  for (const o of r.players.values()) o.sendJson({ type: "ind", body: { type: "player_left", player_id: c.player, reason } });
}

const info = (r) => ({ room_id: r.id, game: "arena", players: r.players.size, max_players: r.maxPlayers, tick_hz: HZ });

function onRequest(c, id, body) {
  const cfm = (b) => c.sendJson({ type: "cfm", id, body: b });
  const rej = (code, reason) => c.sendJson({ type: "rej", id, code, reason });
  const inRoom = () => (c.room ? (rej("already_in_room", `already in room ${c.room.id}`), true) : false);
  switch (body.type) {
    case "hello":
      return cfm({ type: "welcome", session_id: crypto.randomUUID(), server_version: "mock" });
    case "ping":
      return cfm({ type: "pong", client_time_us: body.client_time_us, server_time_us: Date.now() * 1000 });
    case "list_rooms":
      return cfm({ type: "room_list", rooms: [...rooms.values()].map(info) });
    case "join_or_create": {
      if (inRoom()) return;
      if (body.game !== "arena") return rej("not_found", `no game ${body.game}`);
      const free = [...rooms.values()].filter((r) => r.players.size < r.maxPlayers).sort((a, b) => b.players.size - a.players.size);
      return cfm(join(c, free[0] ?? newRoom()));
    }
    case "create_room":
      if (inRoom()) return;
      return cfm(join(c, newRoom(body.max_players ?? 8)));
    case "join_room": {
      if (inRoom()) return;
      const r = rooms.get(body.room_id);
      if (!r) return rej("not_found", `no room ${body.room_id}`);
      if (r.players.size >= r.maxPlayers) return rej("room_full", `room ${r.id} has ${r.players.size} of ${r.maxPlayers} players`);
      return cfm(join(c, r));
    }
    case "leave_room": {
      if (!c.room) return rej("not_in_room", "not in a room");
      const rid = c.room.id;
      leave(c, "left");
      return cfm({ type: "left", room_id: rid });
    }
    default:
      return rej("unsupported", `unknown request ${body.type}`);
  }
}

function onText(c, text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return c.sendJson({ type: "ind", body: { type: "error", code: "bad_request", reason: "not JSON" } });
  }
  if (!["req", "input", "ack"].includes(m.type)) {
    c.bad = (c.bad ?? 0) + 1;
    if (c.bad >= 5) return c.close(1007, `${c.bad} undecodable messages`);
    return c.sendJson({ type: "ind", body: { type: "error", code: "bad_request", reason: `unknown message ${m.type}` } });
  }
  c.bad = 0;
  if (m.type === "req") return onRequest(c, m.id, m.body ?? {});
  if (m.type === "input") {
    if (!c.room) return;
    c.seq = m.seq;
    c.input = m.data;
    if (m.ack !== undefined) c.ack = m.ack;
    return;
  }
  if (m.type === "ack") {
    c.ack = m.tick;
  }
}

const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8" };

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/healthz") return res.end("ok");
  if (url.pathname === "/rooms") {
    res.setHeader("content-type", "application/json");
    return res.end(JSON.stringify({ rooms: [...rooms.values()].map(info) }));
  }
  const file = url.pathname === "/" ? "index.html" : url.pathname.slice(1);
  // The page's files, and the client library under client/ (a link to clients/js).
  if (!/^(client\/(src\/)?)?[a-z]+\.(html|js|css)$/.test(file)) {
    res.statusCode = 404;
    return res.end("not found");
  }
  fs.readFile(path.join(webDir, file), (err, data) => {
    if (err) {
      res.statusCode = 404;
      return res.end("not found");
    }
    res.setHeader("content-type", types[path.extname(file)]);
    res.end(data);
  });
});

server.on("upgrade", (req, sock) => {
  const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  if (offered.length && !offered.includes("tickforge.v1.json")) {
    sock.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 40\r\n\r\nsupported: tickforge.v1.json, .v1.bin\n");
    return;
  }
  const accept = crypto.createHash("sha1").update(req.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  sock.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
      (offered.length ? "Sec-WebSocket-Protocol: tickforge.v1.json\r\n" : "") +
      "\r\n",
  );
  const frame = (op, payload) => {
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x80 | op, n]) : n < 65536 ? Buffer.from([0x80 | op, 126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([0x80 | op, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
    if (!sock.destroyed) sock.write(Buffer.concat([head, payload]));
  };
  const c = {
    room: null,
    sendText: (t) => frame(1, Buffer.from(t)),
    sendJson: (m) => frame(1, Buffer.from(JSON.stringify(m))),
    // Sends a close frame, then keeps reading (and dropping) what the client
    // still sends for a moment before closing: closing with unread input
    // makes the kernel send RST, and the client may lose the close frame.
    close: (code, reason) => {
      if (c.closing) return;
      c.closing = true;
      const p = Buffer.alloc(2 + Buffer.byteLength(reason));
      p.writeUInt16BE(code);
      p.write(reason, 2);
      frame(8, p);
      leave(c, "closed");
      setTimeout(() => sock.end(), 500);
      setTimeout(() => sock.destroy(), 2000);
    },
  };
  let buf = Buffer.alloc(0);
  sock.on("data", (d) => {
    if (c.closing) return;
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const op = buf[0] & 15;
      let n = buf[1] & 127;
      let off = 2;
      if (n === 126) {
        if (buf.length < 4) return;
        n = buf.readUInt16BE(2);
        off = 4;
      } else if (n === 127) {
        if (buf.length < 10) return;
        n = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (n > MAX_MESSAGE) return c.close(1009, `message of ${n} bytes is over the limit of ${MAX_MESSAGE}`);
      if (buf.length < off + 4 + n) return;
      const mask = buf.subarray(off, off + 4);
      const payload = Buffer.from(buf.subarray(off + 4, off + 4 + n));
      for (let i = 0; i < n; i++) payload[i] ^= mask[i & 3];
      buf = buf.subarray(off + 4 + n);
      if (op === 1) onText(c, payload.toString());
      else if (op === 8) {
        leave(c, "left");
        return c.close(1000, "bye");
      } else if (op === 9) frame(10, payload);
    }
  });
  sock.on("close", () => leave(c, "disconnected"));
  sock.on("error", () => leave(c, "disconnected"));
});

server.listen(port, "127.0.0.1", () => console.log(`mock tickforge on http://127.0.0.1:${port}/`));
