// tickforge's browser client: one page on the client library
// (clients/js, served at /client/), over `tickforge.v1.bin` by default.
// It joins (or creates) a room, draws arena on a canvas with the other
// entities interpolated and the player's own avatar predicted from its
// inputs (so a key moves it at once, whatever the round trip), shows any
// other game as a table of entities, and shows the live figures.
//
// Query parameters (all optional):
//   ?json        the readable `tickforge.v1.json` instead of the binary form
//   ?room=ID     join this room instead of join_or_create
//   ?watch=ID    watch this room as a spectator (no seat, no avatar)
//   ?game=NAME   the game for join_or_create / create_room (default arena)
//   ?ws=URL      the WebSocket URL (default: this page's host, path /ws)
//   ?token=T     sent in `hello` when the server requires a token
//   ?view=table  show the room as a table of entities even if it can be drawn
//
// Everything the page shows is also readable by scripts through
// `window.__tickforge` (the browser test uses it).

import { Client, ConnectError, ProtocolError, RejectError, ServerError, encodeClient } from "./client/index.js";
import { draw, renderTable } from "./render.js";
import { predictArena, Smoother } from "./predict.js";
import { closeCodeName, formatFor, frameLength, stick, viewFor, wsUrlFor } from "./state.js";

const PING_EVERY_MS = 2000;
const ROOMS_EVERY_MS = 3000;
const TABLE_EVERY_MS = 100;
const BYTES_WINDOW = 30;
const LOG_MAX = 60;

const params = new URLSearchParams(location.search);
const wsUrl = params.get("ws") || wsUrlFor(location);
const game = params.get("game") || "arena";
const token = params.get("token");
const format = formatFor(params);

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  room: $("room"),
  players: $("players"),
  tick: $("tick"),
  rtt: $("rtt"),
  bytes: $("bytes"),
  form: $("form"),
  formSwitch: $("form-switch"),
  me: $("me"),
  rate: $("rate"),
  server: $("server"),
  error: $("error"),
  errorText: $("error-text"),
  reconnect: $("reconnect"),
  joinAny: $("join-any"),
  create: $("create"),
  leave: $("leave"),
  rooms: $("rooms"),
  scores: $("scores"),
  roomsNote: $("rooms-note"),
  log: $("log"),
  canvas: $("view"),
  stage: $("stage"),
  tableView: $("table-view"),
  entities: $("entities"),
  entitiesNote: $("entities-note"),
  endpoint: $("endpoint"),
};
const ctx = ui.canvas.getContext("2d");

// ---- state ------------------------------------------------------------------------

/** @type {Client | null} */
let client = null;
/** What to join on (re)connect: a request body. */
let wanted = params.get("watch")
  ? { type: "watch_room", room_id: params.get("watch") }
  : params.get("room")
    ? { type: "join_room", room_id: params.get("room") }
    : { type: "join_or_create", game };
/** Seats taken back with `resume` since the page loaded. */
let resumes = 0;
/** Joins redirected to another server of the cluster since the page loaded. */
let redirects = 0;
let closingOnPurpose = false;
let rttMs = null;
let serverVersion = null;
let view = "canvas";
let pingTimer = null;
let lastSent = null;
const tickBytes = [];
const errors = [];
const held = { left: false, right: false, up: false, down: false, fire: false };
const smoother = new Smoother();
let statusState = "idle";

// ---- the figures ----------------------------------------------------------------------

function setStatus(state, text) {
  statusState = state;
  ui.status.textContent = text ?? state;
  ui.status.dataset.state = state;
  ui.leave.disabled = !(client && client.status === "open" && inRoom());
}

function showError(text) {
  errors.push(text);
  ui.errorText.textContent = text;
  ui.error.hidden = false;
  log(text, "error");
}

function clearError() {
  ui.errorText.textContent = "";
  ui.error.hidden = true;
}

