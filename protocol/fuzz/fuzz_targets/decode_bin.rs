//! Untrusted bytes into the `tickforge.v1.bin` decoders: never a panic, and
//! whatever decodes survives a re-encode and decode unchanged; an input's
//! data read with a schema is in range and survives its own round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickforge_protocol::codec::{self, Format, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::message::{ClientMsg, InputData};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = codec::decode_client(Format::Bin, data, DEFAULT_MAX_MESSAGE) {
        let mut out = Vec::new();
        codec::encode_client(Format::Bin, &msg, &mut out).expect("decoded binary data is held in binary");
        assert_eq!(codec::decode_client(Format::Bin, &out, usize::MAX), Ok(msg.clone()));
        if let ClientMsg::Input { data, .. } = &msg {
            let schema = InputData::schema();
            if let Ok(values) = schema.decode(data) {
                assert_eq!(schema.check(&values), Ok(()));
                let again = schema.encode(Format::Bin, &values).expect("in range");
                assert_eq!(schema.decode(&again), Ok(values));
            }
        }
    }
    if let Ok(msg) = codec::decode_server(Format::Bin, data) {
        let mut out = Vec::new();
        codec::encode_server(Format::Bin, &msg, &mut out);
        assert_eq!(codec::decode_server(Format::Bin, &out), Ok(msg));
    }
});
