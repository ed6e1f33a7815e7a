// The operator's monitor page (`GET /monitor`): `GET /monitor.json`
// once a second, shown as figures, small charts of the last minutes,
// tables of shards and rooms, and the last minute's closes and rejects.
// With an admin token (the server's `--admin-token`), rooms can be closed
// and players disconnected from here (`POST /monitor/...`, Authorization:
// Bearer TOKEN); without it the server answers 401, and a server started
// without one answers 403: the page says which.
//
// `window.__monitor` exposes the newest answer and the last action's
// outcome (the browser test reads them).

const REFRESH_MS = 1000;
const TOKEN_KEY = "tickforge-admin-token";

const $ = (id) => document.getElementById(id);

const state = { last: null, refreshes: 0, failures: 0, action: null };

function setStatus(s, text) {
  $("status").dataset.state = s;
  $("status").textContent = text;
}

function showError(text) {
  $("error-text").textContent = text;
  $("error").hidden = !text;
}

/** 1234567 -> "1.2 MB" style, for bytes (per second). */
function bytes(n) {
  if (n === null || n === undefined) return "–";
  if (n < 1000) return `${Math.round(n)} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

function micros(us) {
  if (us === null || us === undefined) return "–";
  return us >= 1000 ? `≤${us / 1000} ms` : `≤${us} µs`;
}

function duration(s) {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

function cell(tr, text, className) {
  const td = document.createElement("td");
  if (text instanceof Node) td.append(text);
  else td.textContent = String(text);
  if (className) td.className = className;
  tr.append(td);
  return td;
}

/** A small line chart of `values` into an SVG of viewBox 300 × 60. */
function chart(svg, values) {
  svg.replaceChildren();
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  const points = values.map((v, i) => `${((i / (values.length - 1)) * 300).toFixed(1)},${(58 - (v / max) * 54).toFixed(1)}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.append(line);
  const label = document.createElementNS("http://www.w3.org/2000/svg", "title");
  label.textContent = `max ${max}`;
  svg.append(label);
}

function renderShards(shards) {
  const body = $("shards").tBodies[0];
  body.replaceChildren();
  for (const s of shards) {
    const tr = document.createElement("tr");
    cell(tr, s.shard);
    cell(tr, s.connections, "num");
    cell(tr, s.rooms, "num");
    cell(tr, s.players, "num");
    const bar = document.createElement("span");
    bar.className = `busy${s.cpu_busy > 0.8 ? " hot" : ""}`;
    const fill = document.createElement("span");
    fill.style.width = `${Math.round(s.cpu_busy * 100)}%`;
    bar.append(fill);
    const wrap = document.createElement("span");
    wrap.append(bar, `${(s.cpu_busy * 100).toFixed(1)} %`);
    cell(tr, wrap);
    body.append(tr);
  }
}

function renderRooms(view) {
  const admin = view.server.admin;
  const body = $("rooms").tBodies[0];
  body.replaceChildren();
  for (const r of view.rooms) {
    const tr = document.createElement("tr");
    tr.dataset.room = r.room_id;
    cell(tr, r.room_id + (r.private ? " (private)" : ""));
    cell(tr, r.game);
    cell(tr, r.shard, "num");
    const players = document.createElement("span");
    players.className = "player-ids";
    players.append(`${r.players}/${r.max_players} `);
    for (const id of r.player_ids) {
      if (admin) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "quiet disconnect";
        b.dataset.player = String(id);
        b.textContent = `#${id} ✕`;
        b.title = `Disconnect player ${id}`;
        b.addEventListener("click", () => act(`/monitor/rooms/${encodeURIComponent(r.room_id)}/players/${id}/disconnect`, `disconnect player ${id} of ${r.room_id}`));
        players.append(b);
      } else players.append(`#${id} `);
    }
    cell(tr, players);
    cell(tr, r.spectators, "num");
    cell(tr, r.tick, "num");
    cell(tr, `${micros(r.tick_p50_us)} / ${micros(r.tick_p99_us)}`, "num");
    cell(tr, bytes(r.bytes_out_per_s), "num");
    cell(tr, `${r.skipped_ticks_last_minute} / ${r.skipped_ticks}`, "num");
    const actions = document.createElement("span");
    if (admin) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "close-room";
      b.textContent = "close";
      b.title = `Close room ${r.room_id}: its players get room_closing`;
      b.addEventListener("click", () => act(`/monitor/rooms/${encodeURIComponent(r.room_id)}/close`, `close ${r.room_id}`));
      actions.append(b);
    }
    cell(tr, actions);
    body.append(tr);
  }
  const listed = view.rooms.length;
  $("rooms-note").textContent = listed < view.totals.rooms ? `${listed} of ${view.totals.rooms} rooms listed (the fullest first).` : listed ? "" : "No rooms.";
}

