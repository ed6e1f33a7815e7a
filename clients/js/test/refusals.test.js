// What the library refuses, and how: the cases the Rust unit tests pin
// (protocol/src/delta/bin.rs, json.rs, value.rs, input.rs, varint.rs),
// each with the same kind of error, and the baseline never touched.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DecodeError,
  DeltaError,
  Float,
  InputError,
  ValueError,
  applyBin,
  applyJson,
  compileSchema,
  decodeServer,
  decodeValueBin,
  encodeValueBin,
  float,
  formatFloat,
  parseJson,
  quantize,
  quantizeInput,
  stepPerTick,
  valueFromJson,
  writeValueJson,
} from "../index.js";
import { snapshotOf } from "./corpus.js";

const mover = compileSchema({
  kinds: ["mover"],
  fields: [
    { name: "x", type: { fixed: 16 }, integrates: 1 },
    { name: "vx", type: { fixed: 16 } },
    { name: "hp", type: "u8" },
  ],
});

const bytes = (...b) => Uint8Array.from(b);

test("a straight mover costs nothing and is rebuilt by dead reckoning", () => {
  const a = snapshotOf(mover, 10, [[1, 0, 0, 3200, 100]]);
  const b = applyBin(mover, 30, a, 12, bytes(0, 0, 0));
  assert.deepEqual(b.rows(), [[1, 0, 2 * stepPerTick(3200, 30), 3200, 100]]);
  assert.deepEqual(a.rows(), [[1, 0, 0, 3200, 100]], "the baseline is untouched");
});

test("the literal bytes of a small delta apply", () => {
  const a = snapshotOf(mover, 1, [
    [1, 0, 0, 0, 100],
    [3, 0, 0, 0, 100],
  ]);
  // removed [3]; updated id 1, mask hp, residual -10; spawned id 5: x 16, vx -16, hp 100
  const b = applyBin(mover, 30, a, 2, bytes(1, 3, 1, 1, 0b100, 19, 1, 5, 0, 32, 31, 100));
  assert.deepEqual(b.rows(), [
    [1, 0, 0, 0, 90],
    [5, 0, 16, -16, 100],
  ]);
  assert.equal(b.get(5).x, 1);
  assert.equal(b.get(5).vx, -1);
});

test("bad blobs are refused with the Rust error kinds", () => {
  const a = snapshotOf(mover, 1, [[1, 0, 0, 0, 100]]);
  const cases = [
    [[1, 2, 0, 0], "unknown_entity"],
    [[0, 1, 9, 1, 0, 0], "unknown_entity"],
    [[0, 1, 1, 0b1000, 0, 0], "unknown_field"],
    [[0, 0, 1, 1, 0, 0, 0, 1], "duplicate_entity"],
    [[0, 0, 0, 7], "trailing_bytes"],
    [[0, 0, 200, 1], "truncated"],
    [[0x80], "truncated"],
    [[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], "bad_varint"],
    [[0xff, 0xff, 0xff, 0xff, 0x1f], "bad_varint"],
    [[2, 1, 0], "unordered_ids"],
    [[0, 0, 1, 2, 7, 0, 0, 0], "unknown_kind"],
    [[0, 1, 1, 0b100, 0x90, 0x03, 0], "bad_value"],
    [[0x81, 0x80, 0x04], "too_many_entities"],
  ];
  for (const [blob, kind] of cases) {
    assert.throws(() => applyBin(mover, 30, a, 2, Uint8Array.from(blob)), (e) => e instanceof DeltaError && e.kind === kind, `${blob}`);
  }
  // A u8 value over its range in a spawn.
  assert.throws(() => applyBin(mover, 30, null, 2, bytes(0, 0, 1, 1, 0, 0, 0, 0x80, 0x02)), (e) => e.kind === "bad_value");
  assert.deepEqual(a.rows(), [[1, 0, 0, 0, 100]]);
});

const small = compileSchema({ kinds: ["player", "npc"], fields: [{ name: "x", type: { fixed: 16 } }, { name: "hp", type: "u8" }] });