function log(text, kind = "info") {
  const li = document.createElement("li");
  li.className = `log-${kind}`;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString();
  li.append(time, " ", text);
  ui.log.prepend(li);
  while (ui.log.children.length > LOG_MAX) ui.log.lastChild.remove();
}

const joined = () => client?.joined ?? null;
const watching = () => client?.watching ?? null;
/** The room we play in or watch: its `joined` or `watching`, or null. */
const inRoom = () => joined() ?? watching();

function playerCount() {
  const l = client?.state?.latest;
  return inRoom() && l ? l.count("player") : null;
}

function meanBytes() {
  return tickBytes.length ? tickBytes.reduce((a, b) => a + b, 0) / tickBytes.length : null;
}

function updateFigures() {
  const j = joined();
  const here = inRoom();
  ui.room.textContent = here ? here.room_id : "–";
  const n = playerCount();
  ui.players.textContent = n === null ? "–" : String(n);
  ui.players.title = j ? `${n} of ${j.max_players} seats taken` : watching() ? "watching: no seat" : "";
  const t = client?.state?.tick ?? null;
  ui.tick.textContent = here && t !== null ? String(t) : "–";
  ui.rtt.textContent = rttMs === null ? "–" : `${rttMs.toFixed(1)} ms`;
  const mean = meanBytes();
  ui.bytes.textContent = mean === null ? "–" : `${Math.round(mean)} B`;
  ui.bytes.title = mean === null ? "" : `WebSocket bytes per tick message (frame header included), mean of the last ${tickBytes.length}, ${format} form`;
  const w = watching();
  ui.rate.textContent = j ? `${j.tick_hz} Hz · ${j.max_players} seats` : w ? `${w.tick_hz} Hz · watching` : "–";
  const me = client?.self;
  ui.me.textContent =
    me && typeof me.x === "number"
      ? `(${Math.round(me.x)}, ${Math.round(me.y)})${typeof me.hp === "number" ? ` · hp ${me.hp}` : ""}${typeof me.score === "number" ? ` · score ${me.score}` : ""}`
      : "–";
  ui.server.textContent = serverVersion ? `(version ${serverVersion})` : "";
  if (t === null || t < scoresTick || t - scoresTick >= 6 || n !== scoresCount) renderScores(n);
}

let scoresTick = -Infinity;
let scoresCount = null;

/** The players of the room by score: a few rows, refreshed every few ticks. */
function renderScores(n) {
  scoresTick = client?.state?.tick ?? -Infinity;
  scoresCount = n;
  const j = joined();
  const players = inRoom() && client.state?.latest ? client.state.entities().filter((e) => e.kind === "player") : [];
  players.sort((p, q) => (q.score ?? 0) - (p.score ?? 0) || p.id - q.id);
  ui.scores.replaceChildren();
  for (const p of players) {
    const tr = document.createElement("tr");
    const self = j && p.id === j.entity_id;
    if (self) tr.className = "here";
    for (const v of [self ? `you (#${p.id})` : `#${p.id}`, p.hp ?? "–", p.score ?? "–"]) {
      const td = document.createElement("td");
      td.textContent = String(v);
      tr.append(td);
    }
    ui.scores.append(tr);
  }
}

// ---- connecting ------------------------------------------------------------------------

function resetRoom() {
  tickBytes.length = 0;
  lastSent = null;
  smoother.reset();
}

function stopTimers() {
  clearInterval(pingTimer);
  pingTimer = null;
}

/**
 * A fresh connection (the old one, if any, is closed first): it takes the
 * seat of the previous connection back with `resume` when it held one (the
 * server keeps a dropped seat for its reconnect grace), else sends `wanted`.
 */
