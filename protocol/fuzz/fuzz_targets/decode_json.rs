//! Untrusted text into the `tickforge.v1.json` decoders: never a panic, and
//! whatever decodes survives a re-encode and decode unchanged; an input's
//! data read with a schema is in range and survives its own round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickforge_protocol::codec::{self, Format, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::message::{ClientMsg, InputData};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = codec::decode_client(Format::Json, data, DEFAULT_MAX_MESSAGE) {
        let mut out = Vec::new();
        codec::encode_client(Format::Json, &msg, &mut out).expect("decoded JSON data is held as JSON");
        assert_eq!(codec::decode_client(Format::Json, &out, usize::MAX), Ok(msg.clone()));
        if let ClientMsg::Input { data, .. } = &msg {
            let schema = InputData::schema();
            if let Ok(values) = schema.decode(data) {
                assert_eq!(schema.check(&values), Ok(()));
                let again = schema.encode(Format::Json, &values).expect("in range");
                assert_eq!(schema.decode(&again), Ok(values));
            }
        }
    }
    if let Ok(msg) = codec::decode_server(Format::Json, data) {
        let mut out = Vec::new();
        codec::encode_server(Format::Json, &msg, &mut out);
        assert_eq!(codec::decode_server(Format::Json, &out), Ok(msg));
    }
    let _ = tickforge_protocol::delta::json::read(&tickforge_protocol::testutil::schema(), data);
});
