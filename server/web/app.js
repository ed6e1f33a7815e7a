// tickforge's browser client: one page that speaks `tickforge.v1.json` over
// /ws, joins (or creates) an arena room, keeps the room's state from each
// tick's delta and draws it at the display's rate.
//
// Query parameters (all optional):
//   ?room=ID     join this room instead of join_or_create
//   ?game=NAME   the game for join_or_create / create_room (default arena)
//   ?ws=URL      the WebSocket URL (default: this page's host, path /ws)
//   ?token=T     sent in `hello` when the server requires a token
//
// Everything the page shows is also readable by scripts through
// `window.__tickforge` (the browser test uses it).

import { RoomState, interpolate, stick, utf8Length, frameLength, closeCodeName, wsUrlFor } from "./state.js";
import { draw } from "./render.js";

const SUBPROTOCOL = "tickforge.v1.json";
const PING_EVERY_MS = 2000;
const ROOMS_EVERY_MS = 3000;
/** Automatic resumes after a network drop before giving up (backoff 0.25 s
 * doubling: the last starts 7.75 s after the drop, within the default
 * 10 s reconnect grace). */
const RESUME_TRIES = 5;
const BYTES_WINDOW = 30;
const LOG_MAX = 60;
/** Ack from the tick handler when the input timer's acks are this far behind. */
const ACK_CATCH_UP_TICKS = 10;

const params = new URLSearchParams(location.search);
const wsUrl = params.get("ws") || wsUrlFor(location);
const game = params.get("game") || "arena";
const token = params.get("token");

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"),
  room: $("room"),
  players: $("players"),
  tick: $("tick"),
  rtt: $("rtt"),
  bytes: $("bytes"),
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
  endpoint: $("endpoint"),
};
const ctx = ui.canvas.getContext("2d");

// ---- connection state -------------------------------------------------------

let ws = null;
let opened = false;
let closingOnPurpose = false;
let nextId = 1;
/** request id -> {type, sentMs} */
const pending = new Map();
/** The `joined` confirmation of the room we are in, or null. */
let joined = null;
/** The `watching` confirmation of the room we watch as a spectator, or null. */
let watching = null;
/** The seat to take back with `resume` after a lost connection:
 * {room_id, resume_token} from the newest `joined` (tokens are single-use
 * and each `joined` brings a new one), or null. */
let resumable = null;
/** Automatic resumes tried since the connection dropped, and the next one. */
let resumeTries = 0;
let resumeTimer = null;
/** Seats taken back with `resume` since the page loaded. */
let resumes = 0;
/** The room's ticks. */
let room = new RoomState();
/** The join to send once the current room is left: a request body, or null. */
let afterLeave = null;
/** What to join on (re)connect: a request body. */
let wanted = params.get("watch")
  ? { type: "watch_room", room_id: params.get("watch") }
  : params.get("room")
    ? { type: "join_room", room_id: params.get("room") }
    : { type: "join_or_create", game };

let inputSeq = 0;
let lastSent = null; // the last input data sent, as JSON text
let lastAcked = null;
let inputTimer = null;
let pingTimer = null;
let rttMs = null;
let serverVersion = null;
const tickBytes = [];
const errors = [];
const held = { left: false, right: false, up: false, down: false, fire: false };

// ---- the figures --------------------------------------------------------------

let statusState = "idle";