function connect() {
  const held = client?.joined?.resume_token ? { room_id: client.joined.room_id, token: client.joined.resume_token } : null;
  if (client) {
    closingOnPurpose = true;
    const old = client;
    client = null;
    old.close(1000, "reconnecting");
  }
  stopTimers();
  resetRoom();
  rttMs = null;
  closingOnPurpose = false;
  clearError();
  setStatus("connecting", "connecting…");
  updateFigures();
  const c = new Client({
    url: wsUrl,
    format,
    clientName: "tickforge-web",
    token: token ?? undefined,
    reconnect: { attempts: 8 },
  });
  client = c;
  listen(c);
  c.connect().then(
    () => {
      if (c !== client) return;
      serverVersion = c.welcome?.server_version ?? null;
      log(`connected to ${wsUrl} (${c.ws?.protocol || "no subprotocol"})`);
      ping();
      pingTimer = setInterval(ping, PING_EVERY_MS);
      if (held) resume(c, held);
      else join(wanted);
    },
    (e) => {
      if (c !== client) return;
      if (e instanceof ConnectError) {
        setStatus("error", "connection refused");
        const close = e.closeCode ? ` (close ${e.closeCode}: ${closeCodeName(e.closeCode)})` : "";
        showError(`Could not connect to ${wsUrl}: the WebSocket handshake was refused or the server is unreachable${close}.`);
        probeHealth();
      } else {
        setStatus("error", "error");
        showError(describe(e, "hello"));
      }
    },
  );
}

/** The page's handlers of one client's events. */
function listen(c) {
  const mine = (fn) => (v) => {
    if (c === client) fn(v);
  };
  c.on("joined", mine(onJoined));
  c.on("watching", mine(onWatching));
  // A cluster's server sent the join to the server holding the seat; the
  // client follows (connects there, joins with the reservation).
  c.on("redirect", mine((r) => {
    redirects += 1;
    log(`room ${r.room_id} is on ${r.url}: following the redirect`);
  }));
  c.on("left", mine((ev) => {
    log(`left room ${ev.room_id}${ev.reason === "left" ? "" : ` (${ev.reason})`}`);
    resetRoom();
    if (statusState !== "closed" && statusState !== "reconnecting") setStatus("idle", "not in a room");
    updateFigures();
  }));
  c.on("tick", mine(onTick));
  c.on("indication", mine(onIndication));
  c.on("error", mine((e) => {
    if (e instanceof ServerError) showError(`The server reports an error: ${e.code} — ${e.reason}`);
    else if (e instanceof ProtocolError) showError(`A message from the server could not be used (${e.kind}): ${e.message}`);
    else showError(describe(e));
  }));
  c.on("close", mine((ev) => {
    stopTimers();
    if (closingOnPurpose) {
      setStatus("closed", "disconnected");
    } else if (ev.code === 1008 && ev.reason === "resumed elsewhere") {
      // Another tab or device took the seat: the library does not fight over it.
      setStatus("closed", "closed");
      showError(`The seat was taken back on another connection: ${ev.code} (resumed elsewhere).`);
    } else if (ev.willReconnect) {
      setStatus("reconnecting", "reconnecting…");
      log(`connection lost (${ev.code} ${closeCodeName(ev.code)}): reconnecting`, "warn");
    } else {
      setStatus("closed", "closed");
      const reason = ev.reason ? ` — ${ev.reason}` : "";
      const how = ev.wasClean ? "Connection closed by the server" : "Connection lost";
      showError(`${how}: ${ev.code} (${closeCodeName(ev.code)})${reason}.`);
    }
    updateFigures();
  }));
  c.on("reconnecting", mine(() => setStatus("reconnecting", "reconnecting…")));
  c.on("reconnected", mine((ev) => {
    if (ev.resumed) resumes += 1;
    log(ev.resumed ? "reconnected: seat resumed" : "reconnected: joined afresh");
    ping();
    pingTimer = setInterval(ping, PING_EVERY_MS);
  }));
  c.on("reconnect_failed", mine(() => setStatus("closed", "closed")));
}

