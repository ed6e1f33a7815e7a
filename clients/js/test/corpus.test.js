// The cross-language truth: every message and value the Rust codec wrote
// (server/tests/it/js_corpus.rs) decodes here and is written back to the
// same bytes and text in both forms; every tick an arena room sent a
// binary and a JSON client, through random loss of ticks, inputs and acks,
// rebuilds the same state as the Rust ClientSession, with the same
// baselines kept, and the clients' inputs and acks are the same bytes.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  StateStore,
  compileSchema,
  decodeClient,
  decodeServer,
  decodeValueBin,
  encodeClient,
  encodeServer,
  encodeValueBin,
  inputData,
  parseJson,
  readInputBin,
  readInputJson,
  valueEquals,
  valueFromJson,
  writeValueJson,
} from "../index.js";
import { hex, loadCorpus, snapshotOf, unhex } from "./corpus.js";

const corpus = loadCorpus();

test("every message of the corpus, in both forms", () => {
  let n = 0;
  for (const m of corpus.messages) {
    const bin = unhex(m.bin);
    if (m.dir === "server") {
      const fromBin = decodeServer("bin", bin);
      assert.equal(hex(encodeServer("bin", fromBin)), m.bin, m.json);
      assert.equal(encodeServer("json", fromBin), m.json, `bin -> json: ${m.json}`);
      const fromJson = decodeServer("json", m.json);
      assert.equal(encodeServer("json", fromJson), m.json);
      assert.equal(hex(encodeServer("bin", fromJson)), m.bin, `json -> bin: ${m.json}`);
    } else if (m.input) {
      const { schema, seq, ack, values } = m.input;
      for (const [format, expected] of [
        ["bin", m.bin],
        ["json", m.json],
      ]) {
        const msg = { type: "input", seq, data: inputData(format, schema, values) };
        if (ack !== null) msg.ack = ack;
        const out = encodeClient(format, msg);
        assert.equal(format === "bin" ? hex(out) : out, expected, `input in ${format}: ${m.json}`);
      }
      assert.deepEqual(readInputBin(schema, decodeClient("bin", bin).data), values);
      assert.deepEqual(readInputJson(schema, decodeClient("json", m.json).data), values);
    } else {
      const fromBin = decodeClient("bin", bin);
      assert.equal(hex(encodeClient("bin", fromBin)), m.bin, m.json);
      assert.equal(encodeClient("json", fromBin), m.json, `bin -> json: ${m.json}`);
      const fromJson = decodeClient("json", m.json);
      assert.equal(hex(encodeClient("bin", fromJson)), m.bin, `json -> bin: ${m.json}`);
    }
    n += 1;
  }
  assert.ok(n >= 300, `${n} messages`);
});

test("every value of the corpus, in both forms", () => {
  for (const v of corpus.values) {
    const fromBin = decodeValueBin(unhex(v.bin));
    assert.equal(writeValueJson(fromBin), v.json);
    assert.equal(hex(encodeValueBin(fromBin)), v.bin, v.json);
    const fromJson = valueFromJson(parseJson(v.json));
    assert.equal(hex(encodeValueBin(fromJson)), v.bin, v.json);
    assert.ok(valueEquals(fromJson, fromBin), v.json);
  }
  assert.ok(corpus.values.length >= 300);
});

const STICK = { fields: [{ name: "move_x", type: "i8" }, { name: "move_y", type: "i8" }, { name: "buttons", type: "u8" }] };

for (const session of corpus.sessions) {
  const format = session.format === "tickforge.v1.bin" ? "bin" : "json";
  test(`an arena room's ticks through loss, ${session.format}: the same states, baselines, inputs and acks`, () => {
    const frame = (s) => (format === "bin" ? unhex(s) : s);
    const joined = decodeServer(format, frame(session.joined)).body;
    assert.equal(joined.type, "joined");
    const store = new StateStore({ schema: joined.schema, tickHz: joined.tick_hz, format });
    let seq = 0;
    let ticks = 0;
    let sent = 0;
    let deltas = 0;
    for (const step of session.steps) {
      if (step.send !== undefined) {
        const msg = step.input
          ? { type: "input", seq: ++seq, data: inputData(format, STICK, step.input) }
          : { type: "ack", tick: store.tick };
        if (step.input && store.tick !== null) msg.ack = store.tick;
        const out = encodeClient(format, msg);
        assert.equal(format === "bin" ? hex(out) : out, step.send, `client message after tick ${store.tick}`);
        sent += 1;
        continue;
      }
      const msg = decodeServer(format, frame(step.recv));
      if (step.tick === undefined) {
        assert.notEqual(msg.type, "tick");
        continue;
      }
      assert.equal(msg.type, "tick");
      const snap = store.apply(msg, msg.state);
      assert.equal(snap.tick, step.tick);
      assert.deepEqual(snap.rows(), step.state, `state at tick ${step.tick}`);
      assert.deepEqual(store.baselineTicks(), step.baselines, `baselines kept at tick ${step.tick}`);
      ticks += 1;
      if (msg.baseline !== null) deltas += 1;
    }
    assert.ok(ticks >= 250 && sent >= 250, `${ticks} ticks, ${sent} client messages`);
    assert.ok(deltas > ticks / 2, `${deltas} of ${ticks} ticks were deltas`);
  });
}

test("the benchmark's tick applies in both forms to the same state", () => {
  const b = corpus.bench;
  const schema = compileSchema(b.schema);
  for (const format of ["bin", "json"]) {
    const store = new StateStore({ schema, tickHz: b.tick_hz, format });
    // The baseline, as a full state of the same rows.
    store.baselines.push(snapshotOf(schema, b.base_tick, b.base));
    const msg = decodeServer(format, format === "bin" ? unhex(b.bin) : b.json);
    assert.deepEqual(store.apply(msg, msg.state).rows(), b.state, format);
  }
});
