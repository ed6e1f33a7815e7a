//! The two wire forms behind one small API: `tickforge.v1.bin` (bincode 2,
//! standard config) and `tickforge.v1.json` (serde_json).
//!
//! Decoding takes untrusted bytes: it never panics, bounds what a message
//! may make it allocate, and returns a [`DecodeError`] that keeps a
//! request's `id` when it can still be read, so the server can `rej` it.

use crate::error::{DecodeError, EncodeError};
use crate::ids::{InputSeq, RequestId, Tick};
use crate::input::{BinInput, RawInput, MAX_INPUT_BYTES};
use crate::message::{ClientMsg, Request, ServerMsg, StateBytes, TickMsg};
use bincode::config::{self, Configuration, Limit};
use serde::Deserialize;
use serde_json::Value;
use std::io::Write;

/// The size limit of a client message by default (64 KiB).
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// The most bytes one binary decode may claim for its containers (1 MiB):
/// a forged length cannot make the decoder allocate more.
pub const DECODE_ALLOC_LIMIT: usize = 1 << 20;

fn bin_config() -> Configuration<config::LittleEndian, config::Varint, Limit<DECODE_ALLOC_LIMIT>> {
    config::standard().with_limit::<DECODE_ALLOC_LIMIT>()
}

/// A wire form, chosen per connection by subprotocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// `tickforge.v1.bin`: binary frames, bincode 2.
    Bin,
    /// `tickforge.v1.json`: text frames, JSON.
    Json,
}

/// The result of subprotocol negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Negotiation {
    /// The first offered subprotocol the server speaks.
    Chosen(Format),
    /// No subprotocol offered: JSON, and none named in the answer.
    NoneOffered,
    /// Only unknown subprotocols offered: answer 400.
    NoneSupported,
}

impl Format {
    /// Both formats, binary first.
    pub const ALL: [Self; 2] = [Self::Bin, Self::Json];

    /// The subprotocol name.
    #[must_use]
    pub fn subprotocol(self) -> &'static str {
        match self {
            Self::Bin => "tickforge.v1.bin",
            Self::Json => "tickforge.v1.json",
        }
    }

    /// The format a subprotocol name stands for.
    #[must_use]
    pub fn from_subprotocol(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.subprotocol() == name)
    }

    /// Picks the format from the `Sec-WebSocket-Protocol` header values
    /// (each a comma-separated list), in the client's order.
    #[must_use]
    pub fn negotiate<'a>(header_values: impl IntoIterator<Item = &'a str>) -> Negotiation {
        let mut offered = false;
        for name in header_values.into_iter().flat_map(|v| v.split(',')).map(str::trim) {
            if name.is_empty() {
                continue;
            }
            offered = true;
            if let Some(format) = Self::from_subprotocol(name) {
                return Negotiation::Chosen(format);
            }
        }
        if offered {
            Negotiation::NoneSupported
        } else {
            Negotiation::NoneOffered
        }
    }

    /// Whether messages of this format travel in binary frames.
    #[must_use]
    pub fn is_binary(self) -> bool {
        self == Self::Bin
    }
}

/// Appends a client message to `out`.
///
/// In `tickforge.v1.bin` a client message is its variant index (`req` 0,
/// `input` 1, `ack` 2) and its fields; an input's data follows its `ack`
/// as the bytes of its fields and runs to the end of the message.
///
/// # Errors
/// [`EncodeError::InputForm`] for an `input` whose data is held in the
/// other form (`out` is then unchanged).
pub fn encode_client(format: Format, msg: &ClientMsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if let ClientMsg::Input { data, .. } = msg {
        if data.format() != format {
            return Err(EncodeError::InputForm { format, held: data.format() });
        }
    }
    let cfg = config::standard();
    let written = match (format, msg) {
        (Format::Json, _) => {
            serde_json::to_writer(out, msg).expect("client messages of the right form always serialize");
            return Ok(());
        }
        (Format::Bin, ClientMsg::Req { id, body }) => bincode::encode_into_std_write((0u32, id, body), out, cfg),
        (Format::Bin, ClientMsg::Input { seq, ack, data }) => {
            let written = bincode::encode_into_std_write((1u32, seq, ack), out, cfg);
            if let RawInput::Bin(data) = data {
                out.extend_from_slice(data.as_bytes());
            }
            written
        }
        (Format::Bin, ClientMsg::Ack { tick }) => bincode::encode_into_std_write((2u32, tick), out, cfg),
    };
    written.expect("writing to a Vec cannot fail");
    Ok(())
}

