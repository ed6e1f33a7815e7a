// The browser test of the tickforge page: Debian's headless Chromium, driven
// by playwright-core, against a running server (scripts/browser-test.sh
// starts one and sets TICKFORGE_URL).
//
//   TICKFORGE_URL=http://127.0.0.1:7700 node tests/browser/run.mjs
//
// Env: TICKFORGE_URL (required), CHROMIUM (default /usr/bin/chromium),
// SCREENSHOT (default <repo>/target/browser/screenshot.png).
// Prints one line per check and `browser: N passed, M failed`; exits 1 on
// any failure. Never downloads a browser.

import { chromium } from "playwright-core";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const base = (process.env.TICKFORGE_URL ?? "").replace(/\/$/, "");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const screenshot = path.resolve(process.env.SCREENSHOT ?? path.join(repo, "target/browser/screenshot.png"));
const OVERALL_TIMEOUT_MS = 240_000;
// Over https the server runs on its own --tls-self-signed certificate (made
// at its start): the browser is told to accept it, and nothing else changes
// (the page derives wss:// from https://).
const tls = base.startsWith("https:");
const wsScheme = tls ? "wss" : "ws";

if (!base) {
  console.error("TICKFORGE_URL is not set (e.g. http://127.0.0.1:7700)");
  process.exit(2);
}

let passed = 0;
let failed = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs one named check; a failure is reported and counted, the run goes on. */
async function check(name, fn) {
  const t0 = Date.now();
  try {
    const detail = await fn();
    passed += 1;
    console.log(`ok   ${name}${detail ? `: ${detail}` : ""} (${Date.now() - t0} ms)`);
    return true;
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
    return false;
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
function closedPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A TCP proxy to the server that delays every chunk by `oneWayMs` in each
 * direction: a round trip of 2 × oneWayMs on top of the real one.
 */
function delayProxy(target, oneWayMs) {
  const { hostname, port } = new URL(target);
  return new Promise((resolve, reject) => {
    const sockets = new Set();
    const server = net.createServer((down) => {
      const up = net.connect(Number(port), hostname);
      sockets.add(down).add(up);
      const pipe = (from, to) =>
        from.on("data", (chunk) => setTimeout(() => to.destroyed || to.write(chunk), oneWayMs));
      pipe(down, up);
      pipe(up, down);
      const end = () => {
        setTimeout(() => {
          down.destroy();
          up.destroy();
        }, oneWayMs);
      };
      for (const s of [down, up]) s.on("close", end).on("error", end);
    });
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `${wsScheme}://127.0.0.1:${server.address().port}/ws`,
        close() {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    );
  });
}

async function waitForServer() {
  const deadline = Date.now() + 30_000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(200);
  }
  throw new Error(`${base}/healthz did not answer 200 within 30 s (${last})`);
}

const text = (page, sel) => page.locator(sel).textContent({ timeout: 10_000 });

/** Waits until `#id`'s text satisfies `pred` (a predicate source over `t`). */
async function waitText(page, id, pred, timeout) {
  try {
    await waitFor(page, id, pred, timeout);
  } catch (e) {
    const now = async (sel) => (await page.locator(sel).textContent({ timeout: 1000 }).catch(() => "?")).trim();
    const error = await now("#error-text");
    throw new Error(
      `#${id} is "${await now(`#${id}`)}" after ${timeout} ms, wanted ${pred} ` +
        `(#status "${await now("#status")}"${error ? `, #error "${error}"` : ""})`,
    );
  }
  return (await text(page, `#${id}`)).trim();
}

async function waitFor(page, id, pred, timeout) {
  await page.waitForFunction(
    ([id, pred]) => {
      const el = document.getElementById(id);
      // eslint-disable-next-line no-new-func
      return el && new Function("t", `return (${pred});`)(el.textContent.trim());
    },
    [id, pred],
    { timeout, polling: 50 },
  );
}

/** Opens a page, recording uncaught exceptions in `errors`. */
async function open(context, url, errors) {
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`${url}: ${e.message}`));
  await page.goto(url, { waitUntil: "load", timeout: 30_000 });
  return page;
}

