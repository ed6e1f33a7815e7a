// Loads the cross-language corpus written by the Rust test
// server/tests/it/js_corpus.rs (`scripts/js-test.sh` runs it first).

import fs from "node:fs";
import { Snapshot } from "../index.js";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Where the corpus is: $TICKFORGE_CORPUS_DIR, else the workspace's target/tmp/js-corpus. */
export function corpusPath() {
  const dir = process.env.TICKFORGE_CORPUS_DIR ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(here, "../../../target"), "tmp/js-corpus");
  return path.join(dir, "corpus.json");
}

/** The corpus, or an error saying how to write it. */
export function loadCorpus() {
  const file = corpusPath();
  if (!fs.existsSync(file)) {
    throw new Error(
      `no corpus at ${file}: write it with \`cargo test -p tickforge-server --test it js_corpus\` ` +
        "(scripts/js-test.sh does), or point TICKFORGE_CORPUS_DIR at it",
    );
  }
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

/** Bytes from hex. */
export function unhex(h) {
  return Uint8Array.from(Buffer.from(h, "hex"));
}

/** Hex from bytes. */
export function hex(b) {
  return Buffer.from(b).toString("hex");
}

/** A snapshot of rows `[id, kind, ...quantized values]` (the corpus's form). */
export function snapshotOf(schema, tick, rows) {
  return Snapshot.fromRows(schema, tick, rows);
}
