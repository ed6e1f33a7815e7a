// The browser test of the operator's monitor (`GET /monitor`): Debian's
// headless Chromium against a running server started with --admin-token
// (scripts/browser-test.sh starts one and sets the variables below), while
// the real loadgen fills a room.
//
//   TICKFORGE_URL=http://127.0.0.1:7700 TICKFORGE_ADMIN_TOKEN=... \
//   TICKFORGE_LOADGEN=target/release/tickforge-loadgen node tests/browser/monitor.mjs
//
// Checks: the page loads and says `live`; it shows the room the loadgen
// is filling, with its players; it updates live (the room's tick and the
// charts move); an admin action without the token (or with another) is
// refused with 401 and changes nothing; with the token, a player is
// disconnected and the room closed, and the page shows both.
// Prints one line per check and `monitor: N passed, M failed`.

import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const base = (process.env.TICKFORGE_URL ?? "").replace(/\/$/, "");
const token = process.env.TICKFORGE_ADMIN_TOKEN ?? "";
const loadgenBin = process.env.TICKFORGE_LOADGEN ?? "";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const OVERALL_TIMEOUT_MS = 120_000;
const PLAYERS = 6;
const screenshot = path.resolve(process.env.MONITOR_SCREENSHOT ?? "target/browser/monitor.png");

if (!base || !token || !loadgenBin) {
  console.error("TICKFORGE_URL, TICKFORGE_ADMIN_TOKEN and TICKFORGE_LOADGEN must be set");
  process.exit(2);
}

let passed = 0;
let failed = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

/** The loadgen's room as the page last read it (the fullest arena room). */
// The loadgen's room: an arena room made for PLAYERS seats (the loadgen
// asks for --players-per-room of them), not one the page tests before
// left behind (their seats are held for the reconnect grace).
const loadgenRoom = (page) =>
  page.evaluate((n) => {
    const rooms = window.__monitor.last?.rooms ?? [];
    return rooms.filter((r) => r.game === "arena" && r.max_players === n).sort((a, b) => b.players - a.players)[0] ?? null;
  }, PLAYERS);

