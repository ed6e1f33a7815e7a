//! A script of peers and network events against one shard's real
//! connections, requests and rooms on a virtual clock: hostile peers send
//! any bytes, model clients (a `ClientSession`) play, sockets take any part
//! of what waits, time passes, peers hang up. Never a panic; every byte
//! sent parses as server frames of the right type and every message
//! decodes; a model's rebuilt state is the room's at every tick it applies;
//! what waits for a socket stays bounded (see `fuzzing::run_script`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickforge_server::fuzzing::check("connection", data));