function setStatus(state, text) {
  statusState = state;
  ui.status.textContent = text ?? state;
  ui.status.dataset.state = state;
  const live = ws && ws.readyState === WebSocket.OPEN;
  ui.leave.disabled = !(live && (joined || watching));
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

/** The room we are in or watch: its `joined` or `watching`, or null. */
function inRoom() {
  return joined ?? watching;
}

function playerCount() {
  if (!inRoom()) return null;
  return room.count("player");
}

function self() {
  const l = room.latest;
  if (!l || !joined) return null;
  return l.entities.get(joined.entity_id) ?? null;
}

function updateFigures() {
  const here = inRoom();
  ui.room.textContent = here ? here.room_id : "–";
  const n = playerCount();
  ui.players.textContent = n === null ? "–" : String(n);
  ui.players.title = joined ? `${n} of ${joined.max_players} seats taken` : watching ? "watching: no seat" : "";
  const t = room.latestTick;
  ui.tick.textContent = t === null ? "–" : String(t);
  ui.rtt.textContent = rttMs === null ? "–" : `${rttMs.toFixed(1)} ms`;
  if (tickBytes.length) {
    const avg = tickBytes.reduce((a, b) => a + b, 0) / tickBytes.length;
    ui.bytes.textContent = `${Math.round(avg)} B`;
    ui.bytes.title = `WebSocket bytes per state message (frame headers included), mean of the last ${tickBytes.length}`;
  } else {
    ui.bytes.textContent = "–";
  }
  ui.rate.textContent = joined
    ? `${joined.tick_hz} Hz · ${joined.max_players} seats`
    : watching
      ? `${watching.tick_hz} Hz · watching`
      : "–";
  const me = self();
  ui.me.textContent = me
    ? `(${Math.round(me.x)}, ${Math.round(me.y)})${typeof me.hp === "number" ? ` · hp ${me.hp}` : ""}${
        typeof me.score === "number" ? ` · score ${me.score}` : ""
      }`
    : "–";
  ui.server.textContent = serverVersion ? `(version ${serverVersion})` : "";
  if (t === null || t < scoresTick || t - scoresTick >= 6 || n !== scoresCount) renderScores(n);
}

let scoresTick = -Infinity;
let scoresCount = null;

/** The players of the room by score: a few rows, refreshed every few ticks. */
function renderScores(n) {
  scoresTick = room.latestTick ?? -Infinity;
  scoresCount = n;
  const l = room.latest;
  const players = l ? [...l.entities.values()].filter((e) => e.kind === "player") : [];
  players.sort((p, q) => (q.score ?? 0) - (p.score ?? 0) || p.id - q.id);
  ui.scores.replaceChildren();
  for (const p of players) {
    const tr = document.createElement("tr");
    if (joined && p.id === joined.entity_id) tr.className = "here";
    const who = joined && p.id === joined.entity_id ? `you (#${p.id})` : `#${p.id}`;
    for (const v of [who, p.hp ?? "–", p.score ?? "–"]) {
      const td = document.createElement("td");
      td.textContent = String(v);
      tr.append(td);
    }
    ui.scores.append(tr);
  }
}

// ---- sending -------------------------------------------------------------------

function send(msg) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(msg));
  return true;
}

function request(body) {
  const id = nextId++;
  pending.set(id, { type: body.type, sentMs: performance.now() });
  send({ type: "req", id, body });
  return id;
}

function sendInput() {
  if (!joined) return;
  const dir = stick(held);
  const data = { move_x: dir.move_x, move_y: dir.move_y, buttons: held.fire ? 1 : 0 };
  const text = JSON.stringify(data);
  const ack = room.latestTick;
  const idle = data.move_x === 0 && data.move_y === 0 && data.buttons === 0;
  if (idle && text === lastSent) {
    // Nothing new to say: the server keeps applying the last (idle) input,
    // so only acknowledge the newest tick, and only when it moved on.
    if (ack !== null && ack !== lastAcked) {
      send({ type: "ack", tick: ack });
      lastAcked = ack;
    }
    return;
  }
  inputSeq += 1;
  const msg = { type: "input", seq: inputSeq, data };
  if (ack !== null) msg.ack = ack;
  if (send(msg)) {
    lastSent = text;
    lastAcked = ack;
  }
}

function ping() {
  request({ type: "ping", client_time_us: Date.now() * 1000 });
}

function stopTimers() {
  clearInterval(inputTimer);
  clearInterval(pingTimer);
  inputTimer = null;
  pingTimer = null;
}

// ---- connecting ------------------------------------------------------------------

function resetRoom() {
  joined = null;
  watching = null;
  room = new RoomState();
  tickBytes.length = 0;
  lastSent = null;
  lastAcked = null;
  clearInterval(inputTimer);
  inputTimer = null;
}

/** Opens a new connection; with `resume`, takes the held seat back first
 * (its newest token), else sends `wanted`. */
