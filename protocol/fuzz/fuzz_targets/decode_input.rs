//! Untrusted input data read with a fuzzed input schema, in both forms:
//! never a panic; whatever decodes is within the schema and survives an
//! encode and decode unchanged in both forms.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickforge_protocol::codec::{self, Format, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::input::{BinInput, InputSchema, RawInput, MAX_INPUT_BYTES, MAX_INPUT_FIELDS};
use tickforge_protocol::message::ClientMsg;
use tickforge_protocol::schema::FieldType;

fn check(schema: &InputSchema, raw: &RawInput) {
    if let Ok(values) = schema.decode(raw) {
        assert_eq!(schema.check(&values), Ok(()));
        for format in [Format::Bin, Format::Json] {
            let again = schema.encode(format, &values).expect("decoded values are in range");
            assert_eq!(schema.decode(&again), Ok(values), "{format:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // First byte: the field count; then one byte per field for its type;
    // the rest is the data, as binary bytes and as JSON text.
    let Some((&n, rest)) = data.split_first() else { return };
    let n = usize::from(n) % (MAX_INPUT_FIELDS + 1);
    if rest.len() < n {
        return;
    }
    let (types, data) = rest.split_at(n);
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p"];
    let schema = InputSchema::new(types.iter().zip(names).map(|(t, name)| {
        let ty = match t % 7 {
            0 => FieldType::U8,
            1 => FieldType::I8,
            2 => FieldType::U16,
            3 => FieldType::I16,
            4 => FieldType::I32,
            5 => FieldType::Fixed(16),
            _ => FieldType::Fixed(u32::from(*t) * 1000 + 1),
        };
        (name, ty)
    }));
    assert_eq!(schema.validate(), Ok(()));
    if let Some(bin) = BinInput::new(data) {
        check(&schema, &RawInput::Bin(bin));
    } else {
        assert!(data.len() > MAX_INPUT_BYTES);
    }
    let mut text = br#"{"type":"input","seq":1,"data":"#.to_vec();
    text.extend_from_slice(data);
    text.push(b'}');
    if let Ok(ClientMsg::Input { data, .. }) = codec::decode_client(Format::Json, &text, DEFAULT_MAX_MESSAGE) {
        check(&schema, &data);
    }
});