/// Decodes a client message of at most `max_size` bytes.
///
/// A binary `input` is decoded without allocating.
///
/// # Errors
/// [`DecodeError::TooLarge`] over `max_size`; [`DecodeError::UnsupportedRequest`]
/// for an unknown request type; [`DecodeError::Malformed`] otherwise
/// (a value past its bounds included: see [`crate::value`]).
pub fn decode_client(format: Format, bytes: &[u8], max_size: usize) -> Result<ClientMsg, DecodeError> {
    if bytes.len() > max_size {
        return Err(DecodeError::TooLarge { size: bytes.len(), max: max_size });
    }
    match format {
        Format::Bin => decode_client_bin(bytes),
        Format::Json => serde_json::from_slice::<ClientMsg>(bytes).map_err(|e| json_failure(bytes, &e.to_string())),
    }
}

fn decode_client_bin(bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
    let failed = |e: bincode::error::DecodeError| bin_failure(bytes, &bin_detail(&e));
    let (variant, head) = bincode::decode_from_slice::<u32, _>(bytes, bin_config()).map_err(failed)?;
    let rest = &bytes[head..];
    let (msg, used) = match variant {
        0 => {
            let ((id, body), used) =
                bincode::decode_from_slice::<(RequestId, Request), _>(rest, bin_config()).map_err(failed)?;
            (ClientMsg::Req { id, body }, used)
        }
        1 => {
            let ((seq, ack), used) =
                bincode::decode_from_slice::<(InputSeq, Option<Tick>), _>(rest, bin_config()).map_err(failed)?;
            let data = &rest[used..];
            let data = BinInput::new(data).ok_or_else(|| DecodeError::Malformed {
                id: None,
                detail: format!("input data of {} bytes is over {MAX_INPUT_BYTES}", data.len()).into(),
            })?;
            return Ok(ClientMsg::Input { seq, ack, data: RawInput::Bin(data) });
        }
        2 => {
            let (tick, used) = bincode::decode_from_slice::<Tick, _>(rest, bin_config()).map_err(failed)?;
            (ClientMsg::Ack { tick }, used)
        }
        n => return Err(DecodeError::Malformed { id: None, detail: format!("unknown client message #{n}").into() }),
    };
    if used != rest.len() {
        return Err(DecodeError::Malformed {
            id: bin_request_id(bytes),
            detail: format!("{} bytes after the message", rest.len() - used).into(),
        });
    }
    Ok(msg)
}

/// A bincode error for a person: a bound's own text, not its debug form.
fn bin_detail(e: &bincode::error::DecodeError) -> String {
    match e {
        bincode::error::DecodeError::OtherString(s) => s.clone(),
        bincode::error::DecodeError::UnexpectedEnd { .. } => "the message ends early".to_owned(),
        other => other.to_string(),
    }
}

/// The id of a binary `req`, read from its first bytes: variant 0, then id.
fn bin_request_id(bytes: &[u8]) -> Option<RequestId> {
    match bincode::decode_from_slice::<(u32, u32), _>(bytes, bin_config()) {
        Ok(((0, id), _)) => Some(RequestId(id)),
        _ => None,
    }
}

fn bin_failure(bytes: &[u8], detail: &str) -> DecodeError {
    let id = bin_request_id(bytes);
    if let Some(id) = id {
        if let Ok(((_, _, body), _)) = bincode::decode_from_slice::<(u32, u32, u32), _>(bytes, bin_config()) {
            if body as usize >= Request::NAMES.len() {
                return DecodeError::UnsupportedRequest { id, name: format!("#{body}").into() };
            }
        }
    }
    DecodeError::Malformed { id, detail: detail.into() }
}

fn json_failure(bytes: &[u8], detail: &str) -> DecodeError {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "type")]
        ty: Option<Value>,
        id: Option<Value>,
        body: Option<Value>,
    }
    let Ok(probe) = serde_json::from_slice::<Probe>(bytes) else {
        return DecodeError::Malformed { id: None, detail: detail.into() };
    };
    let is_req = probe.ty.as_ref().and_then(Value::as_str) == Some("req");
    let id = probe.id.as_ref().and_then(Value::as_u64).and_then(|v| u32::try_from(v).ok()).map(RequestId);
    match (is_req, id) {
        (true, Some(id)) => {
            let name = probe.body.as_ref().and_then(|b| b.get("type")).and_then(Value::as_str);
            match name {
                Some(name) if !Request::NAMES.contains(&name) => {
                    DecodeError::UnsupportedRequest { id, name: name.chars().take(64).collect::<String>().into() }
                }
                _ => DecodeError::Malformed { id: Some(id), detail: detail.into() },
            }
        }
        _ => DecodeError::Malformed { id: None, detail: detail.into() },
    }
}

