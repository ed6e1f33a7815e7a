//! WebSocket glue: the RFC 6455 opening handshake checked against the
//! contract, and [`Wire`], the in-memory byte pipe tungstenite's sans-IO
//! [`WebSocketContext`] reads from and writes to.
//!
//! The connection task moves bytes between the socket and a `Wire`; the
//! `WebSocketContext` turns them into messages. `Wire` hands tungstenite at
//! most one frame at a time, so after every message the bytes not yet
//! parsed are still in `Wire` (what a hand-off to another shard carries).

use crate::http::RequestHead;
use std::io::{self, Read, Write};
use tickforge_protocol::codec::{Format, Negotiation};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

/// Buffer capacity a [`Wire`] keeps between bursts; more is freed once
/// drained (see [`Wire::shrink`]).
pub const RETAIN: usize = 2048;

/// What a handshake that passed the checks negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The wire format (JSON when no subprotocol was offered).
    pub format: Format,
    /// The subprotocol to name in the answer (`None` when none was offered).
    pub subprotocol: Option<&'static str>,
    /// `Sec-WebSocket-Accept`.
    pub accept_key: String,
}

/// A refused handshake: status, the body's reason, and extra headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// Why, for the body.
    pub why: String,
    /// Extra headers (`Upgrade`, `Sec-WebSocket-Version`, `Allow`).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Refused {
    fn new(status: u16, why: impl Into<String>) -> Self {
        Self { status, why: why.into(), headers: Vec::new() }
    }

    fn with(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// What the handshake checks need to know about the server.
#[derive(Clone, Copy, Debug)]
pub struct HandshakePolicy<'a> {
    /// Allowed `Origin`s; empty = any.
    pub allowed_origins: &'a [String],
    /// The token a `?token=` query must match, when set.
    pub token: Option<&'a str>,
    /// Whether to negotiate a tickforge subprotocol (false for `/echo`).
    pub negotiate: bool,
}

/// Checks an upgrade request against RFC 6455 and the contract.
///
/// # Errors
/// [`Refused`] with the status the contract gives: 405 (not GET), 426 (no
/// `Upgrade: websocket`, or a version other than 13), 400 (no `Connection:
/// Upgrade`, a bad key, only unknown subprotocols), 403 (Origin, token).
pub fn check_upgrade(head: &RequestHead, policy: &HandshakePolicy<'_>) -> Result<Accepted, Refused> {
    if head.method != "GET" {
        return Err(Refused::new(405, format!("{} is not allowed here: use GET", head.method)).with("Allow", "GET"));
    }
    if !head.header_has_token("Upgrade", "websocket") {
        return Err(
            Refused::new(426, "this is a WebSocket endpoint: send Upgrade: websocket").with("Upgrade", "websocket")
        );
    }
    if head.version < 1 {
        return Err(Refused::new(400, "WebSocket needs HTTP/1.1"));
    }
    if !head.header_has_token("Connection", "upgrade") {
        return Err(Refused::new(400, "missing Connection: Upgrade"));
    }
    match head.header("Sec-WebSocket-Version") {
        Some("13") => {}
        Some(v) => {
            return Err(Refused::new(426, format!("unsupported Sec-WebSocket-Version {v:?}: this server speaks 13"))
                .with("Sec-WebSocket-Version", "13"))
        }
        None => {
            return Err(Refused::new(426, "missing Sec-WebSocket-Version: this server speaks 13")
                .with("Sec-WebSocket-Version", "13"))
        }
    }
    let Some(key) = head.header("Sec-WebSocket-Key").filter(|k| valid_key(k)) else {
        return Err(Refused::new(400, "missing or invalid Sec-WebSocket-Key (16 bytes, base64)"));
    };
    if !policy.allowed_origins.is_empty() {
        if let Some(origin) = head.header("Origin") {
            if !policy.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return Err(Refused::new(403, format!("origin {origin:?} is not allowed")));
            }
        }
    }
    if let (Some(token), Some(given)) = (policy.token, head.query_param("token")) {
        if token != given.as_ref() {
            return Err(Refused::new(403, "token refused"));
        }
    }
    let (format, subprotocol) = if policy.negotiate {
        match Format::negotiate(head.header_values("Sec-WebSocket-Protocol")) {
            Negotiation::Chosen(f) => (f, Some(f.subprotocol())),
            Negotiation::NoneOffered => (Format::Json, None),
            Negotiation::NoneSupported => {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.subprotocol()).collect();
                return Err(Refused::new(
                    400,
                    format!("no supported subprotocol offered; this server speaks {}", names.join(", ")),
                ));
            }
        }
    } else {
        (Format::Json, None)
    };
    Ok(Accepted { format, subprotocol, accept_key: tungstenite::handshake::derive_accept_key(key.as_bytes()) })
}

