//! Untrusted bytes as client WebSocket frames through `ws::Wire` and
//! tungstenite's server `WebSocketContext`: never a panic; read whole or in
//! pieces, by tungstenite alone and as a connection reads them (whole small
//! data frames straight from the wire, `Wire::take_simple_frame`, the rest
//! through tungstenite), they give the same messages and the same error,
//! none over the message limit (see `fuzzing::check_frames`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| tickforge_server::fuzzing::check_frames(data));
