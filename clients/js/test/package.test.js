// The npm package: `npm pack --dry-run` holds the modules, the types, the
// README and package.json, nothing else; its entry points resolve.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));

test("package.json names the entry points, types and license", async () => {
  assert.equal(pkg.name, "@tickforge/client");
  assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
  assert.equal(pkg.type, "module");
  assert.equal(pkg.license, "MIT OR Apache-2.0");
  assert.deepEqual(pkg.exports["."], { types: "./index.d.ts", default: "./index.js" });
  assert.equal(pkg.types, "./index.d.ts");
  assert.deepEqual(Object.keys(pkg.dependencies ?? {}), [], "no runtime dependencies");
  const mod = await import(path.join(root, pkg.exports["."].default));
  assert.equal(typeof mod.Client, "function");
});

test("npm pack holds exactly the library", () => {
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const out = execFileSync(npm, ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
  const [info] = JSON.parse(out);
  const files = info.files.map((f) => f.path).sort();
  const src = fs.readdirSync(path.join(root, "src")).map((f) => `src/${f}`);
  assert.deepEqual(files, ["README.md", "index.d.ts", "index.js", "package.json", ...src].sort());
  // Every module the entry point reaches is in the package.
  for (const f of src) assert.ok(fs.readFileSync(path.join(root, f), "utf8").length > 0);
});
