// Test helpers: a real tickforge server on a free port, a TCP proxy that
// can cut every connection (a dropped network), and event waits.

import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** The server binary: $TICKFORGE_BIN, else the workspace's debug build. */
export function serverBinary() {
  const bin = process.env.TICKFORGE_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(here, "../../../target"), "debug/tickforge");
  if (!fs.existsSync(bin)) {
    throw new Error(`no server binary at ${bin}: build it with \`cargo build -p tickforge-server\` (scripts/js-test.sh does), or set TICKFORGE_BIN`);
  }
  return bin;
}

/**
 * Starts `tickforge --listen 127.0.0.1:0 --shards 1 ...args` and waits for
 * its address. `stop()` sends SIGTERM and waits for the exit.
 */
export async function startServer(args = []) {
  const child = spawn(serverBinary(), ["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let log = "";
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within 20 s:\n${log}`)), 20_000);
    const onData = (chunk) => {
      log += chunk;
      const m = /listening on http:\/\/([^/\s]+)\//.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${log}`));
    });
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  return {
    address,
    url: `ws://${address}/ws`,
    http: `http://${address}`,
    log: () => log,
    async stop() {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * A TCP proxy to `target` ("host:port") on a free port: counts the
 * connections open at once (`maxOpen`), and `cut()` destroys them all, as
 * a lost network does (the client sees 1006).
 */
export async function startProxy(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const pairs = new Set();
  const stats = { open: 0, maxOpen: 0, accepted: 0 };
  const server = net.createServer((downstream) => {
    const upstream = net.connect(port, host);
    const pair = [downstream, upstream];
    pairs.add(pair);
    stats.accepted += 1;
    stats.open += 1;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      stats.open -= 1;
      pairs.delete(pair);
      downstream.destroy();
      upstream.destroy();
    };
    downstream.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = `127.0.0.1:${server.address().port}`;
  return {
    url: `ws://${address}/ws`,
    stats,
    /** Destroys every open connection, both sides. */
    cut() {
      for (const [a, b] of pairs) {
        a.resetAndDestroy?.() ?? a.destroy();
        b.destroy();
      }
    },
    /** Stops listening and drops what is still open. */
    close() {
      const closed = new Promise((resolve) => server.close(resolve));
      this.cut();
      return closed;
    },
  };
}

/** Resolves with the next `n` values of event `name` (rejects after `ms`). */
export function events(emitter, name, n = 1, ms = 5000) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => {
      off();
      reject(new Error(`${got.length} of ${n} '${name}' events within ${ms} ms`));
    }, ms);
    const off = emitter.on(name, (v) => {
      got.push(v);
      if (got.length >= n) {
        clearTimeout(timer);
        off();
        resolve(n === 1 ? got[0] : got);
      }
    });
  });
}

/** Resolves when `pred()` holds (polled), rejects after `ms`. */
export async function until(pred, ms = 5000, what = "condition") {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${what} did not hold within ${ms} ms`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