function renderCounts(ul, rows, key) {
  ul.replaceChildren();
  const nonzero = rows.filter((r) => r.count > 0);
  if (!nonzero.length) {
    const li = document.createElement("li");
    li.textContent = "none";
    ul.append(li);
  }
  for (const r of nonzero) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = key(r);
    const n = document.createElement("b");
    n.textContent = String(r.count);
    li.append(name, n);
    ul.append(li);
  }
}

function render(view) {
  $("uptime").textContent = duration(view.server.uptime_s);
  $("connections").textContent = String(view.totals.connections);
  $("rooms-count").textContent = String(view.totals.rooms);
  $("players").textContent = String(view.totals.players);
  $("spectators").textContent = String(view.totals.spectators);
  $("admin").textContent = view.server.admin ? "on" : "off";
  $("admin-bar").hidden = !view.server.admin;
  $("read-only").hidden = view.server.admin;
  renderShards(view.shards);
  renderRooms(view);
  const samples = view.history.samples;
  chart($("chart-players"), samples.map((s) => s.players));
  chart($("chart-p99"), samples.map((s) => s.tick_p99_us));
  chart($("chart-bytes"), samples.map((s) => s.bytes_out_per_s));
  const last = samples[samples.length - 1];
  $("chart-players-now").textContent = last ? String(last.players) : "–";
  $("chart-p99-now").textContent = last ? micros(last.tick_p99_us) : "–";
  $("chart-bytes-now").textContent = last ? bytes(last.bytes_out_per_s) : "–";
  $("history-note").textContent = samples.length ? `(${samples.length} samples, one every ${view.history.every_s} s)` : "";
  $("minute-note").textContent = `(over ${view.last_minute.window_s} s)`;
  renderCounts($("closes"), view.last_minute.closes, (r) => `${r.reason} (${r.code})`);
  renderCounts($("rejects"), view.last_minute.rejects, (r) => r.code);
}

async function refresh() {
  try {
    const res = await fetch("/monitor.json", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).trim()}`);
    const view = await res.json();
    state.last = view;
    state.refreshes += 1;
    render(view);
    setStatus("connected", "live");
    showError("");
  } catch (e) {
    state.failures += 1;
    setStatus("error", "unreachable");
    showError(`/monitor.json: ${e.message}`);
  }
}

/** An admin action; its outcome (or the server's refusal) is shown. */
async function act(path, what) {
  const token = $("token").value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const out = $("action-result");
  try {
    const res = await fetch(path, { method: "POST", headers });
    const text = (await res.text()).trim();
    state.action = { path, status: res.status, text };
    out.dataset.ok = String(res.ok);
    out.textContent = res.ok ? `${what}: requested` : `${what}: refused, ${res.status}: ${text}`;
    refresh();
  } catch (e) {
    state.action = { path, status: 0, text: e.message };
    out.dataset.ok = "false";
    out.textContent = `${what}: ${e.message}`;
  }
}

$("token").value = sessionStorage.getItem(TOKEN_KEY) ?? "";

window.__monitor = {
  get last() {
    return state.last;
  },
  get refreshes() {
    return state.refreshes;
  },
  get action() {
    return state.action;
  },
  act,
};

refresh();
setInterval(refresh, REFRESH_MS);
