// index.d.ts is hand-written: TypeScript checks it, and a usage of the
// API against it (test/types/usage.ts), with the strictest settings.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

test("index.d.ts type-checks, and so does a game's use of it", () => {
  const tsc = path.join(root, "node_modules/typescript/bin/tsc");
  const args = [tsc, "--noEmit", "--strict", "--exactOptionalPropertyTypes", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2022,dom", "--skipLibCheck", "false", "index.d.ts", "test/types/usage.ts"];
  let out = "";
  try {
    out = execFileSync(process.execPath, args, { cwd: root, encoding: "utf8" });
  } catch (e) {
    assert.fail(`tsc failed:\n${e.stdout}${e.stderr}`);
  }
  assert.equal(out.trim(), "");
});
