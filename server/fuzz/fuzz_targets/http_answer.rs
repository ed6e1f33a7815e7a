//! Untrusted bytes as a socket's first bytes, answered by a real shard's
//! routes (the page, /healthz, /metrics, /rooms, every refusal, the
//! upgrade): never a panic, and every answer is one whole HTTP/1.1
//! response whose Content-Length is its body (see `fuzzing::answer_head`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tickforge_server::fuzzing::answer_head(data);
});