/** A request's failure for a person. */
function describe(e, what) {
  if (e instanceof RejectError) {
    const hint =
      e.requestType === "join_room" && (e.code === "not_found" || e.code === "room_full") ? " Use “Join any room” or “New room” to play elsewhere." : "";
    return `The server rejected ${e.requestType ?? what ?? "a request"}: ${e.code} — ${e.reason}.${hint}`;
  }
  return `${what ? `${what}: ` : ""}${e.message}`;
}

/** After a refused handshake: ask /healthz why, when it is our own server. */
async function probeHealth() {
  let http;
  try {
    http = new URL(wsUrl);
  } catch {
    return;
  }
  if (http.host !== location.host) return;
  try {
    const res = await fetch("/healthz", { cache: "no-store" });
    const body = (await res.text()).trim();
    if (!res.ok) showError(`The server answers /healthz with ${res.status}${body ? ` (${body})` : ""}: it is not accepting players now.`);
  } catch {
    // The server is gone altogether; the error above says so.
  }
}

function disconnect() {
  if (!client) return;
  closingOnPurpose = true;
  client.close(1000, "bye");
}

function ping() {
  const c = client;
  c?.ping().then(
    (p) => {
      if (c === client) rttMs = p.rttMs;
    },
    () => {},
  );
}

/** Takes a held seat back on the new connection `c`; a refused token (the grace passed) falls back to `wanted`. */
async function resume(c, held) {
  setStatus("joining", "resuming…");
  try {
    await c.resume(held.room_id, held.token);
    resumes += 1;
    log(`resumed the seat in room ${held.room_id}`);
  } catch (e) {
    if (c !== client) return;
    log(`resume refused (${e.code ?? e.message}); joining again`, "warn");
    await join(wanted);
  }
}

/** Sends a join (create, join, join_or_create) or a watch; failures are shown. */
async function join(body) {
  const c = client;
  setStatus("joining", "joining…");
  try {
    if (body.type === "watch_room") await c.watch(body.room_id);
    else if (body.type === "join_room") await c.joinRoom(body.room_id);
    else if (body.type === "create_room") await c.createRoom(body.game);
    else await c.joinOrCreate(body.game);
  } catch (e) {
    if (c !== client) return;
    showError(describe(e, body.type));
    if (c.status === "open") setStatus("idle", "not in a room");
  }
}

/** Joins another room: leaves the current one first (the server refuses a second join). */
async function joinRoom(body) {
  wanted = body;
  if (body.type === "join_room" || body.type === "watch_room") {
    const url = new URL(location.href);
    url.searchParams.delete(body.type === "join_room" ? "watch" : "room");
    url.searchParams.set(body.type === "join_room" ? "room" : "watch", body.room_id);
    history.replaceState(null, "", url);
  }
  if (!client || client.status !== "open") {
    connect();
    return;
  }
  clearError();
  if (inRoom()) {
    try {
      await client.leave();
    } catch (e) {
      showError(describe(e, "leave_room"));
      return;
    }
  }
  await join(body);
}

// ---- receiving ----------------------------------------------------------------------------

function onJoined(j) {
  resetRoom();
  clearError();
  // Rejoin this very room after a reconnect.
  wanted = { type: "join_room", room_id: j.room_id };
  const url = new URL(location.href);
  url.searchParams.delete("watch");
  url.searchParams.set("room", j.room_id);
  history.replaceState(null, "", url);
  view = viewFor(j.game, j.schema, params);
  ui.stage.hidden = view !== "canvas";
  ui.tableView.hidden = view !== "table";
  log(`joined room ${j.room_id} (${j.game}, ${j.tick_hz} Hz) as player ${j.player_id}, entity ${j.entity_id}`);
  setStatus("joined", "joined, waiting for ticks…");
  refreshRooms();
  updateFigures();
}

