// Draws a room's entities on a canvas: world units scaled to fit, y down
// (the world's origin is the top-left corner), the player's own entity
// highlighted. Knows arena's kinds by name; any other kind is drawn grey.

/** The arena world's size in units (WORKLOAD.md). */
export const WORLD = 1000;

const STYLE = {
  player: { fill: "#4f8cff", radius: 11, minPx: 7 },
  npc: { fill: "#f2994a", radius: 9, minPx: 6 },
  projectile: { fill: "#ffe066", radius: 3.5, minPx: 2.5 },
  other: { fill: "#9aa4b2", radius: 6, minPx: 4 },
};

const COLORS = {
  background: "#0f1724",
  grid: "#1c2738",
  border: "#34445e",
  self: "#3ddc97",
  hpBack: "rgba(0,0,0,0.55)",
  hpGood: "#3ddc97",
  hpBad: "#ff5d5d",
  label: "#e6edf7",
  dim: "#7d8aa0",
};

/**
 * Sizes the canvas's backing store to its CSS size times the device pixel
 * ratio, and returns the scale from world units to canvas pixels.
 * @param {HTMLCanvasElement} canvas
 */
export function fit(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  const w = Math.max(1, Math.round(rect.width * dpr));
  const h = Math.max(1, Math.round(rect.height * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return { scale: Math.min(w, h) / WORLD, dpr };
}

function drawGrid(ctx, s) {
  ctx.fillStyle = COLORS.background;
  ctx.fillRect(0, 0, WORLD * s, WORLD * s);
  ctx.strokeStyle = COLORS.grid;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let v = 100; v < WORLD; v += 100) {
    ctx.moveTo(v * s + 0.5, 0);
    ctx.lineTo(v * s + 0.5, WORLD * s);
    ctx.moveTo(0, v * s + 0.5);
    ctx.lineTo(WORLD * s, v * s + 0.5);
  }
  ctx.stroke();
  ctx.strokeStyle = COLORS.border;
  ctx.lineWidth = 2;
  ctx.strokeRect(1, 1, WORLD * s - 2, WORLD * s - 2);
}

function drawHp(ctx, x, y, r, hp, dpr) {
  if (typeof hp !== "number") return;
  const w = r * 2.4;
  const h = 3 * dpr;
  const left = x - w / 2;
  const top = y - r - h - 4;
  ctx.fillStyle = COLORS.hpBack;
  ctx.fillRect(left, top, w, h);
  ctx.fillStyle = hp > 30 ? COLORS.hpGood : COLORS.hpBad;
  ctx.fillRect(left, top, (w * Math.max(0, Math.min(100, hp))) / 100, h);
}

/**
 * Draws one frame.
 * @param {CanvasRenderingContext2D} ctx
 * @param {HTMLCanvasElement} canvas
 * @param {object[]} entities interpolated entities ({id, kind, x, y, ...})
 * @param {number} selfId the player's own entity id (0: none)
 * @param {string} [message] text to show over an empty world
 */
export function draw(ctx, canvas, entities, selfId, message) {
  const { scale, dpr } = fit(canvas);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  // Centre the square world in the canvas.
  const side = WORLD * scale;
  ctx.translate(Math.floor((canvas.width - side) / 2), Math.floor((canvas.height - side) / 2));
  drawGrid(ctx, scale);

  // Projectiles under bodies, the own player last (on top).
  const order = { projectile: 0, npc: 1, player: 2 };
  const sorted = entities
    .filter((e) => typeof e.x === "number" && typeof e.y === "number")
    .sort((a, b) => (order[a.kind] ?? 1) - (order[b.kind] ?? 1) || (a.id === selfId) - (b.id === selfId));
  for (const e of sorted) {
    const st = STYLE[e.kind] ?? STYLE.other;
    const x = e.x * scale;
    const y = e.y * scale;
    const r = Math.max(st.radius * scale, st.minPx * dpr);
    const self = e.id === selfId;
    if (self) {
      ctx.beginPath();
      ctx.arc(x, y, r * 1.9, 0, Math.PI * 2);
      ctx.fillStyle = "rgba(61,220,151,0.18)";
      ctx.fill();
    }
    ctx.beginPath();
    ctx.arc(x, y, r, 0, Math.PI * 2);
    ctx.fillStyle = self ? COLORS.self : st.fill;
    ctx.fill();
    if (self) {
      ctx.lineWidth = 2 * dpr;
      ctx.strokeStyle = "#ffffff";
      ctx.stroke();
    }
    // A short line along the velocity shows where things head.
    if (e.kind !== "projectile" && typeof e.vx === "number" && (e.vx || e.vy)) {
      const len = Math.hypot(e.vx, e.vy) || 1;
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + (e.vx / len) * r * 1.6, y + (e.vy / len) * r * 1.6);
      ctx.lineWidth = 1.5 * dpr;
      ctx.strokeStyle = "rgba(255,255,255,0.7)";
      ctx.stroke();
    }
    if (e.kind !== "projectile") drawHp(ctx, x, y, r, e.hp, dpr);
    if (self || e.kind === "player") {
      ctx.font = `${Math.round(11 * dpr)}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.fillStyle = self ? COLORS.self : COLORS.label;
      const score = typeof e.score === "number" ? ` · ${e.score}` : "";
      ctx.fillText(self ? `you${score}` : `#${e.id}${score}`, x, y + r + 4);
    }
  }

  if (message) {
    ctx.font = `${Math.round(16 * dpr)}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillStyle = COLORS.dim;
    ctx.fillText(message, side / 2, side / 2);
  }
}

/** The most entities the table lists (a note says how many more there are). */
export const TABLE_ROWS = 200;

/**
 * Shows entities as a table: one column per schema field, numbers as the
 * room sends them (fixed fields as real values), the player's own entity
 * marked. For a game the page does not know how to draw.
 * @param {HTMLTableElement} table
 * @param {{fields: {name: string}[]}} schema
 * @param {object[]} entities
 * @param {number} selfId
 * @param {HTMLElement} note
 */
export function renderTable(table, schema, entities, selfId, note) {
  const columns = ["id", "kind", ...schema.fields.map((f) => f.name)];
  const head = table.tHead ?? table.createTHead();
  if (head.dataset.columns !== columns.join(",")) {
    head.replaceChildren();
    const tr = head.insertRow();
    for (const c of columns) {
      const th = document.createElement("th");
      th.textContent = c;
      th.scope = "col";
      tr.append(th);
    }
    head.dataset.columns = columns.join(",");
  }
  const body = table.tBodies[0] ?? table.createTBody();
  const shown = entities.slice(0, TABLE_ROWS);
  while (body.rows.length > shown.length) body.deleteRow(-1);
  shown.forEach((e, i) => {
    const tr = body.rows[i] ?? body.insertRow();
    tr.className = e.id === selfId ? "here" : "";
    tr.dataset.id = String(e.id);
    columns.forEach((c, j) => {
      const td = tr.cells[j] ?? tr.insertCell();
      const v = e[c];
      const text = typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : String(v);
      if (td.textContent !== text) td.textContent = text;
    });
    while (tr.cells.length > columns.length) tr.deleteCell(-1);
  });
  note.textContent =
    entities.length > shown.length ? `${entities.length} entities; the first ${shown.length} are listed.` : `${entities.length} entities.`;
}
