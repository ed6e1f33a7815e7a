//! PROTOCOL.md's own examples, read from the document: every code-block
//! line of hex bytes followed by a line of JSON is one message in both
//! forms, and every row of the values table one value in both forms. Each
//! pair must decode to the same message (or value), and re-encode to
//! exactly the text and bytes printed, so that a client written from the
//! document alone reads what the server writes. (`golden.rs` pins the same
//! examples from the Rust side, with the lines the document annotates.)

use tickforge_protocol::codec::{self, Format, DEFAULT_MAX_MESSAGE};
use tickforge_protocol::input::InputSchema;
use tickforge_protocol::message::{ClientMsg, InputData, ServerMsg};
use tickforge_protocol::schema::FieldType;
use tickforge_protocol::value::Value;

const DOC: &str = include_str!("../../PROTOCOL.md");

/// The bytes of a line of hex pairs and quoted text (`06 "s3cret"`), or
/// `None` for a line that is anything else (annotated, elided).
fn hex_line(line: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut chars = line.trim().chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '"' => {
                let mut text = String::new();
                loop {
                    match chars.next()? {
                        '"' => break,
                        c => text.push(c),
                    }
                }
                out.extend_from_slice(text.as_bytes());
            }
            c if c.is_ascii_hexdigit() => {
                let d = chars.next().filter(char::is_ascii_hexdigit)?;
                if chars.peek().is_some_and(|c| *c != ' ') {
                    return None;
                }
                out.push(u8::from_str_radix(&format!("{c}{d}"), 16).ok()?);
                any = true;
            }
            _ => return None,
        }
    }
    any.then_some(out)
}

/// The input schemas the document's inputs use.
fn input_schemas() -> Vec<InputSchema> {
    vec![
        InputData::schema().clone(),
        InputSchema::new([
            ("steer", FieldType::I16),
            ("throttle", FieldType::U8),
            ("aim", FieldType::Fixed(100)),
            ("item", FieldType::U16),
        ]),
    ]
}

/// Checks one message pair; returns whether it was checked (ticks carry a
/// state that differs by form and are left to golden.rs).
#[track_caller]
fn check_message(bin: &[u8], json: &str) -> bool {
    let mut out = Vec::new();
    if let Ok(msg) = codec::decode_client(Format::Json, json.as_bytes(), DEFAULT_MAX_MESSAGE) {
        codec::encode_client(Format::Json, &msg, &mut out).unwrap();
        assert_eq!(std::str::from_utf8(&out).unwrap(), json, "JSON re-encoding");
        let from_bin = codec::decode_client(Format::Bin, bin, DEFAULT_MAX_MESSAGE)
            .unwrap_or_else(|e| panic!("{json}: bytes do not decode: {e}"));
        out.clear();
        codec::encode_client(Format::Bin, &from_bin, &mut out).unwrap();
        assert_eq!(out, bin, "{json}: binary re-encoding");
        match (&msg, &from_bin) {
            (ClientMsg::Input { seq, ack, data }, ClientMsg::Input { seq: s, ack: a, data: d }) => {
                assert_eq!((seq, ack), (s, a), "{json}");
                let schema = input_schemas()
                    .into_iter()
                    .find(|schema| schema.decode(data).is_ok())
                    .unwrap_or_else(|| panic!("{json}: no schema reads the data"));
                assert_eq!(schema.decode(data), schema.decode(d), "{json}: the two forms' data differ");
            }
            _ => assert_eq!(msg, from_bin, "{json}: the two forms differ"),
        }
        return true;
    }
    let msg = codec::decode_server(Format::Json, json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
    if matches!(msg, ServerMsg::Tick(_)) {
        return false;
    }
    codec::encode_server(Format::Json, &msg, &mut out);
    assert_eq!(std::str::from_utf8(&out).unwrap(), json, "JSON re-encoding");
    out.clear();
    codec::encode_server(Format::Bin, &msg, &mut out);
    assert_eq!(out, bin, "{json}: binary encoding");
    assert_eq!(codec::decode_server(Format::Bin, bin), Ok(msg), "{json}: binary decoding");
    true
}

#[test]
fn every_message_example_of_the_document_holds() {
    let mut checked = 0;
    let mut in_block = false;
    let mut previous: Option<Vec<u8>> = None;
    for line in DOC.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            previous = None;
            continue;
        }
        if !in_block {
            continue;
        }
        if line.starts_with("{\"type\":") {
            if let Some(bin) = previous.take() {
                checked += usize::from(check_message(&bin, line));
            }
            continue;
        }
        previous = hex_line(line);
    }
    // Section 5's examples, less the ticks and the annotated `joined` and
    // `watching`, plus section 10's inputs.
    assert!(checked >= 40, "only {checked} examples found: has the document's layout changed?");
}

#[test]
fn every_value_of_the_table_holds() {
    let mut checked = 0;
    for line in DOC.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | value | `binary` | `json` |
        let [_, _, bin, json, _] = cells[..] else { continue };
        let (Some(bin), Some(json)) = (bin.strip_prefix('`'), json.strip_prefix('`')) else { continue };
        let (Some(bin), Some(json)) = (bin.strip_suffix('`').and_then(hex_line), json.strip_suffix('`')) else {
            continue;
        };
        let value = Value::from_bin(&bin).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(Value::from_json(json.as_bytes()).as_ref(), Ok(&value), "{json}");
        let mut out = Vec::new();
        value.write_json(&mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), json);
        out.clear();
        value.write_bin(&mut out);
        assert_eq!(out, bin, "{json}");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} values found");
}