/// Whether `key` is base64 of 16 bytes.
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24 && b.ends_with(b"==") && b[..22].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// The `101 Switching Protocols` answer.
#[must_use]
pub fn switching_protocols(accepted: &Accepted) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accepted.accept_key
    );
    if let Some(p) = accepted.subprotocol {
        out.push_str("Sec-WebSocket-Protocol: ");
        out.push_str(p);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// tungstenite's settings for a server connection: a 1 KiB read buffer
/// (not the 128 KiB default, which tungstenite allocates up front for every
/// connection: client messages are tens of bytes, and a larger one is read
/// in 1 KiB steps from memory), writes passed straight to [`Wire`], and the
/// message limit from [`crate::config::Limits::max_message_size`].
#[must_use]
pub fn websocket_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// A server-side WebSocket context.
#[must_use]
pub fn server_context(max_message_size: usize) -> WebSocketContext {
    WebSocketContext::new(Role::Server, Some(websocket_config(max_message_size)))
}

/// The byte pipe between a socket and tungstenite: `rx` holds bytes read
/// from the socket not yet handed to tungstenite, `tx` bytes tungstenite
/// wrote that the socket has not taken yet.
#[derive(Debug, Default)]
pub struct Wire {
    rx: Vec<u8>,
    rx_start: usize,
    /// Bytes of the current frame (header + payload) not yet handed over.
    frame_left: u64,
    tx: Vec<u8>,
    tx_start: usize,
}

impl Wire {
    /// A pipe that already holds `rx` (bytes read past the HTTP head).
    #[must_use]
    pub fn with_rx(rx: Vec<u8>) -> Self {
        Self { rx, ..Self::default() }
    }

    /// Bytes read and not yet handed to tungstenite.
    #[must_use]
    pub fn rx_pending(&self) -> &[u8] {
        &self.rx[self.rx_start..]
    }

    /// Appends bytes read from the socket.
    pub fn push_rx(&mut self, bytes: &[u8]) {
        if self.rx_start == self.rx.len() {
            self.rx.clear();
            self.rx_start = 0;
        } else if self.rx_start > 64 * 1024 {
            self.rx.drain(..self.rx_start);
            self.rx_start = 0;
        }
        self.rx.extend_from_slice(bytes);
    }

    /// Rewinds drained buffers (keeping their capacity), so that the next
    /// bytes start at the front; cheap, called on every pass of the loop.
    pub fn settle(&mut self) {
        if self.rx_start == self.rx.len() {
            self.rx_start = 0;
            self.rx.clear();
        }
        if self.tx_start == self.tx.len() {
            self.tx_start = 0;
            self.tx.clear();
        }
    }

    /// Frees what a burst left behind: a drained buffer over [`RETAIN`]
    /// bytes goes back to the allocator, so that an idle connection holds
    /// no large buffers. Called from the connection's periodic
    /// housekeeping, not per message: a connection whose ticks are larger
    /// than [`RETAIN`] keeps one buffer instead of reallocating it per tick.
    pub fn shrink(&mut self) {
        self.settle();
        if self.rx.is_empty() && self.rx.capacity() > RETAIN {
            self.rx = Vec::new();
        }
        if self.tx.is_empty() && self.tx.capacity() > RETAIN {
            self.tx = Vec::new();
        }
    }

    /// Drops every byte received and not yet parsed (after a fault).
    pub fn discard_rx(&mut self) {
        self.rx.clear();
        self.rx_start = 0;
        self.frame_left = 0;
    }

    /// Bytes waiting for the socket.
    #[must_use]
    pub fn tx_pending(&self) -> &[u8] {
        &self.tx[self.tx_start..]
    }

    /// The socket took `n` bytes of [`Wire::tx_pending`].
    pub fn consume_tx(&mut self, n: usize) {
        self.tx_start += n;
        if self.tx_start >= self.tx.len() {
            self.tx.clear();
            self.tx_start = 0;
        } else if self.tx_start > 64 * 1024 {
            self.tx.drain(..self.tx_start);
            self.tx_start = 0;
        }
    }

    /// The length of the frame header at the start of `b` and the frame's
    /// total length, once the whole header is there.
    fn frame_len(b: &[u8]) -> Option<u64> {
        if b.len() < 2 {
            return None;
        }
        let masked = b[1] & 0x80 != 0;
        let mask = if masked { 4 } else { 0 };
        let (header, payload) = match b[1] & 0x7f {
            126 => {
                let h = 4 + mask;
                (h, u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?])))
            }
            127 => {
                let h = 10 + mask;
                let mut len = [0u8; 8];
                len.copy_from_slice(b.get(2..10)?);
                (h, u64::from_be_bytes(len))
            }
            n => (2 + mask, u64::from(n)),
        };
        if b.len() < header {
            return None;
        }
        Some((header as u64).saturating_add(payload))
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pending = &self.rx[self.rx_start..];
        if self.frame_left == 0 {
            match Self::frame_len(pending) {
                Some(len) => self.frame_left = len,
                None => return Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        let n = pending.len().min(buf.len()).min(usize::try_from(self.frame_left).unwrap_or(usize::MAX));
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        buf[..n].copy_from_slice(&pending[..n]);
        self.rx_start += n;
        self.frame_left -= n as u64;
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;
    use tungstenite::Message;

    fn head(extra: &str) -> RequestHead {
        let raw = format!("GET /ws HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    const UPGRADE: &str =
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    const ANY: HandshakePolicy<'static> = HandshakePolicy { allowed_origins: &[], token: None, negotiate: true };

    #[test]
    fn the_rfc_example_key_and_subprotocol_choice() {
        let ok =
            check_upgrade(&head(&format!("{UPGRADE}Sec-WebSocket-Protocol: x, tickforge.v1.bin\r\n")), &ANY).unwrap();
        assert_eq!(ok.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(ok.format, Format::Bin);
        let text = String::from_utf8(switching_protocols(&ok)).unwrap();
        assert!(text.contains("Sec-WebSocket-Protocol: tickforge.v1.bin\r\n"));
        let none = check_upgrade(&head(UPGRADE), &ANY).unwrap();
        assert_eq!((none.format, none.subprotocol), (Format::Json, None));
    }

    #[test]
    fn refusals_follow_the_contract() {
        let status =
            |extra: &str, policy: &HandshakePolicy<'_>| check_upgrade(&head(extra), policy).unwrap_err().status;
        assert_eq!(status("", &ANY), 426);
        assert_eq!(status(&UPGRADE.replace("13", "8"), &ANY), 426);
        assert_eq!(status(&UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"), &ANY), 400);
        assert_eq!(status(&format!("{UPGRADE}Sec-WebSocket-Protocol: mqtt\r\n"), &ANY), 400);
        let origins = vec!["http://good".to_string()];
        let strict = HandshakePolicy { allowed_origins: &origins, token: None, negotiate: true };
        assert_eq!(status(&format!("{UPGRADE}Origin: http://evil\r\n"), &strict), 403);
        assert!(check_upgrade(&head(&format!("{UPGRADE}Origin: http://good\r\n")), &strict).is_ok());
    }

    #[test]
    fn frame_lengths_in_every_header_form() {
        assert_eq!(Wire::frame_len(&[0x81]), None);
        assert_eq!(Wire::frame_len(&[0x81, 0x85]), None, "mask not there yet");
        assert_eq!(Wire::frame_len(&[0x81, 0x85, 1, 2, 3, 4]), Some(6 + 5));
        assert_eq!(Wire::frame_len(&[0x82, 0xfe, 0x01]), None);
        assert_eq!(Wire::frame_len(&[0x82, 0xfe, 0x01, 0x00, 1, 2, 3, 4]), Some(8 + 256));
        let mut long = vec![0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4];
        assert_eq!(Wire::frame_len(&long), Some(14 + 65_536));
        long.truncate(9);
        assert_eq!(Wire::frame_len(&long), None);
    }

    #[test]
    fn a_large_frame_in_pieces_then_the_next_frame_stays_unread() {
        let payload: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mask = [9u8, 8, 7, 6];
        let mut bytes = vec![0x82, 0x80 | 127];
        bytes.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let next = [0x89, 0x80, 0, 0, 0, 0]; // a masked empty ping
        bytes.extend_from_slice(&next);
        let mut wire = Wire::default();
        let mut ctx = server_context(1 << 20);
        let mut got = None;
        for chunk in bytes.chunks(1000) {
            wire.push_rx(chunk);
            match ctx.read(&mut wire) {
                Ok(m) => {
                    got = Some(m);
                    break;
                }
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, Some(Message::binary(payload)));
        // The last chunk held the frame's end and the whole ping: the ping is
        // still in the pipe, frame-aligned, not inside tungstenite.
        assert_eq!(wire.rx_pending(), &next);
    }

    #[test]
    fn wire_hands_over_one_frame_at_a_time() {
        // Two masked client text frames back to back, then half a third.
        let frame = |text: &str| {
            let mut f = vec![0x81, 0x80 | text.len() as u8, 1, 2, 3, 4];
            f.extend(text.bytes().enumerate().map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]));
            f
        };
        let mut bytes = frame("one");
        bytes.extend(frame("two"));
        let third = frame("three");
        bytes.extend(&third[..4]);
        let mut wire = Wire::with_rx(bytes);
        let mut ctx = server_context(1024);
        assert_eq!(ctx.read(&mut wire).unwrap(), Message::text("one"));
        assert_eq!(wire.rx_pending().len(), 9 + 4);
        assert_eq!(ctx.read(&mut wire).unwrap(), Message::text("two"));
        assert!(matches!(ctx.read(&mut wire), Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock));
        wire.push_rx(&third[4..]);
        assert_eq!(ctx.read(&mut wire).unwrap(), Message::text("three"));
        ctx.write(&mut wire, Message::text("hi")).unwrap();
        ctx.flush(&mut wire).unwrap();
        assert_eq!(wire.tx_pending(), b"\x81\x02hi");
    }
}
