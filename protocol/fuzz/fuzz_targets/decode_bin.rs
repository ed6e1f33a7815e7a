//! Untrusted bytes into the `tickforge.v1.bin` decoders: never a panic, and
//! whatever decodes survives a re-encode and decode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickforge_protocol::codec::{self, Format, DEFAULT_MAX_MESSAGE};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = codec::decode_client(Format::Bin, data, DEFAULT_MAX_MESSAGE) {
        let mut out = Vec::new();
        codec::encode_client(Format::Bin, &msg, &mut out);
        assert_eq!(codec::decode_client(Format::Bin, &out, usize::MAX), Ok(msg));
    }
    if let Ok(msg) = codec::decode_server(Format::Bin, data) {
        let mut out = Vec::new();
        codec::encode_server(Format::Bin, &msg, &mut out);
        assert_eq!(codec::decode_server(Format::Bin, &out), Ok(msg));
    }
});
