//! The client side of RFC 6455 framing, just what a load client needs in
//! its steady state: masked frames out, server frames in (unmasked, maybe
//! fragmented, control frames between fragments). No I/O: bytes in,
//! messages out, so the core's ring (or a test) feeds it.

use thiserror::Error;

/// Continuation frame.
pub(crate) const OP_CONT: u8 = 0x0;
/// Text frame (`tickforge.v1.json`).
pub(crate) const OP_TEXT: u8 = 0x1;
/// Binary frame (`tickforge.v1.bin`).
pub(crate) const OP_BINARY: u8 = 0x2;
/// Close frame.
pub(crate) const OP_CLOSE: u8 = 0x8;
/// Ping frame.
pub(crate) const OP_PING: u8 = 0x9;
/// Pong frame.
pub(crate) const OP_PONG: u8 = 0xA;

/// Why the server's byte stream is not valid WebSocket for a client.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub(crate) enum WsError {
    /// A server frame was masked (RFC 6455 5.1: a client must fail then).
    #[error("masked frame from the server")]
    Masked,
    /// RSV bits set although no extension was negotiated.
    #[error("reserved bits set")]
    Reserved,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0}")]
    Opcode(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("bad control frame")]
    Control,
    /// A continuation without a message to continue, or a new data frame
    /// inside a fragmented message.
    #[error("bad fragmentation")]
    Fragment,
    /// A message longer than the limit.
    #[error("message of {size} bytes over the {max}-byte limit")]
    TooLarge {
        /// Its announced size so far.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A text message that is not UTF-8.
    #[error("text message not UTF-8")]
    Utf8,
}

/// One complete message (or control frame) as it arrived.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Msg<'a> {
    /// A data message: its payload, and whether it came in text frames.
    Data {
        /// Text (`true`) or binary.
        text: bool,
        /// The whole message's payload.
        payload: &'a [u8],
    },
    /// A ping, to be answered with a pong carrying the same payload.
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// A close frame: its code (none when the frame had no body).
    Close(Option<u16>),
}

/// Appends one masked client frame (FIN set) to `out`.
pub(crate) fn write_frame(opcode: u8, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    for (i, b) in out[start..].iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Appends a masked close frame with `code` and `reason` (at most 123 bytes).
pub(crate) fn write_close(code: u16, reason: &str, mask: [u8; 4], out: &mut Vec<u8>) {
    let mut body = [0u8; 125];
    body[..2].copy_from_slice(&code.to_be_bytes());
    let n = reason.len().min(123);
    body[2..2 + n].copy_from_slice(&reason.as_bytes()[..n]);
    write_frame(OP_CLOSE, &body[..2 + n], mask, out);
}

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Head {
    fin: bool,
    opcode: u8,
    header_len: usize,
    len: u64,
}

/// The header at the start of `buf`; `None` until all of it is there.
fn head(buf: &[u8], max: usize) -> Result<Option<Head>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(WsError::Reserved);
    }
    if b1 & 0x80 != 0 {
        return Err(WsError::Masked);
    }
    let opcode = b0 & 0x0f;
    let fin = b0 & 0x80 != 0;
    match opcode {
        OP_CONT | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG => {
            if !fin || b1 & 0x7f > 125 {
                return Err(WsError::Control);
            }
        }
        other => return Err(WsError::Opcode(other)),
    }
    let (header_len, len) = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (4, u64::from(u16::from_be_bytes([buf[2], buf[3]])))
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (10, u64::from_be_bytes(b))
        }
        n => (2, u64::from(n)),
    };
    if len > max as u64 {
        return Err(WsError::TooLarge { size: len, max });
    }
    Ok(Some(Head { fin, opcode, header_len, len }))
}