test("JSON states: literal text applies; bad ones are refused", () => {
  const a = applyJson(small, null, 1, parseJson('{"spawned":[{"id":4,"kind":"player","x":10.5,"hp":100},{"id":9,"kind":"npc","x":0.0,"hp":0}],"updated":[],"removed":[]}'));
  assert.deepEqual(a.rows(), [
    [4, 0, 168, 100],
    [9, 1, 0, 0],
  ]);
  const b = applyJson(small, a, 2, parseJson('{"spawned":[],"updated":[{"id":4,"x":11.0}],"removed":[9]}'));
  assert.deepEqual(b.rows(), [[4, 0, 176, 100]]);
  const cases = [
    ['{"spawned":[{"id":1,"kind":"player","x":1.0}]}', "missing_fields"],
    ['{"updated":[{"id":4,"z":1}]}', "unknown_field"],
    ['{"updated":[{"id":4,"hp":300}]}', "bad_value"],
    ['{"updated":[{"id":4,"hp":5.0}]}', "bad_value"],
    ['{"spawned":[{"id":1,"kind":"tank","x":1.0,"hp":1}]}', "unknown_kind"],
    ['{"spawned":5}', "json"],
    ['{"spawned":[],"extra":[]}', "json"],
    ['{"removed":[5]}', "unknown_entity"],
    ['{"removed":[9,4]}', "unordered_ids"],
    ['{"spawned":[{"id":4,"kind":"npc","x":1.0,"hp":1}]}', "duplicate_entity"],
    ['{"removed":[4],"updated":[{"id":4,"hp":1}]}', "unknown_entity"],
  ];
  for (const [text, kind] of cases) {
    assert.throws(() => applyJson(small, a, 2, parseJson(text)), (e) => e instanceof DeltaError && e.kind === kind, text);
  }
  // A kind change: removed and spawned with the same id.
  const c = applyJson(small, a, 2, parseJson('{"spawned":[{"id":9,"kind":"player","x":2.0,"hp":5}],"updated":[],"removed":[9]}'));
  assert.deepEqual(c.rows(), [
    [4, 0, 168, 100],
    [9, 0, 32, 5],
  ]);
});

test("quantization rounds half away from zero and saturates, as Rust's", () => {
  assert.equal(quantize({ fixed: 16 }, 10.5), 168);
  assert.equal(quantize({ fixed: 2 }, -0.25), -1);
  assert.equal(quantize({ fixed: 2 }, 0.25), 1);
  assert.equal(quantize("u8", 300), 255);
  assert.equal(quantize("u8", -3), 0);
  assert.equal(quantize("i32", NaN), 0);
  assert.equal(stepPerTick(3200, 30), 107);
  assert.equal(stepPerTick(-3200, 30), -107);
  assert.equal(stepPerTick(15, 30), 1);
  assert.equal(stepPerTick(-15, 30), -1);
  assert.equal(stepPerTick(14, 30), 0);
  assert.equal(stepPerTick(5, 0), 5);
});

test("floats are written as serde_json writes them", () => {
  const cases = [
    [0, "0.0"],
    [-0, "-0.0"],
    [2, "2.0"],
    [10.75, "10.75"],
    [0.1, "0.1"],
    [1e15, "1000000000000000.0"],
    [1e16, "1e+16"],
    [1.5e300, "1.5e+300"],
    [1e-5, "0.00001"],
    [1e-6, "1e-6"],
    [1.25e-7, "1.25e-7"],
    [123456789.125, "123456789.125"],
    [5e-324, "5e-324"],
    [-3.25, "-3.25"],
  ];
  for (const [v, text] of cases) assert.equal(formatFloat(v), text, String(v));
});

function nested(levels) {
  let v = null;
  for (let i = 0; i < levels; i++) v = [v];
  return v;
}

test("value bounds are enforced at their edges, in both forms", () => {
  assert.deepEqual(decodeValueBin(encodeValueBin(nested(8))), nested(8));
  assert.throws(() => decodeValueBin(encodeValueBin(nested(9))), (e) => e instanceof ValueError && e.kind === "too_deep");
  assert.throws(() => valueFromJson(parseJson(`${"[".repeat(9)}${"]".repeat(9)}`)), (e) => e.kind === "too_deep");
  // Bytes in JSON are an object but no level.
  valueFromJson(parseJson(`${"[".repeat(8)}{"$bytes":"AA=="}${"]".repeat(8)}`));
  assert.throws(() => valueFromJson("x".repeat(1025)), (e) => e.kind === "string_too_long");
  valueFromJson("x".repeat(1024));
  // 4096 bytes of binary: tag + fb + u16 length + 4092 bytes.
  const at = new Uint8Array(4092);
  assert.equal(encodeValueBin(at).length, 4096);
  assert.deepEqual(decodeValueBin(encodeValueBin(at)), at);
  assert.throws(() => decodeValueBin(encodeValueBin(new Uint8Array(4093))), (e) => e.kind === "too_large");
  assert.throws(() => encodeValueBin(NaN), (e) => e.kind === "non_finite");
  assert.throws(() => decodeValueBin(Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f])), (e) => e.kind === "non_finite");
  assert.throws(() => valueFromJson(parseJson('{"$bytes":"AA==","b":1}')), (e) => e.kind === "reserved_key");
  assert.throws(() => valueFromJson(parseJson('{"$bytes":5}')), (e) => e.kind === "reserved_key");
  assert.throws(() => valueFromJson(parseJson('{"$bytes":"A"}')), (e) => e.kind === "bad_base64");
  assert.throws(() => valueFromJson(parseJson('{"$bytes":"AB=="}')), (e) => e.kind === "bad_base64", "non-zero trailing bits");
  assert.throws(() => decodeValueBin(Uint8Array.from([7, 1, 6, ...Buffer.from("$bytes"), 0])), (e) => e.kind === "reserved_key");
  // A forged length allocates nothing.
  assert.throws(() => decodeValueBin(Uint8Array.from([6, 0xfd, 255, 255, 255, 255, 255, 255, 255, 255])), (e) => e.kind === "too_large");
  assert.throws(() => decodeValueBin(Uint8Array.from([0, 0])), (e) => e.kind === "malformed");
  assert.throws(() => decodeValueBin(Uint8Array.from([8])), (e) => e.kind === "malformed");
});