function connect({ resume = false } = {}) {
  clearTimeout(resumeTimer);
  resumeTimer = null;
  const taking = resume && resumable ? resumable : null;
  if (ws) {
    closingOnPurpose = true;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(1000, "reconnecting");
    } catch {
      // already closed
    }
  }
  stopTimers();
  resetRoom();
  pending.clear();
  rttMs = null;
  opened = false;
  closingOnPurpose = false;
  clearError();
  setStatus("connecting", "connecting…");
  updateFigures();
  try {
    ws = new WebSocket(wsUrl, [SUBPROTOCOL]);
  } catch (e) {
    ws = null;
    setStatus("error", "error");
    showError(`Cannot connect to ${wsUrl}: ${e.message}`);
    return;
  }
  const sock = ws;
  sock.onopen = () => {
    opened = true;
    log(`connected to ${wsUrl} (${sock.protocol || "no subprotocol"})`);
    setStatus("joining", "joining…");
    const hello = { type: "hello", client: "tickforge-web" };
    if (token) hello.token = token;
    request(hello);
    if (taking) {
      setStatus("joining", "resuming…");
      request({ type: "resume", room_id: taking.room_id, resume_token: taking.resume_token });
    } else {
      request(wanted);
    }
    ping();
    pingTimer = setInterval(ping, PING_EVERY_MS);
  };
  sock.onmessage = (ev) => onMessage(ev.data);
  sock.onerror = () => {
    // The event carries no detail; the close that follows says what we know.
  };
  sock.onclose = (ev) => {
    if (sock !== ws) return;
    stopTimers();
    const wasJoined = joined !== null;
    resetRoom();
    if (!opened) {
      setStatus("error", "connection refused");
      showError(
        `Could not connect to ${wsUrl}: the WebSocket handshake was refused or the server is unreachable ` +
          `(close ${ev.code}: ${closeCodeName(ev.code)}).`,
      );
      probeHealth();
    } else if (closingOnPurpose) {
      setStatus("closed", "disconnected");
    } else if (ev.code === 1008 && ev.reason === "resumed elsewhere") {
      // Another tab or device took the seat: do not fight over it.
      resumable = null;
      setStatus("closed", "closed");
      showError(`The seat was taken back on another connection: ${ev.code} (resumed elsewhere).`);
    } else if (!ev.wasClean && wasJoined && resumable && resumeTries < RESUME_TRIES) {
      // A network drop: the server holds the seat for its reconnect grace;
      // take it back on a new connection (250 ms, 0.5 s, 1 s, 2 s, 4 s).
      const wait = 250 * 2 ** resumeTries;
      resumeTries += 1;
      setStatus("reconnecting", "reconnecting…");
      log(`connection lost (${ev.code}); resuming the seat in ${wait} ms (try ${resumeTries} of ${RESUME_TRIES})`, "warn");
      resumeTimer = setTimeout(() => connect({ resume: true }), wait);
    } else {
      setStatus("closed", "closed");
      const reason = ev.reason ? ` — ${ev.reason}` : "";
      const how = ev.wasClean ? "Connection closed by the server" : "Connection lost";
      showError(`${how}: ${ev.code} (${closeCodeName(ev.code)})${reason}.`);
    }
    if (wasJoined) log("left the room (connection closed)");
    updateFigures();
  };
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
    if (!res.ok) {
      const why = body ? ` (${body})` : "";
      showError(`The server answers /healthz with ${res.status}${why}: it is not accepting players now.`);
    }
  } catch {
    // The server is gone altogether; the error above says so.
  }
}

function disconnect() {
  if (!ws) return;
  closingOnPurpose = true;
  ws.close(1000, "bye");
}

/** Joins another room: leaves the current one first (the server refuses a second join). */
function joinRoom(body) {
  wanted = body;
  if (body.type === "join_room") {
    const url = new URL(location.href);
    url.searchParams.delete("watch");
    url.searchParams.set("room", body.room_id);
    history.replaceState(null, "", url);
  }
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    connect();
    return;
  }
  clearError();
  if (joined || watching) {
    resumable = null; // leaving gives the seat up
    afterLeave = body;
    stopInputOnly(); // an input after leaving would earn a not_in_room error
    request({ type: "leave_room" });
  } else {
    setStatus("joining", "joining…");
    request(body);
  }
}

// ---- receiving -------------------------------------------------------------------

function onMessage(data) {
  if (typeof data !== "string") {
    showError("The server sent a binary frame on the JSON subprotocol.");
    return;
  }
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    showError("The server sent a message that is not JSON.");
    return;
  }
  switch (msg.type) {
    case "tick":
      onTick(msg, frameLength(utf8Length(data)));
      break;
    case "cfm":
      onConfirm(msg);
      break;
    case "rej":
      onReject(msg);
      break;
    case "ind":
      onIndication(msg.body ?? {});
      break;
    default:
      log(`unknown message type ${JSON.stringify(msg.type)}`, "warn");
  }
}

