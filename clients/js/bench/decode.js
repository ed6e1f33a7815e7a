// What decoding a tick costs a JavaScript client: the message decoded and
// its state applied to the baseline, in both forms, on
//   - the arena ticks of the corpus's sessions (a real room: 6 players, 16
//     NPCs and their projectiles, through loss), every delta tick in turn;
//   - the criterion delta bench's input (32 entities, testutil::evolve),
//     the same bytes `benches/benches/delta.rs` and `codec.rs` time in Rust.
//
//   node bench/decode.js [--ms 400] [--samples 7]
//
// Needs the corpus (`cargo test -p tickforge-server --test it js_corpus`).
// Prints a Markdown table: the median of the samples, and their range.

import { StateStore, applyBin, applyJson, compileSchema, decodeServer } from "../index.js";
import { loadCorpus, snapshotOf, unhex } from "../test/corpus.js";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const MS = opt("--ms", 400);
const SAMPLES = opt("--samples", 7);

const corpus = loadCorpus();

/** The delta ticks of a session with their baselines, replayed through a store. */
function sessionTicks(session) {
  const format = session.format === "tickforge.v1.bin" ? "bin" : "json";
  const frame = (s) => (format === "bin" ? unhex(s) : s);
  const joined = decodeServer(format, frame(session.joined)).body;
  const schema = compileSchema(joined.schema);
  const store = new StateStore({ schema, tickHz: joined.tick_hz, format });
  const ticks = [];
  let bytes = 0;
  for (const step of session.steps) {
    if (step.tick === undefined) continue;
    const data = frame(step.recv);
    const msg = decodeServer(format, data);
    if (msg.baseline !== null) {
      ticks.push({ data, base: store.baselines.find((s) => s.tick === msg.baseline) });
      bytes += format === "bin" ? data.length : Buffer.byteLength(data);
    }
    store.apply(msg, msg.state);
  }
  return { format, schema, tickHz: joined.tick_hz, ticks, meanBytes: bytes / ticks.length };
}

/** ns per call of `fn(i)` over `n` inputs: median and range of the samples. */
function measure(fn, n) {
  const run = (iterations) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) fn(i % n);
    return Number(process.hrtime.bigint() - t0);
  };
  // Warm up (and let the JIT settle), then size a sample to ~MS.
  let iterations = n;
  while (run(iterations) < 50e6) iterations *= 2;
  const perCall = run(iterations) / iterations;
  iterations = Math.max(n, Math.round((MS * 1e6) / perCall));
  const samples = [];
  for (let s = 0; s < SAMPLES; s++) samples.push(run(iterations) / iterations);
  samples.sort((a, b) => a - b);
  return { median: samples[samples.length >> 1], low: samples[0], high: samples[samples.length - 1] };
}

const fmt = ({ median, low, high }) => {
  const unit = (v) => (v >= 1000 ? `${(v / 1000).toFixed(2)} µs` : `${v.toFixed(0)} ns`);
  return `${unit(median)} [${unit(low)}, ${unit(high)}]`;
};

const rows = [];
for (const session of corpus.sessions) {
  const s = sessionTicks(session);
  const decode = measure((i) => decodeServer(s.format, s.ticks[i].data), s.ticks.length);
  const both = measure((i) => {
    const t = s.ticks[i];
    const msg = decodeServer(s.format, t.data);
    return s.format === "bin" ? applyBin(s.schema, s.tickHz, t.base, msg.tick, msg.state) : applyJson(s.schema, t.base, msg.tick, msg.state);
  }, s.ticks.length);
  const entities = s.ticks.reduce((n, t) => n + t.base.size, 0) / s.ticks.length;
  rows.push([`arena room, ${s.ticks.length} delta ticks (~${entities.toFixed(0)} entities)`, s.format, s.meanBytes.toFixed(0), fmt(decode), fmt(both)]);
}

const b = corpus.bench;
const schema = compileSchema(b.schema);
const base = snapshotOf(schema, b.base_tick, b.base);
for (const format of ["bin", "json"]) {
  const data = format === "bin" ? unhex(b.bin) : b.json;
  const decode = measure(() => decodeServer(format, data), 1);
  const both = measure(() => {
    const msg = decodeServer(format, data);
    return format === "bin" ? applyBin(schema, b.tick_hz, base, msg.tick, msg.state) : applyJson(schema, base, msg.tick, msg.state);
  }, 1);
  const size = format === "bin" ? data.length : Buffer.byteLength(data);
  rows.push(["criterion's delta input (32 entities)", format, String(size), fmt(decode), fmt(both)]);
}

console.log(`node ${process.version}, ${SAMPLES} samples of ~${MS} ms each; median [min, max] per tick`);
console.log("");
console.log("| tick | form | bytes | decode message | decode + apply state |");
console.log("| --- | --- | ---: | --- | --- |");
for (const r of rows) console.log(`| ${r.join(" | ")} |`);