test("values keep their types: 1 is not 1.0, big integers stay exact", () => {
  assert.equal(writeValueJson(valueFromJson(parseJson("1"))), "1");
  assert.equal(writeValueJson(valueFromJson(parseJson("1.0"))), "1.0");
  assert.ok(valueFromJson(parseJson("1.0")) instanceof Float);
  assert.equal(writeValueJson(float(2)), "2.0");
  assert.equal(writeValueJson(9007199254740993n), "9007199254740993");
  assert.equal(valueFromJson(parseJson("9223372036854775807")), 9223372036854775807n);
  // Past i64: the nearest float, as serde_json reads it.
  assert.equal(writeValueJson(valueFromJson(parseJson("18446744073709551615"))), "1.8446744073709552e+19");
  assert.equal(writeValueJson({ b: null, a: [] }), '{"a":[],"b":null}');
  assert.equal(writeValueJson({ é: 1, z: 2, "\u{1f600}": 3, "\ufffd": 4 }), '{"z":2,"é":1,"\ufffd":4,"\u{1f600}":3}');
  assert.equal(writeValueJson(Uint8Array.from([0xff])), '{"$bytes":"/w=="}');
});

test("the JSON parser refuses what serde_json refuses", () => {
  for (const text of ["01", "1.", ".5", "[1,]", '{"a":1,}', '"\\ud800"', '"\\x"', "[1] 2", "nul", '"a\nb"', "1e400", "-"]) {
    assert.throws(() => parseJson(text), DecodeError, text);
  }
  assert.deepEqual(parseJson(' {"a" : [1, 2.5, "\\u00e9\\ud83d\\ude00"]} '), { a: [1, 2.5, "é😀"] });
});

test("input values are checked against the input schema", () => {
  const schema = {
    fields: [
      { name: "steer", type: "i16" },
      { name: "throttle", type: "u8" },
      { name: "aim", type: { fixed: 100 } },
    ],
  };
  assert.deepEqual(quantizeInput(schema, { steer: -300, throttle: 255, aim: 1.57 }), [-300, 255, 157]);
  const cases = [
    [{ steer: 1, throttle: 256, aim: 0 }, "out_of_range", "throttle"],
    [{ steer: 1.5, throttle: 2, aim: 0 }, "wrong_type", "steer"],
    [{ steer: "1", throttle: 2, aim: 0 }, "wrong_type", "steer"],
    [{ steer: 1, throttle: 2 }, "missing", "aim"],
    [{ steer: 1, throttle: 2, aim: 3e10 }, "out_of_range", "aim"],
    [{ steer: 1, throttle: 2, aim: 0, jump: 1 }, "unknown_field", "jump"],
  ];
  for (const [values, kind, field] of cases) {
    assert.throws(() => quantizeInput(schema, values), (e) => e instanceof InputError && e.kind === kind && e.field === field, JSON.stringify(values));
  }
});

test("server messages that do not decode are refused with a DecodeError", () => {
  const cases = [
    [3, 1, 0, 0, 0], // a tick whose state length is missing
    [3, 1, 0, 0, 0, 5, 1], // a state shorter than its length
    [0, 1, 9], // an unknown confirmation
    [4], // an unknown message
    [2, 2], // room_closing whose reason is missing
    [0, 1, 0, 1, 0xff, 0, 0], // invalid UTF-8
    [0, 1, 0, 0, 0, 2, 0], // Option tag 2
    [1, 1, 11, 0], // reject code 11
    [3, 0xfd, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0], // tick past 2^53
    [2, 4, 4, 0], // trailing bytes
  ];
  for (const c of cases) assert.throws(() => decodeServer("bin", Uint8Array.from(c)), DecodeError, `${c}`);
  for (const text of ['{"type":"cfm","id":1}', '{"type":"tick","tick":1.0,"server_time_us":0,"baseline":null,"input_seq":0,"state":{}}', '{"type":"nope"}', "[]", '{"type":"ind","body":{"type":"player_left","player_id":-1,"reason":""}}']) {
    assert.throws(() => decodeServer("json", text), DecodeError, text);
  }
  // Unknown keys in messages are ignored (PROTOCOL.md section 3).
  assert.deepEqual(decodeServer("json", '{"type":"ind","extra":1,"body":{"type":"room_closing","reason":"x","more":[]}}'), {
    type: "ind",
    body: { type: "room_closing", reason: "x" },
  });
});