async function main() {
  const wsUrl = `${base.replace(/^http/, "ws")}/ws`;
  const loadgen = spawn(
    loadgenBin,
    ["--url", wsUrl, "--clients", String(PLAYERS), "--players-per-room", String(PLAYERS), "--warmup", "1s", "--duration", "60s", "--quiet"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let loadgenLog = "";
  loadgen.stderr.on("data", (c) => {
    loadgenLog = (loadgenLog + c).slice(-2000);
  });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tickforge-chromium-"));
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync", `--disk-cache-dir=${path.join(profile, "cache")}`],
  });
  const pageErrors = [];
  try {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await ctx.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    let room = null;

    await check("GET /monitor loads and reads /monitor.json live", async () => {
      await page.goto(`${base}/monitor`, { waitUntil: "load", timeout: 30_000 });
      const title = await page.title();
      assert(title.includes("monitor"), `title is ${JSON.stringify(title)}`);
      await page.waitForFunction(() => document.getElementById("status").textContent === "live", null, { timeout: 5000 });
      const admin = (await page.locator("#admin").textContent()).trim();
      assert(admin === "on", `#admin is ${admin}`);
      const shards = await page.locator("#shards tbody tr").count();
      assert(shards >= 1, "no shard rows");
      return `${shards} shard row(s), admin ${admin}`;
    });

    await check(`it shows the room the loadgen fills (${PLAYERS} players)`, async () => {
      try {
        await page.waitForFunction(
          (n) => (window.__monitor.last?.rooms ?? []).some((r) => r.game === "arena" && r.max_players === n && r.players >= n),
          PLAYERS,
          { timeout: 30_000 },
        );
      } catch (e) {
        throw new Error(`${e.message.split("\n")[0]}; loadgen: ${loadgenLog.trim().split("\n").pop() ?? ""}`);
      }
      room = await loadgenRoom(page);
      const row = page.locator(`#rooms tbody tr[data-room="${room.room_id}"]`);
      const text = await row.textContent({ timeout: 5000 });
      assert(text.includes(`${room.players}/${room.max_players}`), `the row says ${text}`);
      const closes = await row.locator("button.close-room").count();
      const kicks = await row.locator("button.disconnect").count();
      assert(closes === 1 && kicks === room.players, `${closes} close and ${kicks} disconnect buttons`);
      return `${room.room_id}: ${room.players}/${room.max_players} players`;
    });

    await check("it updates live: the room's tick, bytes out and the charts move", async () => {
      const tickCell = () => page.locator(`#rooms tbody tr[data-room="${room.room_id}"] td`).nth(5).textContent();
      const t0 = Number(await tickCell());
      await page.waitForFunction(
        ([id, t]) => (window.__monitor.last?.rooms ?? []).some((r) => r.room_id === id && r.tick > t + 30),
        [room.room_id, t0],
        { timeout: 5000 },
      );
      await sleep(1200);
      const t1 = Number(await tickCell());
      assert(t1 > t0, `the tick cell stayed ${t0}`);
      await page.waitForFunction(() => document.querySelectorAll("#chart-players polyline").length === 1, null, { timeout: 10_000 });
      // A room's rate needs it in the mark before the newest (samples
      // every 2 s): a room a few seconds old may still show 0.
      try {
        await page.waitForFunction(
          (id) => (window.__monitor.last?.rooms ?? []).some((r) => r.room_id === id && r.bytes_out_per_s > 0),
          room.room_id,
          { timeout: 10_000 },
        );
      } catch (e) {
        const now = await loadgenRoom(page);
        throw new Error(`bytes out ${now?.bytes_out_per_s} after 10 s: ${e.message.split("\n")[0]}`);
      }
      const r = await loadgenRoom(page);
      assert(r.bytes_out_per_s > 0, `bytes out ${r.bytes_out_per_s}`);
      assert(r.tick_p99_us !== null, "no tick p99");
      fs.mkdirSync(path.dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
      return `tick ${t0} -> ${t1}, ${Math.round(r.bytes_out_per_s)} B/s out, tick p50/p99 ${r.tick_p50_us}/${r.tick_p99_us} µs; screenshot ${screenshot}`;
    });

    await check("admin actions without the token (or with another) are refused with 401", async () => {
      await page.locator("#token").fill("");
      await page.locator(`#rooms tbody tr[data-room="${room.room_id}"] button.close-room`).click();
      await page.waitForFunction(() => window.__monitor.action?.status === 401, null, { timeout: 5000 });
      const shown = await page.locator("#action-result").textContent();
      assert(shown.includes("401"), `#action-result says ${shown}`);
      await page.locator("#token").fill("not-the-token");
      await page.locator(`#rooms tbody tr[data-room="${room.room_id}"] button.disconnect`).first().click();
      await page.waitForFunction((n) => window.__monitor.action?.status === 401 && window.__monitor.action.path.includes("disconnect"), null, { timeout: 5000 });
      await sleep(2500);
      const still = await loadgenRoom(page);
      assert(still && still.room_id === room.room_id && still.players === room.players, `the room changed: ${JSON.stringify(still)}`);
      return shown.trim();
    });

    await check("with the token: a player is disconnected, then the room is closed", async () => {
      await page.locator("#token").fill(token);
      await page.locator(`#rooms tbody tr[data-room="${room.room_id}"] button.disconnect`).first().click();
      await page.waitForFunction(() => window.__monitor.action?.status === 202, null, { timeout: 5000 });
      await page.waitForFunction(
        ([id, n]) => (window.__monitor.last?.rooms ?? []).some((r) => r.room_id === id && r.players < n),
        [room.room_id, room.players],
        { timeout: 10_000 },
      );
      await page.waitForFunction(
        () => (window.__monitor.last?.last_minute.closes ?? []).some((c) => c.reason === "disconnected_by_operator" && c.count > 0),
        null,
        { timeout: 10_000 },
      );
      await page.locator(`#rooms tbody tr[data-room="${room.room_id}"] button.close-room`).click();
      await page.waitForFunction((id) => !(window.__monitor.last?.rooms ?? []).some((r) => r.room_id === id), room.room_id, { timeout: 10_000 });
      await page.waitForFunction((id) => !document.querySelector(`#rooms tbody tr[data-room="${id}"]`), room.room_id, { timeout: 5000 });
      const closes = await page.locator("#closes").textContent();
      assert(closes.includes("disconnected_by_operator"), `#closes: ${closes}`);
      return `closes of the last minute: ${closes.replace(/\s+/g, " ").trim()}`;
    });

    await check("no uncaught errors in the page", async () => {
      assert(pageErrors.length === 0, pageErrors.join("; "));
    });
  } finally {
    await browser.close();
    fs.rmSync(profile, { recursive: true, force: true });
    loadgen.kill("SIGTERM");
  }
}

const guard = setTimeout(() => {
  console.log(`FAIL the monitor test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

try {
  await main();
} catch (e) {
  failed += 1;
  console.log(`FAIL ${e && e.stack ? e.stack : e}`);
}
clearTimeout(guard);
console.log(`monitor: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