/** A TCP relay on 127.0.0.1 to the server's port; `cut()` destroys every
 * connection through it at once (a network drop: no close frame). */
function tcpRelay(targetPort) {
  const live = new Set();
  let total = 0;
  const server = net.createServer((client) => {
    total += 1;
    const upstream = net.connect(Number(targetPort), "127.0.0.1");
    const pair = [client, upstream];
    live.add(pair);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      live.delete(pair);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      resolve({
        port: server.address().port,
        connections: () => total,
        cut: () => {
          for (const [c, u] of live) {
            c.resetAndDestroy();
            u.resetAndDestroy();
          }
          live.clear();
        },
        close: () => server.close(),
      });
    });
  });
}

/** Counts the distinct colours of a PNG, decoded by the browser itself. */
async function distinctColors(page, png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
    return { colors: seen.size, width: c.width, height: c.height };
  }, png.toString("base64"));
}

/** Bytes per tick the page showed, by form, for the summary. */
const bytesPerTick = {};

/** Holds a movement key ~1 s towards the world's middle; checks the avatar moved and frames fell between ticks. */
async function moves(page) {
  const me0 = await page.evaluate(() => window.__tickforge.self());
  const key = me0.x < 500 ? "d" : "a";
  const sign = key === "d" ? 1 : -1;
  await page.locator("#view").click();
  const held = Date.now();
  await page.keyboard.down(key);
  // While moving, sample what each animation frame draws of the others
  // (interpolated between ticks) and of the own avatar.
  const frames = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const out = [];
        const t0 = performance.now();
        const step = () => {
          const d = window.__tickforge.drawnSelf();
          if (d) out.push([d.x, d.tick, d.alpha]);
          if (out.length < 40 && performance.now() - t0 < 4000) requestAnimationFrame(step);
          else resolve(out);
        };
        requestAnimationFrame(step);
      }),
  );
  await sleep(Math.max(0, 1000 - (Date.now() - held)));
  await page.keyboard.up(key);
  await sleep(400);
  const me1 = await page.evaluate(() => window.__tickforge.self());
  const dx = (me1.x - me0.x) * sign;
  assert(dx >= 80, `held '${key}' ~1 s: x ${me0.x} -> ${me1.x}`);
  assert(Math.abs(me1.y - me0.y) < 20, `y moved too: ${me0.y} -> ${me1.y}`);
  const between = frames.filter(([, , alpha]) => alpha > 0.05 && alpha < 0.95).length;
  assert(between >= 3, `only ${between} of ${frames.length} frames were drawn between ticks: not interpolated`);
  const xs = new Set(frames.map(([x]) => x)).size;
  return `'${key}': x ${me0.x} -> ${me1.x}; ${frames.length} frames drew ${xs} positions, ${between} between ticks`;
}

/** Checks a page is connected, ticks advance and it shows the figures; returns its room. */
async function plays(page, form) {
  const status = await waitText(page, "status", "t === 'connected'", 10_000);
  const roomId = (await text(page, "#room")).trim();
  assert(roomId && roomId !== "–", `#room is ${JSON.stringify(roomId)} (${status})`);
  const used = await page.evaluate(() => window.__tickforge.format);
  assert(used === form, `the page speaks ${used}, not ${form}`);
  assert((await text(page, "#form")).trim() === form, "#form names the form in use");
  const t0 = Number(await text(page, "#tick"));
  assert(Number.isInteger(t0) && t0 > 0, `#tick is ${t0}`);
  const t1 = Number(await waitText(page, "tick", `Number(t) >= ${t0 + 5}`, 3000));
  const me = await page.evaluate(() => window.__tickforge.self());
  assert(me && me.kind === "player", `self() is ${JSON.stringify(me)}`);
  return { roomId, ticks: `${t0} -> ${t1}` };
}