/** Watching a room as a spectator: its ticks, no seat, no input (the library acks). */
function onWatching(w) {
  resetRoom();
  clearError();
  wanted = { type: "watch_room", room_id: w.room_id };
  const url = new URL(location.href);
  url.searchParams.delete("room");
  url.searchParams.set("watch", w.room_id);
  history.replaceState(null, "", url);
  view = viewFor(w.game, w.schema, params);
  ui.stage.hidden = view !== "canvas";
  ui.tableView.hidden = view !== "table";
  log(`watching room ${w.room_id} (${w.game}, ${w.tick_hz} Hz) as a spectator`);
  setStatus("joined", "watching, waiting for ticks…");
  refreshRooms();
  updateFigures();
}

function onIndication(body) {
  switch (body.type) {
    case "player_joined":
      log(`player ${body.player_id} joined`);
      break;
    case "player_left":
      log(`player ${body.player_id} left (${body.reason})`);
      break;
    case "player_disconnected":
      log(`player ${body.player_id} lost its connection; its seat is held`);
      break;
    case "player_reconnected":
      log(`player ${body.player_id} is back`);
      break;
    case "room_closing":
      showError(`The room is closing: ${body.reason}`);
      setStatus("closed", "room closing");
      break;
    case "game_event":
      log(`game event ${body.name}`);
      break;
    case "error":
      break; // shown by the error handler
    default:
      log(`indication ${JSON.stringify(body.type)}`, "warn");
  }
}

function onTick(t) {
  tickBytes.push(frameLength(t.bytes));
  if (tickBytes.length > BYTES_WINDOW) tickBytes.shift();
  // One input a tick while a key is held (or just released): the inputs
  // the server has not applied yet are the prediction's.
  sendInput();
  const live = watching() ? "watching" : "connected";
  if (statusState !== live) setStatus(live, live);
  updateFigures();
}

// ---- input -------------------------------------------------------------------------------

/** The held keys as the room's input, or null when its schema is not the stick. */
function inputValues() {
  const schema = client?.inputSchema;
  if (!schema) return null;
  const names = schema.fields.map((f) => f.name).join(",");
  if (names !== "move_x,move_y,buttons") return null;
  const dir = stick(held);
  return { move_x: dir.move_x, move_y: dir.move_y, buttons: held.fire ? 1 : 0 };
}

/** Sends the held input, unless it is idle and was sent already (acks go on by themselves). */
function sendInput() {
  if (!client?.joined) return;
  const data = inputValues();
  if (!data) return;
  const text = JSON.stringify(data);
  const idle = data.move_x === 0 && data.move_y === 0 && data.buttons === 0;
  if (idle && text === lastSent) return;
  if (client.sendInput(data)) lastSent = text;
}

const KEYS = {
  KeyW: "up",
  ArrowUp: "up",
  KeyS: "down",
  ArrowDown: "down",
  KeyA: "left",
  ArrowLeft: "left",
  KeyD: "right",
  ArrowRight: "right",
  Space: "fire",
};

function onKey(ev, down) {
  const t = ev.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
  const what = KEYS[ev.code];
  if (!what) return;
  ev.preventDefault();
  if (held[what] === down) return;
  held[what] = down;
  // A change goes out at once (and moves the predicted avatar at once).
  sendInput();
}

window.addEventListener("keydown", (ev) => onKey(ev, true));
window.addEventListener("keyup", (ev) => onKey(ev, false));
window.addEventListener("blur", () => {
  for (const k of Object.keys(held)) held[k] = false;
  sendInput();
});

ui.reconnect.addEventListener("click", () => {
  ui.reconnect.blur();
  connect();
});
ui.joinAny.addEventListener("click", () => {
  ui.joinAny.blur();
  joinRoom({ type: "join_or_create", game });
});
ui.create.addEventListener("click", () => {
  ui.create.blur();
  joinRoom({ type: "create_room", game });
});
ui.leave.addEventListener("click", async () => {
  ui.leave.blur();
  try {
    await client?.leave();
  } catch (e) {
    showError(describe(e, "leave_room"));
  }
});
$("error-close").addEventListener("click", clearError);
$("refresh-rooms").addEventListener("click", (ev) => {
  ev.currentTarget.blur();
  refreshRooms();
});

