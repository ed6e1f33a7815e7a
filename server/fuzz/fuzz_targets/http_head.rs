//! Untrusted bytes as a request head (`http::parse_head`), its header and
//! query helpers and the WebSocket handshake checks: never a panic; a head
//! parses the same from exactly its bytes, within the bounds; an accepted
//! handshake never carries a wrong token (see `fuzzing::check_head`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickforge_server::fuzzing::check_head(data));