/// A server stream's reader: bytes in any split, messages out. Holds the
/// bytes of an unfinished frame and of an unfinished fragmented message;
/// both stay empty (no allocation) while every read ends on a frame's end.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// Bytes of a frame not yet complete.
    carry: Vec<u8>,
    /// The fragments so far of a fragmented data message.
    frag: Vec<u8>,
    /// The fragmented message's opcode while one is open.
    frag_opcode: Option<u8>,
}

impl Reader {
    /// The largest message accepted (16 MiB: a full state of a big room).
    pub(crate) const MAX_MESSAGE: usize = 16 << 20;

    /// Whether bytes of an unfinished frame or message are held.
    #[cfg(test)]
    fn is_mid_message(&self) -> bool {
        !self.carry.is_empty() || self.frag_opcode.is_some()
    }

    /// Feeds received bytes; calls `on_msg` for each complete message, in
    /// order.
    ///
    /// # Errors
    /// The first framing error; the stream is unusable after it.
    pub(crate) fn feed(&mut self, data: &[u8], mut on_msg: impl FnMut(Msg<'_>)) -> Result<(), WsError> {
        if self.carry.is_empty() {
            let used = self.parse(data, &mut on_msg)?;
            self.carry.extend_from_slice(&data[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.carry);
            buf.extend_from_slice(data);
            let used = self.parse(&buf, &mut on_msg);
            let used = match used {
                Ok(used) => used,
                Err(e) => {
                    self.carry = buf;
                    return Err(e);
                }
            };
            buf.drain(..used);
            self.carry = buf;
        }
        Ok(())
    }

    /// Parses whole frames from `buf`; returns the bytes used.
    fn parse(&mut self, buf: &[u8], on_msg: &mut impl FnMut(Msg<'_>)) -> Result<usize, WsError> {
        let mut at = 0;
        loop {
            let Some(h) = head(&buf[at..], Self::MAX_MESSAGE)? else { return Ok(at) };
            let total = h.header_len + h.len as usize;
            if buf.len() - at < total {
                return Ok(at);
            }
            let payload = &buf[at + h.header_len..at + total];
            at += total;
            match h.opcode {
                OP_PING => on_msg(Msg::Ping(payload)),
                OP_PONG => on_msg(Msg::Pong),
                OP_CLOSE => {
                    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    on_msg(Msg::Close(code));
                }
                OP_CONT => {
                    let Some(op) = self.frag_opcode else { return Err(WsError::Fragment) };
                    if self.frag.len() + payload.len() > Self::MAX_MESSAGE {
                        return Err(WsError::TooLarge {
                            size: (self.frag.len() + payload.len()) as u64,
                            max: Self::MAX_MESSAGE,
                        });
                    }
                    self.frag.extend_from_slice(payload);
                    if h.fin {
                        self.frag_opcode = None;
                        let msg = std::mem::take(&mut self.frag);
                        let text = op == OP_TEXT;
                        if text && std::str::from_utf8(&msg).is_err() {
                            return Err(WsError::Utf8);
                        }
                        on_msg(Msg::Data { text, payload: &msg });
                    }
                }
                op => {
                    if self.frag_opcode.is_some() {
                        return Err(WsError::Fragment);
                    }
                    if h.fin {
                        let text = op == OP_TEXT;
                        if text && std::str::from_utf8(payload).is_err() {
                            return Err(WsError::Utf8);
                        }
                        on_msg(Msg::Data { text, payload });
                    } else {
                        self.frag_opcode = Some(op);
                        self.frag.extend_from_slice(payload);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An unmasked server frame.
    fn server_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        if payload.len() < 126 {
            out.push(payload.len() as u8);
        } else if payload.len() <= 0xffff {
            out.push(126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Owned {
        Data(bool, Vec<u8>),
        Ping(Vec<u8>),
        Pong,
        Close(Option<u16>),
    }

    fn collect(r: &mut Reader, data: &[u8], out: &mut Vec<Owned>) -> Result<(), WsError> {
        r.feed(data, |m| {
            out.push(match m {
                Msg::Data { text, payload } => Owned::Data(text, payload.to_vec()),
                Msg::Ping(p) => Owned::Ping(p.to_vec()),
                Msg::Pong => Owned::Pong,
                Msg::Close(c) => Owned::Close(c),
            });
        })
    }

    #[test]
    fn masked_client_frames_match_rfc_6455_examples() {
        // RFC 6455 5.7: a masked "Hello" text frame.
        let mut out = Vec::new();
        write_frame(OP_TEXT, b"Hello", [0x37, 0xfa, 0x21, 0x3d], &mut out);
        assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        // 126 and 127 length forms.
        for (len, head) in [(200usize, 4usize), (70_000, 10)] {
            let mut out = Vec::new();
            write_frame(OP_BINARY, &vec![7u8; len], [1, 2, 3, 4], &mut out);
            assert_eq!(out.len(), head + 4 + len);
            assert_eq!(out[1] & 0x80, 0x80);
        }
        let mut out = Vec::new();
        write_close(1000, "bye", [0; 4], &mut out);
        assert_eq!(out, [0x88, 0x85, 0, 0, 0, 0, 0x03, 0xe8, b'b', b'y', b'e']);
    }

    #[test]
    fn any_split_gives_the_same_messages() {
        let mut stream = Vec::new();
        stream.extend(server_frame(true, OP_BINARY, &[1, 2, 3]));
        stream.extend(server_frame(true, OP_PING, b"hi"));
        stream.extend(server_frame(false, OP_TEXT, b"{\"a\""));
        stream.extend(server_frame(true, OP_PONG, b""));
        stream.extend(server_frame(true, OP_CONT, b":1}"));
        stream.extend(server_frame(true, OP_BINARY, &vec![9u8; 300]));
        stream.extend(server_frame(true, OP_BINARY, &vec![8u8; 70_000]));
        stream.extend(server_frame(true, OP_CLOSE, &[0x03, 0xe9]));
        let want = vec![
            Owned::Data(false, vec![1, 2, 3]),
            Owned::Ping(b"hi".to_vec()),
            Owned::Pong,
            Owned::Data(true, b"{\"a\":1}".to_vec()),
            Owned::Data(false, vec![9u8; 300]),
            Owned::Data(false, vec![8u8; 70_000]),
            Owned::Close(Some(1001)),
        ];
        for chunk in [1, 2, 3, 5, 7, 64, 1000, stream.len()] {
            let mut r = Reader::default();
            let mut got = Vec::new();
            for part in stream.chunks(chunk) {
                collect(&mut r, part, &mut got).unwrap();
            }
            assert_eq!(got, want, "chunk {chunk}");
            assert!(!r.is_mid_message());
        }
    }

    #[test]
    fn bad_streams_are_errors() {
        let cases: Vec<(Vec<u8>, WsError)> = vec![
            (vec![0x82, 0x81, 0, 0, 0, 0, 1], WsError::Masked),
            (vec![0xc2, 0x00], WsError::Reserved),
            (vec![0x83, 0x00], WsError::Opcode(3)),
            (vec![0x09, 0x00], WsError::Control),
            (server_frame(true, OP_PING, &[0; 126]), WsError::Control),
            (server_frame(true, OP_CONT, b"x"), WsError::Fragment),
            ([server_frame(false, OP_BINARY, b"x"), server_frame(true, OP_BINARY, b"y")].concat(), WsError::Fragment),
            (server_frame(true, OP_TEXT, &[0xff, 0xfe]), WsError::Utf8),
            (
                vec![0x82, 127, 0, 0, 0, 0, 0x01, 0, 0, 1],
                WsError::TooLarge { size: (16 << 20) + 1, max: Reader::MAX_MESSAGE },
            ),
        ];
        for (bytes, want) in cases {
            let mut r = Reader::default();
            let mut got = Vec::new();
            assert_eq!(collect(&mut r, &bytes, &mut got), Err(want), "{bytes:?}");
        }
    }
}