// ---- the room list ------------------------------------------------------------------------

function roomsUrl() {
  try {
    const u = new URL(wsUrl);
    u.protocol = u.protocol === "wss:" ? "https:" : "http:";
    u.pathname = "/rooms";
    u.search = "";
    return u.toString();
  } catch {
    return "/rooms";
  }
}

let roomsBusy = false;

async function refreshRooms() {
  if (roomsBusy) return;
  roomsBusy = true;
  try {
    const res = await fetch(roomsUrl(), { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const list = await res.json();
    renderRooms(Array.isArray(list.rooms) ? list.rooms : []);
  } catch (e) {
    ui.roomsNote.textContent = `Room list unavailable (${e.message}).`;
  } finally {
    roomsBusy = false;
  }
}

function renderRooms(rooms) {
  ui.rooms.replaceChildren();
  ui.roomsNote.textContent = rooms.length ? "" : "No public rooms yet: join one to create it.";
  const j = joined();
  const w = watching();
  for (const r of rooms) {
    const tr = document.createElement("tr");
    if (inRoom()?.room_id === r.room_id) tr.className = "here";
    for (const text of [r.room_id, r.game, `${r.players}/${r.max_players}`, `${r.tick_hz} Hz`]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const spectators = document.createElement("td");
    spectators.textContent = String(r.spectators ?? 0);
    spectators.title = "spectators";
    tr.append(spectators);
    const td = document.createElement("td");
    const button = (label, title, disabled, body) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = label;
      b.title = title;
      b.disabled = disabled;
      b.addEventListener("click", () => {
        b.blur();
        joinRoom(body);
      });
      td.append(b);
    };
    const playing = j && j.room_id === r.room_id;
    const watched = w && w.room_id === r.room_id;
    button("join", "Takes a seat in the room (leaving this one)", Boolean(playing) || r.players >= r.max_players, {
      type: "join_room",
      room_id: r.room_id,
    });
    button("watch", "Watches the room without a seat (watch_room)", Boolean(watched), { type: "watch_room", room_id: r.room_id });
    tr.append(td);
    ui.rooms.append(tr);
  }
}

// ---- drawing ----------------------------------------------------------------------------

let frames = 0;
/** What the last frame drew: the interpolated entities, the tick drawn, the own avatar. */
let drawn = { alpha: 1, tick: null, entities: [] };
let tableAt = 0;

/** The own avatar predicted from the server's newest state and the inputs it has not applied (real units), or null. */
function predicted() {
  const j = joined();
  const latest = client?.state?.latest;
  if (!j || !latest || j.game !== "arena") return null;
  const i = latest.indexOf(j.entity_id);
  if (i < 0) return null;
  const s = latest.schema;
  const xi = s.fieldIndex.get("x");
  const yi = s.fieldIndex.get("y");
  const p = predictArena(latest.quantized(i, xi), latest.quantized(i, yi), client.pendingInputs, j.tick_hz);
  return { x: p.x / 16, y: p.y / 16, pending: client.pendingInputs.length, tick: latest.tick };
}

function frame(now) {
  frames += 1;
  const j = joined();
  const here = inRoom();
  const state = client?.state;
  if (here && state && view === "table") {
    drawn = { alpha: 1, tick: state.tick, entities: state.entities() };
    if (now - tableAt >= TABLE_EVERY_MS) {
      tableAt = now;
      renderTable(ui.entities, here.schema, drawn.entities, j ? j.entity_id : 0, ui.entitiesNote);
    }
  } else {
    drawn = here && state ? state.interpolate(now) : { alpha: 1, tick: null, entities: [] };
    const p = predicted();
    if (p) {
      const at = smoother.follow(p.x, p.y, now);
      drawn.entities = drawn.entities.map((e) => (e.id === j.entity_id ? { ...e, x: at.x, y: at.y } : e));
    }
    let message = "";
    if (!state?.latest || !here) {
      message =
        statusState === "connecting" || statusState === "joining" || statusState === "joined"
          ? "connecting…"
          : statusState === "idle"
            ? "not in a room"
            : "disconnected";
    }
    draw(ctx, ui.canvas, drawn.entities, j ? j.entity_id : 0, message);
  }
  requestAnimationFrame(frame);
}

// ---- the debug hook ----------------------------------------------------------------------

/** Sends frames the server cannot decode, in the form in use (for the browser test). */
function sendGarbage(n) {
  for (let i = 0; i < n; i++) client?.ws?.send(format === "bin" ? Uint8Array.from([9, 9, 9, i]) : `{"type":"no_such_message","n":${i}}`);
}

/** Sends one message of `size` bytes, in the form in use (over the server's limit: 1009). */
function sendOversize(size) {
  client?.ws?.send(format === "bin" ? new Uint8Array(size) : `{"type":"ack","tick":1,"pad":"${"x".repeat(size)}"}`);
}

window.__tickforge = {
  format,
  get status() {
    return statusState;
  },
  /** The WebSocket URL the page connects to (wss:// under https). */
  get url() {
    return wsUrl;
  },
  get joined() {
    return joined();
  },
  /** Joins a cluster redirected to another server since the page loaded. */
  get redirects() {
    return redirects;
  },
  get watching() {
    return watching();
  },
  /** The seat `resume` would take back ({room_id, resume_token}), or null. */
  get resumable() {
    const j = joined();
    return j && j.resume_token ? { room_id: j.room_id, resume_token: j.resume_token } : null;
  },
  /** Seats taken back with `resume` since the page loaded. */
  get resumes() {
    return resumes;
  },
  get latestTick() {
    return client?.state?.tick ?? null;
  },
  get players() {
    return playerCount();
  },
  get rttMs() {
    return rttMs;
  },
  get errors() {
    return errors.slice();
  },
  get frames() {
    return frames;
  },
  get view() {
    return view;
  },
  /** Mean WebSocket bytes per tick message (frame header included). */
  get bytesPerTick() {
    return meanBytes();
  },
  /** Inputs sent that no tick has reported yet. */
  get pending() {
    return client?.pendingInputs.length ?? 0;
  },
  get stats() {
    return client ? { ...client.stats } : null;
  },
  /** The newest state's entities. */
  entities() {
    return client?.state ? client.state.entities().map((e) => ({ ...e })) : [];
  },
  /** The own entity as the last frame drew it, or null. */
  drawnSelf() {
    const j = joined();
    const me = j && drawn.entities.find((e) => e.id === j.entity_id);
    return me ? { ...me, tick: drawn.tick, alpha: drawn.alpha } : null;
  },
  /** The player's own entity in the server's newest state, or null. */
  self() {
    const me = client?.self;
    return me ? { ...me } : null;
  },
  /** The own avatar's predicted position (exact, before smoothing), or null. */
  predictedSelf() {
    return predicted();
  },
  /** Sends a client message (encoded in the form in use). */
  send(msg) {
    client?.ws?.send(encodeClient(format, msg));
  },
  sendGarbage,
  sendOversize,
  refreshRooms,
  connect,
  disconnect,
  joinRoom,
  wsUrl,
};

ui.endpoint.textContent = wsUrl;
ui.form.textContent = format;
{
  const other = new URL(location.href);
  if (format === "json") {
    other.searchParams.delete("json");
    other.searchParams.delete("format");
  } else other.searchParams.set("json", "");
  ui.formSwitch.href = other.toString().replace(/json=(&|$)/, "json$1");
  ui.formSwitch.textContent = format === "json" ? "use binary" : "use JSON";
}
connect();
refreshRooms();
setInterval(refreshRooms, ROOMS_EVERY_MS);
requestAnimationFrame(frame);