async function main() {
  await check("server is up", async () => {
    await waitForServer();
    return base;
  });
  if (failed) return;

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tickforge-chromium-"));
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // playwright gives the browser a fresh temporary --user-data-dir of its
    // own; these keep it off the network and quiet.
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      `--disk-cache-dir=${path.join(profile, "cache")}`,
    ],
  });
  const pageErrors = [];
  try {
    const ctxA = await browser.newContext({ viewport: { width: 1280, height: 860 }, ignoreHTTPSErrors: tls });
    const ctxB = await browser.newContext({ viewport: { width: 1100, height: 800 }, ignoreHTTPSErrors: tls });
    let a = null;
    let b = null;
    let roomId = null;

    await check("GET / serves the page, its modules and the client library", async () => {
      a = await open(ctxA, `${base}/`, pageErrors);
      const title = await a.title();
      assert(title.includes("tickforge"), `title is ${JSON.stringify(title)}`);
      await a.waitForFunction(() => window.__tickforge !== undefined, null, { timeout: 3000 });
      return title;
    });
    if (!a) return;

    await check("binary by default: connected within 10 s, ticks advance", async () => {
      const r = await plays(a, "bin");
      roomId = r.roomId;
      if (tls) {
        const url = await a.evaluate(() => window.__tickforge.url ?? "");
        assert(url.startsWith("wss://"), `the page connected to ${url}`);
      }
      return `room ${roomId}, tick ${r.ticks}${tls ? " (https, wss)" : ""}`;
    });

    await check("holding a movement key moves the player; the others are interpolated", () => moves(a));

    await check("space fires a projectile", async () => {
      await a.keyboard.down("Space");
      try {
        await a.waitForFunction(() => window.__tickforge.entities().some((e) => e.kind === "projectile"), null, {
          timeout: 3000,
        });
      } finally {
        await a.keyboard.up("Space");
      }
    });

    await check("#rtt and #bytes show figures (binary)", async () => {
      const rtt = await waitText(a, "rtt", "/^[0-9.]+ ms$/.test(t)", 5000);
      const bytes = await waitText(a, "bytes", "/^[0-9]+ B$/.test(t)", 2000);
      await sleep(1200); // a full window of ticks
      bytesPerTick.bin = await a.evaluate(() => window.__tickforge.bytesPerTick);
      return `rtt ${rtt}, ${bytes}/tick`;
    });

    await check("?json: the readable form, in the same room as a binary page: both show 2 players", async () => {
      assert(roomId, "no room id from the first page");
      b = await open(ctxB, `${base}/?json&room=${encodeURIComponent(roomId)}`, pageErrors);
      const why = async (p) => `#status ${await text(p, "#status")}, #players ${await text(p, "#players")}, #error "${await text(p, "#error-text")}"`;
      try {
        const r = await plays(b, "json");
        assert(r.roomId === roomId, `second page is in ${r.roomId}, not ${roomId}`);
        await waitText(a, "players", "t === '2'", 10_000);
        await waitText(b, "players", "t === '2'", 10_000);
      } catch (e) {
        throw new Error(`${e.message.split("\n")[0]} (first page: ${await why(a)}; second page: ${await why(b)})`);
      }
      const selfA = await a.evaluate(() => window.__tickforge.joined.entity_id);
      const seesA = await b.evaluate((id) => window.__tickforge.entities().some((e) => e.id === id), selfA);
      assert(seesA, "the JSON page does not see the binary page's player");
      // The two forms carry the same state: the JSON page's newest view of
      // the binary player matches what the binary page has for that tick.
      const result = await moves(b);
      await waitText(b, "bytes", "/^[0-9]+ B$/.test(t)", 2000);
      await sleep(1200);
      bytesPerTick.json = await b.evaluate(() => window.__tickforge.bytesPerTick);
      return result;
    });

    await check("bytes per tick: the binary form is a fraction of JSON", async () => {
      const { bin, json } = bytesPerTick;
      assert(bin > 0 && json > 0, `bin ${bin}, json ${json}`);
      assert(bin * 4 < json, `binary ${bin} B is not a fraction of JSON ${json} B`);
      return `bin ${bin.toFixed(1)} B, json ${json.toFixed(1)} B per tick (frame headers included)`;
    });

    await check("prediction at 100 ms RTT: the avatar moves before the server's tick, then agrees with it", async () => {
      const proxy = await delayProxy(base, 50);
      const p = await open(ctxA, `${base}/?ws=${encodeURIComponent(proxy.url)}`, pageErrors);
      try {
        await waitText(p, "status", "t === 'connected'", 10_000);
        await p.waitForFunction(() => (window.__tickforge.rttMs ?? 0) >= 90, null, { timeout: 5000 });
        const rtt = await p.evaluate(() => window.__tickforge.rttMs);
        // Idle: the prediction is the server's position.
        await p.waitForFunction(
          () => {
            const t = window.__tickforge;
            const s = t.self();
            const q = t.predictedSelf();
            return s && q && t.pending === 0 && s.x === q.x && s.y === q.y;
          },
          null,
          { timeout: 5000 },
        );
        const me0 = await p.evaluate(() => window.__tickforge.self());
        const key = me0.x < 500 ? "d" : "a";
        const sign = key === "d" ? 1 : -1;
        await p.locator("#view").click();
        await p.keyboard.down(key);
        // Within a frame or two: the predicted (and drawn) avatar moved,
        // the server's state of it has not (its tick is a round trip away).
        const early = await p.evaluate(
          ([x0, sign]) =>
            new Promise((resolve) => {
              const t0 = performance.now();
              const step = () => {
                const t = window.__tickforge;
                const q = t.predictedSelf();
                const moved = q && (q.x - x0) * sign > 0;
                if (moved || performance.now() - t0 > 60) {
                  resolve({ predicted: q?.x, drawn: t.drawnSelf()?.x, server: t.self()?.x, ms: performance.now() - t0, pending: t.pending });
                } else requestAnimationFrame(step);
              };
              step();
            }),
          [me0.x, sign],
        );
        assert((early.predicted - me0.x) * sign > 0, `predicted x ${early.predicted} did not move from ${me0.x} within 60 ms`);
        assert(early.server === me0.x, `the server's x moved already (${me0.x} -> ${early.server}) in ${early.ms.toFixed(0)} ms`);
        // The drawn avatar follows within a few frames.
        await p.waitForFunction(([x0, sign]) => (window.__tickforge.drawnSelf().x - x0) * sign > 0, [me0.x, sign], { timeout: 500 });
        await sleep(800);
        const mid = await p.evaluate(() => ({ p: window.__tickforge.predictedSelf(), s: window.__tickforge.self() }));
        assert((mid.p.x - mid.s.x) * sign > 0, `while moving, the prediction (${mid.p.x}) should lead the server (${mid.s.x})`);
        await p.keyboard.up(key);
        // Released: once every input is in a tick, prediction and server agree exactly.
        await p.waitForFunction(
          () => {
            const t = window.__tickforge;
            const s = t.self();
            const q = t.predictedSelf();
            return t.pending === 0 && s.x === q.x && s.y === q.y && s.vx === 0;
          },
          null,
          { timeout: 3000 },
        );
        const me1 = await p.evaluate(() => window.__tickforge.self());
        assert((me1.x - me0.x) * sign >= 60, `the server moved the avatar only ${me0.x} -> ${me1.x}`);
        return `rtt ${rtt.toFixed(0)} ms: predicted moved ${Math.abs(early.predicted - me0.x).toFixed(1)} units in ${early.ms.toFixed(0)} ms while the server's x stayed ${early.server}; lead ${Math.abs(mid.p.x - mid.s.x).toFixed(1)} units while moving; agreed at ${me1.x}`;
      } finally {
        await p.close();
        proxy.close();
      }
    });

    await check("a game shown as a table of entities (?view=table)", async () => {
      const p = await open(ctxB, `${base}/?view=table&room=${encodeURIComponent(roomId)}`, pageErrors);
      try {
        await waitText(p, "status", "t === 'connected'", 10_000);
        assert(await p.locator("#table-view").isVisible(), "#table-view is hidden");
        assert(!(await p.locator("#stage").isVisible()), "the canvas is shown too");
        await p.waitForFunction(() => document.querySelectorAll("#entities tbody tr").length > 3, null, { timeout: 5000 });
        const head = await p.locator("#entities thead").textContent();
        for (const c of ["id", "kind", "x", "y", "hp", "score"]) assert(head.includes(c), `no column ${c} in ${head}`);
        const own = await p.evaluate(() => window.__tickforge.joined.entity_id);
        const here = await p.locator("#entities tr.here").getAttribute("data-id");
        assert(Number(here) === own, `the marked row is ${here}, not ${own}`);
        const rows = await p.locator("#entities tbody tr").count();
        return `${rows} rows: ${head}`;
      } finally {
        await p.close();
      }
    });

    await check("the room list shows the room", async () => {
      await a.locator("#refresh-rooms").click();
      await a.waitForFunction((id) => document.getElementById("rooms").textContent.includes(id), roomId, {
        timeout: 5000,
      });
    });

    await check("screenshot is saved and not blank", async () => {
      fs.mkdirSync(path.dirname(screenshot), { recursive: true });
      // Fire on the way so the picture has projectiles in flight too.
      await a.keyboard.down("Space");
      await sleep(400);
      const png = await a.screenshot({ path: screenshot });
      await a.keyboard.up("Space");
      const { colors, width, height } = await distinctColors(a, png);
      assert(colors >= 50, `only ${colors} distinct colours in ${width}x${height}`);
      // The canvas itself has drawn entities, not just the background.
      const canvas = await a.evaluate(() => {
        const c = document.getElementById("view");
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        const seen = new Set();
        for (let i = 0; i < d.length; i += 16) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        return seen.size;
      });
      assert(canvas >= 6, `the canvas has only ${canvas} colours`);
      return `${width}x${height}, ${colors} colours (canvas ${canvas})`;
    });

    await check("a rejected request shows its code and reason", async () => {
      const p = await open(ctxB, `${base}/?room=no-such-room`, pageErrors);
      const msg = await waitText(p, "error-text", "t.includes('not_found')", 5000);
      const visible = await p.locator("#error").isVisible();
      assert(visible, "#error is hidden");
      await p.close();
      return msg;
    });

    await check("a refused handshake shows an error", async () => {
      const port = await closedPort();
      const p = await open(ctxB, `${base}/?ws=${encodeURIComponent(`${wsScheme}://127.0.0.1:${port}/ws`)}`, pageErrors);
      const msg = await waitText(p, "error-text", "t.includes('Could not connect')", 5000);
      assert(await p.locator("#error").isVisible(), "#error is hidden");
      const status = (await text(p, "#status")).trim();
      assert(status !== "connected", `#status is ${status}`);
      await p.close();
      return msg;
    });

    for (const [page, form] of [
      [() => a, "bin"],
      [() => b, "json"],
    ]) {
      await check(`a close by the server shows its code, and Reconnect rejoins (${form})`, async () => {
        const p = page();
        assert(p, "no page");
        await waitText(p, "status", "t === 'connected'", 5000);
        // Repeated undecodable messages: the server closes with 1007.
        await p.evaluate(() => window.__tickforge.sendGarbage(8));
        const msg = await waitText(p, "error-text", "t.includes('1007')", 5000);
        await waitText(p, "status", "t !== 'connected'", 2000);
        await p.locator("#reconnect").click();
        await waitText(p, "status", "t === 'connected'", 5000);
        assert(!(await p.locator("#error").isVisible()), "the error is still shown after reconnecting");
        const room = (await text(p, "#room")).trim();
        assert(room === roomId, `reconnected into ${room}, not ${roomId}`);
        return msg;
      });
    }

    await check("New room moves to a new room; join in the room list moves back", async () => {
      assert(b, "no second page");
      await waitText(b, "status", "t === 'connected'", 5000);
      await b.locator("#create").click();
      const other = await waitText(b, "room", `t !== ${JSON.stringify(roomId)} && t !== "–"`, 10_000);
      await waitText(b, "status", "t === 'connected'", 5000);
      await waitText(b, "players", "t === '1'", 5000);
      // The list (refreshed on join) has both rooms; join the first one.
      const join = b.locator("#rooms tr", { hasText: roomId }).getByRole("button", { name: "join" });
      await join.click({ timeout: 10_000 });
      await waitText(b, "room", `t === ${JSON.stringify(roomId)}`, 10_000);
      await waitText(b, "status", "t === 'connected'", 5000);
      assert(!(await b.locator("#error").isVisible()), `error shown: ${await text(b, "#error-text")}`);
      return `${roomId} -> ${other} -> ${roomId}`;
    });

    await check("watch in the room list watches without a seat (watch_room)", async () => {
      assert(b, "no second page");
      await waitText(b, "status", "t === 'connected'", 5000);
      // b plays in roomId: watching it gives the seat up first.
      const seat = await b.evaluate(() => window.__tickforge.joined && window.__tickforge.joined.entity_id);
      assert(seat, "b holds no seat before watching");
      await b.evaluate(() => window.__tickforge.refreshRooms());
      const watch = b.locator("#rooms tr", { hasText: roomId }).getByRole("button", { name: "watch" });
      await watch.click({ timeout: 10_000 });
      await waitText(b, "status", "t === 'watching'", 5000);
      await waitText(b, "room", `t === ${JSON.stringify(roomId)}`, 5000);
      const t0 = Number(await text(b, "#tick"));
      await waitText(b, "tick", `Number(t) >= ${t0 + 5}`, 3000);
      // The seat given up takes its avatar with it, and the spectator brings
      // none: the page's players are the room's seats as the server counts
      // them (the pages closed by earlier checks hold theirs for the
      // reconnect grace, so the count is the server's, not a constant).
      await b.waitForFunction(
        (id) => !window.__tickforge.entities().some((e) => e.id === id && e.kind === "player"),
        seat,
        { timeout: 5000 },
      );
      let seen = null;
      let row = null;
      for (let i = 0; i < 30; i++) {
        seen = await b.evaluate(() => ({
          watching: window.__tickforge.watching && window.__tickforge.watching.room_id,
          joined: window.__tickforge.joined,
          players: window.__tickforge.players,
        }));
        const listed = await (await fetch(`${base}/rooms`)).json();
        row = listed.rooms.find((r) => r.room_id === roomId);
        if (row && seen.players === row.players && row.spectators === 1) break;
        await sleep(100); // a held seat expiring between the two reads
      }
      assert(seen.watching === roomId && seen.joined === null, JSON.stringify(seen));
      // The room list counts the spectator, and no seat for it.
      assert(row && row.spectators === 1, `/rooms row ${JSON.stringify(row)}`);
      assert(seen.players === row.players, `a spectator takes no seat: the page shows ${seen.players} players, /rooms ${row.players}`);
      assert(!(await b.locator("#error").isVisible()), `error shown: ${await text(b, "#error-text")}`);
      // Back to a seat for the checks that follow.
      const join = b.locator("#rooms tr", { hasText: roomId }).getByRole("button", { name: "join" });
      await b.evaluate(() => window.__tickforge.refreshRooms());
      await join.click({ timeout: 10_000 });
      await waitText(b, "status", "t === 'connected'", 5000);
      return `watching ${roomId} at tick ${t0}, ${row.players} player, ${row.spectators} spectator`;
    });

    await check("a network drop resumes the seat by itself", async () => {
      // The page talks to the server through a TCP relay this test can cut:
      // the browser sees its socket die (no close frame), the server sees EOF.
      const relay = await tcpRelay(new URL(base).port);
      const c = await open(ctxB, `${base}/?ws=${encodeURIComponent(`${wsScheme}://127.0.0.1:${relay.port}/ws`)}&room=${roomId}`, pageErrors);
      try {
        await waitText(c, "status", "t === 'connected'", 5000);
        const before = await c.evaluate(() => ({ ...window.__tickforge.joined }));
        assert(before.resume_token, "the server gave no resume token");
        relay.cut();
        await waitFor(c, "status", "t === 'reconnecting…' || t === 'resuming…'", 5000).catch(() => {});
        await c.waitForFunction(() => window.__tickforge.resumes === 1, null, { timeout: 10_000 });
        await waitText(c, "status", "t === 'connected'", 5000);
        const after = await c.evaluate(() => ({ ...window.__tickforge.joined }));
        assert(after.room_id === before.room_id, `resumed into ${after.room_id}, not ${before.room_id}`);
        assert(after.player_id === before.player_id && after.entity_id === before.entity_id, "another seat");
        assert(after.resume_token !== before.resume_token, "the token did not rotate");
        const t0 = Number(await text(c, "#tick"));
        await waitText(c, "tick", `Number(t) >= ${t0 + 5}`, 3000);
        assert(!(await c.locator("#error").isVisible()), `error shown: ${await text(c, "#error-text")}`);
        return `player ${after.player_id} back in ${after.room_id} (${relay.connections()} connections through the relay)`;
      } finally {
        await c.close();
        relay.close();
      }
    });

    await check("a game the page does not know (lines) is a table of its entities", async () => {
      const d = await open(ctxB, `${base}/?game=lines`, pageErrors);
      try {
        await waitText(d, "status", "t === 'connected'", 10_000);
        const joined = await d.evaluate(() => ({ ...window.__tickforge.joined }));
        assert(joined.game === "lines", `joined ${joined.game}`);
        assert(await d.locator("#table-view").isVisible(), "#table-view is hidden");
        assert(!(await d.locator("#stage").isVisible()), "the canvas is shown too");
        await d.waitForFunction(() => document.querySelectorAll("#entities tbody tr").length >= 1, null, {
          timeout: 5000,
        });
        const head = await d.locator("#entities thead").textContent();
        for (const c of ["id", "kind", "side", "col", "row", "wins", "hover_col"]) {
          assert(head.includes(c), `no column ${c} in ${head}`);
        }
        const here = await d.locator("#entities tr.here").getAttribute("data-id");
        assert(Number(here) === joined.entity_id, `the marked row is ${here}, not ${joined.entity_id}`);
        // The room ticks on and nothing the page sent was refused.
        const t0 = Number(await text(d, "#tick"));
        await waitText(d, "tick", `Number(t) >= ${t0 + 10}`, 5000);
        assert(!(await d.locator("#error").isVisible()), `error shown: ${await text(d, "#error-text")}`);
        const rows = await d.locator("#entities tbody tr").count();
        return `${rows} rows in ${joined.room_id}: ${head}`;
      } finally {
        await d.close();
      }
    });

    for (const [page, form] of [
      [() => a, "bin"],
      [() => b, "json"],
    ]) {
      await check(`a message over the size limit closes with 1009, shown with its reason (${form})`, async () => {
        const p = page();
        await waitText(p, "status", "t === 'connected'", 5000);
        await p.evaluate(() => window.__tickforge.sendOversize(70 * 1024));
        const msg = await waitText(p, "error-text", "t.includes('Connection')", 5000);
        assert(msg.includes("1009"), msg);
        return msg;
      });
    }

    await check("no uncaught errors in the page", async () => {
      assert(pageErrors.length === 0, pageErrors.join("; "));
    });
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

const guard = setTimeout(() => {
  console.log(`FAIL the test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

try {
  await main();
} catch (e) {
  failed += 1;
  console.log(`FAIL ${e && e.stack ? e.stack : e}`);
}
clearTimeout(guard);
if (fs.existsSync(screenshot)) console.log(`screenshot: ${screenshot}`);
for (const [form, b] of Object.entries(bytesPerTick)) console.log(`bytes per tick (${form}): ${b.toFixed(1)} B`);
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
