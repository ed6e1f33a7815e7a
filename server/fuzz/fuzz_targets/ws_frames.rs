//! Untrusted bytes as client WebSocket frames through `ws::Wire` and
//! tungstenite's server `WebSocketContext`, as a connection reads them:
//! never a panic; read whole or in pieces they give the same messages and
//! the same error, none over the message limit (see `fuzzing::check_frames`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickforge_server::fuzzing::check_frames(data));