function onConfirm(msg) {
  const req = pending.get(msg.id);
  pending.delete(msg.id);
  const body = msg.body ?? {};
  switch (body.type) {
    case "welcome":
      serverVersion = body.server_version;
      break;
    case "joined":
      onJoined(body, req && req.type === "resume");
      break;
    case "watching":
      onWatching(body);
      break;
    case "pong":
      if (req) rttMs = performance.now() - req.sentMs;
      break;
    case "left":
      log(`left room ${body.room_id}`);
      resumable = null; // the seat is given up
      resetRoom();
      setStatus("idle", "not in a room");
      if (afterLeave) {
        const next = afterLeave;
        afterLeave = null;
        setStatus("joining", "joining…");
        request(next);
      }
      break;
    default:
      break;
  }
  updateFigures();
}

function onJoined(j, resumed) {
  resetRoom();
  joined = j;
  resumable = j.resume_token ? { room_id: j.room_id, resume_token: j.resume_token } : null;
  resumeTries = 0;
  if (resumed) {
    resumes += 1;
    log(`resumed the seat in room ${j.room_id}: player ${j.player_id}, entity ${j.entity_id}`);
  }
  clearError();
  // Rejoin this very room after a reconnect.
  wanted = { type: "join_room", room_id: j.room_id };
  const url = new URL(location.href);
  url.searchParams.set("room", j.room_id);
  history.replaceState(null, "", url);
  log(`joined room ${j.room_id} (${j.game}, ${j.tick_hz} Hz) as player ${j.player_id}, entity ${j.entity_id}`);
  setStatus("joined", "joined, waiting for ticks…");
  const period = 1000 / Math.max(1, j.tick_hz);
  inputTimer = setInterval(sendInput, period);
  refreshRooms();
}

/** Watching a room as a spectator: its ticks, no seat, no input (acks only). */
function onWatching(w) {
  resetRoom();
  watching = w;
  resumable = null;
  clearError();
  wanted = { type: "watch_room", room_id: w.room_id };
  const url = new URL(location.href);
  url.searchParams.delete("room");
  url.searchParams.set("watch", w.room_id);
  history.replaceState(null, "", url);
  log(`watching room ${w.room_id} (${w.game}, ${w.tick_hz} Hz) as a spectator`);
  setStatus("joined", "watching, waiting for ticks…");
  inputTimer = setInterval(sendAck, 1000 / Math.max(1, w.tick_hz));
  refreshRooms();
}

/** A spectator's ack of the newest tick, when it moved on. */
function sendAck() {
  const ack = room.latestTick;
  if (ack !== null && ack !== lastAcked && send({ type: "ack", tick: ack })) lastAcked = ack;
}

function onReject(msg) {
  const req = pending.get(msg.id);
  pending.delete(msg.id);
  if (req && req.type === "resume") {
    // The seat is gone (the grace passed, or the token was used): join the
    // room again if it has a seat, as before resumes existed.
    log(`resume refused (${msg.code}: ${msg.reason}); joining again`, "warn");
    resumable = null;
    request(wanted);
    return;
  }
  const what = req ? req.type : `request ${msg.id}`;
  const hint =
    req && req.type === "join_room" && (msg.code === "not_found" || msg.code === "room_full")
      ? " Use “Join any room” or “New room” to play elsewhere."
      : "";
  showError(`The server rejected ${what}: ${msg.code} — ${msg.reason}.${hint}`);
  if (req && ["join_room", "join_or_create", "create_room", "watch_room"].includes(req.type)) {
    setStatus("idle", "not in a room");
  }
  if (req && req.type === "leave_room") afterLeave = null;
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
      log(`player ${body.player_id} lost its connection (its seat is held)`);
      break;
    case "player_reconnected":
      log(`player ${body.player_id} is back`);
      break;
    case "room_closing":
      showError(`The room is closing: ${body.reason}`);
      stopInputOnly();
      setStatus("closed", "room closing");
      break;
    case "error":
      showError(`The server reports an error: ${body.code} — ${body.reason}`);
      break;
    default:
      log(`indication ${JSON.stringify(body.type)}`, "warn");
  }
}

function stopInputOnly() {
  clearInterval(inputTimer);
  inputTimer = null;
}

function onTick(msg, bytes) {
  if (!joined && !watching) return;
  const result = room.applyTick(msg, performance.now());
  if (typeof result === "string") {
    if (result === "missing_baseline" && room.latestTick !== null) {
      send({ type: "ack", tick: room.latestTick });
      lastAcked = room.latestTick;
    }
    return;
  }
  // The input timer acks every period; a background tab's timers are
  // throttled (to 1 Hz or less), so ack here too once acks fall behind, or
  // the server closes us as too slow (1008).
  const t = room.latestTick;
  if (lastAcked === null || t - lastAcked >= ACK_CATCH_UP_TICKS) {
    send({ type: "ack", tick: t });
    lastAcked = t;
  }
  tickBytes.push(bytes);
  if (tickBytes.length > BYTES_WINDOW) tickBytes.shift();
  const live = watching ? "watching" : "connected";
  if (statusState !== live) setStatus(live, live);
  updateFigures();
}

