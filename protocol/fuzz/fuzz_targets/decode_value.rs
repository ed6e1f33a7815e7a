//! Untrusted bytes and text into the value decoders: never a panic (nor
//! unbounded recursion or allocation); whatever decodes is within every
//! bound of its form and survives a re-encode and decode unchanged, in
//! both forms when it fits both.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickforge_protocol::value::{Value, MAX_SIZE};

fn round_trips(v: &Value) {
    let mut bin = Vec::new();
    v.write_bin(&mut bin);
    assert_eq!(bin.len(), v.bin_len());
    let mut json = Vec::new();
    v.write_json(&mut json);
    assert_eq!(json.len(), v.json_len());
    if v.check().is_ok() {
        assert_eq!(Value::from_bin(&bin).as_ref(), Ok(v));
        assert_eq!(Value::from_json(&json).as_ref(), Ok(v));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = Value::from_bin(data) {
        assert!(v.bin_len() <= MAX_SIZE);
        assert!(v.bin_len() <= data.len(), "the canonical form is never longer than what was read");
        round_trips(&v);
    }
    if let Ok(v) = Value::from_json(data) {
        assert!(v.json_len() <= MAX_SIZE);
        round_trips(&v);
    }
});
