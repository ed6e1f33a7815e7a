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
const OVERALL_TIMEOUT_MS = 180_000;
// Over https the server runs on its own --tls-self-signed certificate (made
// at its start): the browser is told to accept it, and nothing else changes
// (the page derives wss:// from https://).
const tls = base.startsWith("https:");

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

    await check("GET / serves the page with its modules", async () => {
      a = await open(ctxA, `${base}/`, pageErrors);
      const title = await a.title();
      assert(title.includes("tickforge"), `title is ${JSON.stringify(title)}`);
      await a.waitForFunction(() => window.__tickforge !== undefined, null, { timeout: 3000 });
      return title;
    });
    if (!a) return;

    await check("#status says connected within 5 s", async () => {
      await waitText(a, "status", "t === 'connected'", 5000);
      roomId = (await text(a, "#room")).trim();
      assert(roomId && roomId !== "–", `#room is ${JSON.stringify(roomId)}`);
      if (tls) {
        const url = await a.evaluate(() => window.__tickforge.url ?? "");
        assert(!url || url.startsWith("wss://"), `the page connected to ${url}`);
      }
      return `room ${roomId}${tls ? " (https, wss)" : ""}`;
    });

    await check("#tick advances", async () => {
      const t0 = Number(await text(a, "#tick"));
      assert(Number.isInteger(t0) && t0 > 0, `#tick is ${t0}`);
      const t1 = Number(await waitText(a, "tick", `Number(t) >= ${t0 + 5}`, 3000));
      return `${t0} -> ${t1}`;
    });

    await check("the player's own entity is in the state", async () => {
      const me = await a.evaluate(() => window.__tickforge.self());
      assert(me && me.kind === "player", `self() is ${JSON.stringify(me)}`);
      return `entity ${me.id} at (${me.x}, ${me.y})`;
    });

    await check("holding a movement key moves the player", async () => {
      const me0 = await a.evaluate(() => window.__tickforge.self());
      // Move towards the middle so the world's edge cannot stop us.
      const key = me0.x < 500 ? "d" : "a";
      const sign = key === "d" ? 1 : -1;
      await a.locator("#view").click();
      const held = Date.now();
      await a.keyboard.down(key);
      // While moving, sample what each animation frame draws: interpolation
      // gives positions between ticks, so more distinct x than ticks.
      const frames = await a.evaluate(
        () =>
          new Promise((resolve) => {
            const xs = [];
            const t0 = performance.now();
            const step = () => {
              const me = window.__tickforge.drawnSelf();
              if (me) xs.push([me.x, me.tick, me.alpha]);
              // 40 frames, or 4 s when a loaded machine draws fewer.
              if (xs.length < 40 && performance.now() - t0 < 4000) requestAnimationFrame(step);
              else resolve(xs);
            };
            requestAnimationFrame(step);
          }),
      );
      await sleep(Math.max(0, 1000 - (Date.now() - held)));
      await a.keyboard.up(key);
      await sleep(300);
      const me1 = await a.evaluate(() => window.__tickforge.self());
      const dx = (me1.x - me0.x) * sign;
      // 200 units/s for at least a second; allow for ticks in flight.
      assert(dx >= 80, `held '${key}' ~1 s: x ${me0.x} -> ${me1.x}`);
      assert(Math.abs(me1.y - me0.y) < 20, `y moved too: ${me0.y} -> ${me1.y}`);
      const xs = new Set(frames.map(([x]) => x)).size;
      const ticks = new Set(frames.map(([, t]) => t)).size;
      // Frames drawn between two ticks (whatever the frame rate under load).
      const between = frames.filter(([, , alpha]) => alpha > 0.05 && alpha < 0.95).length;
      assert(between >= 3, `only ${between} of ${frames.length} frames were drawn between ticks: not interpolated`);
      return `'${key}': x ${me0.x} -> ${me1.x}; ${frames.length} frames drew ${xs} positions over ${ticks} ticks`;
    });

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

    await check("#rtt and #bytes show figures", async () => {
      const rtt = await waitText(a, "rtt", "/^[0-9.]+ ms$/.test(t)", 5000);
      const bytes = await waitText(a, "bytes", "/^[0-9]+ B$/.test(t)", 2000);
      return `rtt ${rtt}, ${bytes}/tick`;
    });

    await check("a second browser joins the same room: both show 2 players", async () => {
      assert(roomId, "no room id from the first page");
      b = await open(ctxB, `${base}/?room=${encodeURIComponent(roomId)}`, pageErrors);
      const why = async (p) => `#status ${await text(p, "#status")}, #players ${await text(p, "#players")}, #error "${await text(p, "#error-text")}"`;
      try {
        await waitText(b, "status", "t === 'connected'", 10_000);
        const roomB = (await text(b, "#room")).trim();
        assert(roomB === roomId, `second page is in ${roomB}, not ${roomId}`);
        await waitText(a, "players", "t === '2'", 10_000);
        await waitText(b, "players", "t === '2'", 10_000);
      } catch (e) {
        throw new Error(`${e.message.split("\n")[0]} (first page: ${await why(a)}; second page: ${await why(b)})`);
      }
      const selfA = await a.evaluate(() => window.__tickforge.joined.entity_id);
      const seesA = await b.evaluate((id) => window.__tickforge.entities().some((e) => e.id === id), selfA);
      assert(seesA, "the second page does not see the first player's entity");
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
      const p = await open(ctxB, `${base}/?ws=${encodeURIComponent(`ws://127.0.0.1:${port}/ws`)}`, pageErrors);
      const msg = await waitText(p, "error-text", "t.includes('Could not connect')", 5000);
      assert(await p.locator("#error").isVisible(), "#error is hidden");
      const status = (await text(p, "#status")).trim();
      assert(status !== "connected", `#status is ${status}`);
      await p.close();
      return msg;
    });

    await check("a close by the server shows its code, and Reconnect rejoins", async () => {
      assert(b, "no second page");
      // Repeated undecodable messages: the server closes with 1007.
      await b.evaluate(() => {
        for (let i = 0; i < 8; i++) window.__tickforge.send({ type: "no_such_message", n: i });
      });
      const msg = await waitText(b, "error-text", "t.includes('1007')", 5000);
      await waitText(b, "status", "t !== 'connected'", 2000);
      await b.locator("#reconnect").click();
      await waitText(b, "status", "t === 'connected'", 5000);
      assert(!(await b.locator("#error").isVisible()), "the error is still shown after reconnecting");
      const roomB = (await text(b, "#room")).trim();
      assert(roomB === roomId, `reconnected into ${roomB}, not ${roomId}`);
      return msg;
    });

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
      await b.evaluate(() => window.__tickforge.refreshRooms());
      const watch = b.locator("#rooms tr", { hasText: roomId }).getByRole("button", { name: "watch" });
      await watch.click({ timeout: 10_000 });
      await waitText(b, "status", "t === 'watching'", 5000);
      await waitText(b, "room", `t === ${JSON.stringify(roomId)}`, 5000);
      const t0 = Number(await text(b, "#tick"));
      await waitText(b, "tick", `Number(t) >= ${t0 + 5}`, 3000);
      const seen = await b.evaluate(() => ({
        watching: window.__tickforge.watching && window.__tickforge.watching.room_id,
        joined: window.__tickforge.joined,
        players: window.__tickforge.players,
      }));
      assert(seen.watching === roomId && seen.joined === null, JSON.stringify(seen));
      assert(seen.players === 1, `a spectator takes no seat: ${seen.players} players`);
      // The room list counts the spectator.
      const listed = await (await fetch(`${base}/rooms`)).json();
      const row = listed.rooms.find((r) => r.room_id === roomId);
      assert(row && row.spectators === 1, `/rooms row ${JSON.stringify(row)}`);
      assert(!(await b.locator("#error").isVisible()), `error shown: ${await text(b, "#error-text")}`);
      return `watching ${roomId} at tick ${t0}, ${row.players} player, ${row.spectators} spectator`;
    });

    await check("a network drop resumes the seat by itself", async () => {
      // The page talks to the server through a TCP relay this test can cut:
      // the browser sees its socket die (no close frame), the server sees EOF.
      const relay = await tcpRelay(new URL(base).port);
      const scheme = tls ? "wss" : "ws";
      const c = await open(ctxB, `${base}/?ws=${encodeURIComponent(`${scheme}://127.0.0.1:${relay.port}/ws`)}&room=${roomId}`, pageErrors);
      try {
        await waitText(c, "status", "t === 'connected'", 5000);
        const before = await c.evaluate(() => ({ ...window.__tickforge.joined }));
        relay.cut();
        await waitFor(c, "status", "t === 'reconnecting' || t === 'resuming…'", 5000).catch(() => {});
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

    await check("a message over the size limit closes with 1009, shown with its reason", async () => {
      assert(b, "no second page");
      await b.evaluate(() => window.__tickforge.send({ type: "ack", tick: 1, pad: "x".repeat(70 * 1024) }));
      const msg = await waitText(b, "error-text", "t.includes('Connection')", 5000);
      assert(msg.includes("1009"), msg);
      return msg;
    });

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
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