// ---- the room list ---------------------------------------------------------------

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
  for (const r of rooms) {
    const tr = document.createElement("tr");
    const here = inRoom() && inRoom().room_id === r.room_id;
    if (here) tr.className = "here";
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
    const playing = joined && joined.room_id === r.room_id;
    const watched = watching && watching.room_id === r.room_id;
    button("join", "Takes a seat in the room", playing || r.players >= r.max_players, {
      type: "join_room",
      room_id: r.room_id,
    });
    button("watch", "Watches the room without a seat (watch_room)", watched, { type: "watch_room", room_id: r.room_id });
    tr.append(td);
    ui.rooms.append(tr);
  }
}

// ---- input -------------------------------------------------------------------------

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
  // Send a change at once instead of waiting for the next period.
  if (joined) sendInput();
}

window.addEventListener("keydown", (ev) => onKey(ev, true));
window.addEventListener("keyup", (ev) => onKey(ev, false));
window.addEventListener("blur", () => {
  for (const k of Object.keys(held)) held[k] = false;
});

ui.reconnect.addEventListener("click", () => {
  ui.reconnect.blur();
  // The held seat first (its resume token), else a join as before.
  connect({ resume: true });
});
ui.joinAny.addEventListener("click", () => {
  ui.joinAny.blur();
  joinRoom({ type: "join_or_create", game });
});
ui.create.addEventListener("click", () => {
  ui.create.blur();
  joinRoom({ type: "create_room", game });
});
ui.leave.addEventListener("click", () => {
  ui.leave.blur();
  afterLeave = null;
  resumable = null;
  stopInputOnly();
  request({ type: "leave_room" });
});
$("error-close").addEventListener("click", clearError);
$("refresh-rooms").addEventListener("click", (ev) => {
  ev.currentTarget.blur();
  refreshRooms();
});

// ---- drawing ------------------------------------------------------------------------

let frames = 0;
/** What the last frame drew: the interpolated entities and the tick drawn. */
let drawn = { alpha: 1, tick: null, entities: [] };

function frame(now) {
  frames += 1;
  const period = joined ? 1000 / Math.max(1, joined.tick_hz) : 33;
  drawn = interpolate(room, now, period);
  const { entities } = drawn;
  let message = "";
  if (joined && !(joined.schema?.fields ?? []).some((f) => f.name === "x")) {
    message = `game ${joined.game} has no x/y fields to draw`;
  } else if (!room.latest) {
    message =
      statusState === "connecting" || statusState === "joining" || statusState === "joined"
        ? "connecting…"
        : statusState === "idle"
          ? "not in a room"
          : "disconnected";
  }
  draw(ctx, ui.canvas, entities, joined ? joined.entity_id : 0, message);
  requestAnimationFrame(frame);
}

// ---- the debug hook ---------------------------------------------------------------

window.__tickforge = {
  get status() {
    return statusState;
  },
  /** The WebSocket URL the page connects to (wss:// under https). */
  get url() {
    return wsUrl;
  },
  get joined() {
    return joined;
  },
  get watching() {
    return watching;
  },
  /** The seat `resume` would take back ({room_id, resume_token}), or null. */
  get resumable() {
    return resumable;
  },
  /** Seats taken back with `resume` since the page loaded. */
  get resumes() {
    return resumes;
  },
  get latestTick() {
    return room.latestTick;
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
  get skipped() {
    return { ...room.skipped };
  },
  /** The newest state's entities. */
  entities() {
    return room.latest ? [...room.latest.entities.values()].map((e) => ({ ...e })) : [];
  },
  /** The own entity as the last frame drew it (interpolated), or null. */
  drawnSelf() {
    const me = joined && drawn.entities.find((e) => e.id === joined.entity_id);
    return me ? { ...me, tick: drawn.tick, alpha: drawn.alpha } : null;
  },
  /** The player's own entity in the newest state, or null. */
  self() {
    const me = self();
    return me ? { ...me } : null;
  },
  send,
  request,
  refreshRooms,
  connect,
  disconnect,
  joinRoom,
  wsUrl,
};

ui.endpoint.textContent = wsUrl;
connect();
refreshRooms();
setInterval(refreshRooms, ROOMS_EVERY_MS);
requestAnimationFrame(frame);