/// Appends a server message to `out`.
pub fn encode_server(format: Format, msg: &ServerMsg, out: &mut Vec<u8>) {
    match (format, msg) {
        (_, ServerMsg::Tick(t)) => {
            let header = TickHeader {
                tick: t.tick,
                server_time_us: t.server_time_us,
                baseline: t.baseline,
                input_seq: t.input_seq,
            };
            encode_tick(format, &header, &t.state.0, out);
        }
        (Format::Bin, _) => {
            bincode::encode_into_std_write(msg, out, config::standard()).expect("writing to a Vec cannot fail");
        }
        (Format::Json, _) => serde_json::to_writer(out, msg).expect("server messages always serialize"),
    }
}

/// Decodes a server message (any size: a client trusts its server's sizes,
/// but not its bytes).
///
/// # Errors
/// [`DecodeError::Malformed`] for bytes that are not a server message.
pub fn decode_server(format: Format, bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    let malformed = |detail: String| DecodeError::Malformed { id: None, detail: detail.into() };
    match format {
        Format::Bin => match bincode::decode_from_slice::<ServerMsg, _>(bytes, bin_config()) {
            Ok((msg, used)) if used == bytes.len() => Ok(msg),
            Ok((_, used)) => Err(malformed(format!("{} bytes after the message", bytes.len() - used))),
            Err(e) => Err(malformed(bin_detail(&e))),
        },
        Format::Json => match serde_json::from_slice::<JsonTick<'_>>(bytes) {
            Ok(t) if t.ty == "tick" => Ok(ServerMsg::Tick(TickMsg {
                tick: t.tick,
                server_time_us: t.server_time_us,
                baseline: t.baseline,
                input_seq: t.input_seq,
                state: StateBytes(t.state.get().as_bytes().to_vec()),
            })),
            Ok(_) | Err(_) => serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string())),
        },
    }
}

/// A JSON `tick` read directly: serde's internally tagged enums buffer
/// their content, which a `RawValue` (the verbatim `state` text) cannot be
/// read from, so the derived `ServerMsg` decoder refuses every JSON tick.
#[derive(Deserialize)]
struct JsonTick<'a> {
    #[serde(rename = "type", borrow)]
    ty: std::borrow::Cow<'a, str>,
    tick: Tick,
    server_time_us: u64,
    baseline: Option<Tick>,
    input_seq: InputSeq,
    #[serde(borrow)]
    state: &'a serde_json::value::RawValue,
}

/// The per-player part of a tick message: everything but the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickHeader {
    /// The tick.
    pub tick: Tick,
    /// When the room took the state (µs since the Unix epoch).
    pub server_time_us: u64,
    /// The delta's baseline; `None` = full state.
    pub baseline: Option<Tick>,
    /// The player's newest included input.
    pub input_seq: InputSeq,
}

/// Appends a tick message to `out`: the player's header, then the shared
/// `state` bytes copied as they are (encoded once per baseline by
/// [`crate::delta`]). The bytes equal those of [`encode_server`] on the
/// same [`TickMsg`].
pub fn encode_tick(format: Format, header: &TickHeader, state: &[u8], out: &mut Vec<u8>) {
    match format {
        Format::Bin => {
            // ServerMsg::Tick is variant 3; TickMsg's fields in order; the
            // state is a Vec<u8>: length (u64 varint), then the bytes.
            let prefix =
                (3u32, header.tick, header.server_time_us, header.baseline, header.input_seq, state.len() as u64);
            bincode::encode_into_std_write(prefix, out, config::standard()).expect("writing to a Vec cannot fail");
            out.extend_from_slice(state);
        }
        Format::Json => {
            let _ = write!(
                out,
                "{{\"type\":\"tick\",\"tick\":{},\"server_time_us\":{},\"baseline\":",
                header.tick.0, header.server_time_us
            );
            match header.baseline {
                Some(b) => {
                    let _ = write!(out, "{}", b.0);
                }
                None => out.extend_from_slice(b"null"),
            }
            let _ = write!(out, ",\"input_seq\":{},\"state\":", header.input_seq.0);
            out.extend_from_slice(state);
            out.push(b'}');
        }
    }
}

