// PROTOCOL.md's own examples, read from the document as the Rust test
// protocol/tests/protocol_md.rs reads them: every code-block line of hex
// bytes followed by a line of JSON is one message in both forms, and every
// row of the values table one value in both forms. The library must decode
// each to the same message and write exactly the printed text and bytes.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  decodeClient,
  decodeServer,
  decodeValueBin,
  encodeClient,
  encodeServer,
  encodeValueBin,
  parseJson,
  readInputBin,
  readInputJson,
  valueEquals,
  valueFromJson,
  writeValueJson,
} from "../index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const doc = fs.readFileSync(path.join(here, "../../../PROTOCOL.md"), "utf8");

/** The bytes of a line of hex pairs and quoted text, or null. */
export function hexLine(line) {
  const out = [];
  let any = false;
  const s = line.trim();
  for (let i = 0; i < s.length; ) {
    const c = s[i];
    if (c === " ") {
      i++;
    } else if (c === '"') {
      const end = s.indexOf('"', i + 1);
      if (end < 0) return null;
      out.push(...new TextEncoder().encode(s.slice(i + 1, end)));
      i = end + 1;
    } else if (/[0-9a-fA-F]/.test(c)) {
      const pair = s.slice(i, i + 2);
      if (!/^[0-9a-fA-F]{2}$/.test(pair) || (i + 2 < s.length && s[i + 2] !== " ")) return null;
      out.push(parseInt(pair, 16));
      any = true;
      i += 2;
    } else return null;
  }
  return any ? Uint8Array.from(out) : null;
}

const hex = (b) => Buffer.from(b).toString("hex");

const SCHEMAS = [
  { fields: [{ name: "move_x", type: "i8" }, { name: "move_y", type: "i8" }, { name: "buttons", type: "u8" }] },
  {
    fields: [
      { name: "steer", type: "i16" },
      { name: "throttle", type: "u8" },
      { name: "aim", type: { fixed: 100 } },
      { name: "item", type: "u16" },
    ],
  },
];

/** Checks one pair; returns whether it was checked (ticks are left to the corpus). */
function checkMessage(bin, json) {
  const top = parseJson(json);
  if (["req", "input", "ack"].includes(top.type)) {
    const msg = decodeClient("json", json);
    assert.equal(encodeClient("json", msg), json, "JSON re-encoding");
    const fromBin = decodeClient("bin", bin);
    assert.equal(hex(encodeClient("bin", fromBin)), hex(bin), `${json}: binary re-encoding`);
    if (msg.type === "input") {
      assert.equal(fromBin.seq, msg.seq);
      assert.equal(fromBin.ack, msg.ack);
      const schema = SCHEMAS.find((s) => {
        try {
          readInputJson(s, msg.data);
          return true;
        } catch {
          return false;
        }
      });
      assert.ok(schema, `${json}: no schema reads the data`);
      assert.deepEqual(readInputBin(schema, fromBin.data), readInputJson(schema, msg.data), `${json}: the forms' data differ`);
    } else {
      assert.equal(encodeClient("json", fromBin), json, `${json}: the two forms differ`);
    }
    return true;
  }
  const msg = decodeServer("json", json);
  if (msg.type === "tick") return false;
  assert.equal(encodeServer("json", msg), json, "JSON re-encoding");
  assert.equal(hex(encodeServer("bin", msg)), hex(bin), `${json}: binary encoding`);
  assert.equal(encodeServer("json", decodeServer("bin", bin)), json, `${json}: binary decoding`);
  return true;
}

test("every message example of PROTOCOL.md holds", () => {
  let checked = 0;
  let inBlock = false;
  let previous = null;
  for (const line of doc.split("\n")) {
    if (line.trimStart().startsWith("```")) {
      inBlock = !inBlock;
      previous = null;
      continue;
    }
    if (!inBlock) continue;
    if (line.startsWith('{"type":')) {
      if (previous) checked += checkMessage(previous, line) ? 1 : 0;
      previous = null;
      continue;
    }
    previous = hexLine(line);
  }
  assert.ok(checked >= 40, `only ${checked} examples found`);
});

test("every value of PROTOCOL.md's table holds", () => {
  let checked = 0;
  for (const line of doc.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    if (cells.length !== 5) continue;
    const [, , b, j] = cells;
    if (!b.startsWith("`") || !b.endsWith("`") || !j.startsWith("`") || !j.endsWith("`")) continue;
    const bin = hexLine(b.slice(1, -1));
    if (!bin) continue;
    const json = j.slice(1, -1);
    const value = decodeValueBin(bin);
    assert.ok(valueEquals(valueFromJson(parseJson(json)), value), json);
    assert.equal(writeValueJson(value), json);
    assert.equal(hex(encodeValueBin(value)), hex(bin), json);
    checked += 1;
  }
  assert.ok(checked >= 12, `only ${checked} values found`);
});