/// Reads only the header of a server message that is a `tick`: `Ok(None)`
/// for any other message (decode those with [`decode_server`]). Checks what
/// can be checked without decoding the state: in the binary form that the
/// state's length prefix matches the bytes that follow; in JSON that the
/// message is one well-formed object with every header field. For clients
/// that time and ack ticks without rebuilding the state (a load generator's
/// sampled clients).
///
/// # Errors
/// [`DecodeError::Malformed`] for a tick whose header or framing is broken.
pub fn decode_tick_header(format: Format, bytes: &[u8]) -> Result<Option<TickHeader>, DecodeError> {
    let malformed = |detail: String| DecodeError::Malformed { id: None, detail: detail.into() };
    match format {
        Format::Bin => {
            // ServerMsg::Tick is variant 3 (see encode_tick).
            match bincode::decode_from_slice::<u32, _>(bytes, bin_config()) {
                Ok((3, _)) => {}
                Ok(_) => return Ok(None),
                Err(e) => return Err(malformed(e.to_string())),
            }
            let ((_, tick, server_time_us, baseline, input_seq, len), used) =
                bincode::decode_from_slice::<(u32, Tick, u64, Option<Tick>, InputSeq, u64), _>(bytes, bin_config())
                    .map_err(|e| malformed(e.to_string()))?;
            let rest = (bytes.len() - used) as u64;
            if len != rest {
                return Err(malformed(format!("tick state of {len} bytes, {rest} follow")));
            }
            Ok(Some(TickHeader { tick, server_time_us, baseline, input_seq }))
        }
        Format::Json => {
            #[derive(Deserialize)]
            struct Probe<'a> {
                #[serde(rename = "type", borrow)]
                ty: std::borrow::Cow<'a, str>,
                tick: Option<Tick>,
                server_time_us: Option<u64>,
                #[serde(default)]
                baseline: Option<Tick>,
                input_seq: Option<InputSeq>,
                state: Option<serde::de::IgnoredAny>,
            }
            let p: Probe<'_> = serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
            if p.ty != "tick" {
                return Ok(None);
            }
            match (p.tick, p.server_time_us, p.input_seq, p.state) {
                (Some(tick), Some(server_time_us), Some(input_seq), Some(_)) => {
                    Ok(Some(TickHeader { tick, server_time_us, baseline: p.baseline, input_seq }))
                }
                _ => Err(malformed("a tick without tick, server_time_us, input_seq or state".into())),
            }
        }
    }
}

/// Rebuilds a tick message from its header and state, e.g. for tests.
#[must_use]
pub fn tick_msg(header: &TickHeader, state: Vec<u8>) -> ServerMsg {
    ServerMsg::Tick(TickMsg {
        tick: header.tick,
        server_time_us: header.server_time_us,
        baseline: header.baseline,
        input_seq: header.input_seq,
        state: StateBytes(state),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_the_client_order() {
        assert_eq!(Format::negotiate(["tickforge.v1.json, tickforge.v1.bin"]), Negotiation::Chosen(Format::Json));
        assert_eq!(Format::negotiate(["x", "tickforge.v1.bin"]), Negotiation::Chosen(Format::Bin));
        assert_eq!(Format::negotiate(Vec::<&str>::new()), Negotiation::NoneOffered);
        assert_eq!(Format::negotiate(["chat, mqtt"]), Negotiation::NoneSupported);
    }

    #[test]
    fn tick_headers_read_without_the_state() {
        let header = TickHeader {
            tick: Tick(41),
            server_time_us: 1_763_740_000_000_123,
            baseline: Some(Tick(39)),
            input_seq: InputSeq(7),
        };
        let full = TickHeader { baseline: None, ..header };
        for format in Format::ALL {
            let state: &[u8] = if format == Format::Bin {
                &[1, 2, 3, 4]
            } else {
                br#"{"spawned":[],"updated":[{"id":4,"x":1.5}],"removed":[9]}"#
            };
            for h in [header, full] {
                let mut out = Vec::new();
                encode_tick(format, &h, state, &mut out);
                assert_eq!(decode_tick_header(format, &out), Ok(Some(h)), "{format:?}");
                // A cut message is refused, never read as a tick.
                assert!(decode_tick_header(format, &out[..out.len() - 1]).is_err(), "{format:?}");
            }
            let mut out = Vec::new();
            encode_server(
                format,
                &ServerMsg::Rej { id: RequestId(3), code: crate::message::RejectCode::RoomFull, reason: "full".into() },
                &mut out,
            );
            assert_eq!(decode_tick_header(format, &out), Ok(None), "{format:?}");
        }
        // Binary: a state length that disagrees with the bytes that follow.
        let mut out = Vec::new();
        encode_tick(Format::Bin, &header, &[1, 2, 3], &mut out);
        out.push(0);
        assert!(matches!(decode_tick_header(Format::Bin, &out), Err(DecodeError::Malformed { .. })));
        // JSON: a tick missing a header field.
        let err = decode_tick_header(Format::Json, br#"{"type":"tick","tick":3,"input_seq":1,"state":{}}"#);
        assert!(matches!(err, Err(DecodeError::Malformed { .. })));
        assert!(decode_tick_header(Format::Json, b"[").is_err());
    }

    #[test]
    fn too_large_is_refused_before_decoding() {
        let err = decode_client(Format::Json, &[b' '; 10], 9).unwrap_err();
        assert_eq!(err, DecodeError::TooLarge { size: 10, max: 9 });
    }
}
