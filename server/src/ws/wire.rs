//! WebSocket framing on our side of tungstenite: [`Wire`], the receive pipe
//! tungstenite's sans-IO [`WebSocketContext`] reads client frames from, and
//! [`write_frame_header`], which frames the server's own data messages
//! straight into a connection's outbound buffer.
//!
//! Client frames go through tungstenite (masking, fragmentation, control
//! frames, UTF-8, limits: the parts RFC 6455 conformance rests on). Server
//! data frames do not need it: they are unmasked, unfragmented and built
//! from payloads our own encoders wrote, so the room writes each one once,
//! header and payload, where the socket will send it from.

use std::io::{self, Read};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};

/// Receive buffer capacity a [`Wire`] keeps between bursts; more is freed
/// once drained (see [`Wire::shrink`]).
pub const RETAIN: usize = 2048;

/// WebSocket opcode of a text frame.
pub const OPCODE_TEXT: u8 = 0x1;
/// WebSocket opcode of a binary frame.
pub const OPCODE_BINARY: u8 = 0x2;

/// Appends the header of one final (FIN), unmasked server frame with
/// `opcode` and a payload of `len` bytes: 2, 4 or 10 bytes (RFC 6455 5.2).
pub fn write_frame_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    let first = 0x80 | (opcode & 0x0f);
    if len < 126 {
        out.extend_from_slice(&[first, len as u8]);
    } else if let Ok(short) = u16::try_from(len) {
        let b = short.to_be_bytes();
        out.extend_from_slice(&[first, 126, b[0], b[1]]);
    } else {
        out.extend_from_slice(&[first, 127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// tungstenite's settings for a server connection: a 256-byte read buffer
/// (not the 128 KiB default, which tungstenite allocates up front for every
/// connection: client messages are tens of bytes, and a larger one is read
/// in 256-byte steps from memory; tungstenite also zeroes up to this much
/// before every frame it reads, so 1 KiB cost a 1 KiB `memset` per input),
/// writes passed straight through, and the message limit from
/// [`crate::config::Limits::max_message_size`].
#[must_use]
pub fn websocket_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(256)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// A server-side WebSocket context.
#[must_use]
pub fn server_context(max_message_size: usize) -> WebSocketContext {
    WebSocketContext::new(Role::Server, Some(websocket_config(max_message_size)))
}

/// Bytes read from a socket and not yet handed to tungstenite. It hands
/// tungstenite at most one frame at a time, so after every message the
/// bytes not yet parsed are still here, frame-aligned (what a hand-off to
/// another shard carries).
#[derive(Debug, Default)]
pub struct Wire {
    rx: Vec<u8>,
    rx_start: usize,
    /// Bytes of the current frame (header + payload) not yet handed over.
    frame_left: u64,
    /// A fragmented message was started and not finished in the frames
    /// handed to tungstenite: the next data frames are its.
    mid_message: bool,
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

    /// Frees what a burst left behind: a drained buffer over [`RETAIN`]
    /// bytes goes back to the allocator, so that an idle connection holds
    /// no large buffer. Called from the shard's periodic housekeeping, not
    /// per message.
    pub fn shrink(&mut self) {
        if self.rx_start == self.rx.len() {
            self.rx_start = 0;
            self.rx.clear();
            if self.rx.capacity() > RETAIN {
                self.rx = Vec::new();
            }
        }
    }

    /// Drops every byte received and not yet parsed (after a fault).
    pub fn discard_rx(&mut self) {
        self.rx.clear();
        self.rx_start = 0;
        self.frame_left = 0;
        self.mid_message = false;
    }

    /// Takes the next frame when it is a whole, final, masked text or
    /// binary frame of at most `max` payload bytes, and no fragmented
    /// message is under way: its payload, unmasked, is written to `out`
    /// and `Some(binary)` returned. Anything else (a control frame, a
    /// fragment, a frame not all here, reserved bits) is left for
    /// tungstenite: `None`.
    ///
    /// This is every client input in practice: it skips tungstenite's
    /// buffers and its allocation per message.
    pub fn take_simple_frame(&mut self, max: usize, out: &mut Vec<u8>) -> Option<bool> {
        if self.mid_message || self.frame_left != 0 {
            return None;
        }
        let b = &self.rx[self.rx_start..];
        let binary = match *b.first()? {
            0x81 => false,
            0x82 => true,
            _ => return None,
        };
        let second = *b.get(1)?;
        if second & 0x80 == 0 {
            return None; // unmasked: tungstenite refuses it
        }
        let (header, len) = match second & 0x7f {
            126 => (8, usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?]))),
            127 => return None,
            n => (6, usize::from(n)),
        };
        if len > max || b.len() < header + len {
            return None;
        }
        let mask = [b[header - 4], b[header - 3], b[header - 2], b[header - 1]];
        out.clear();
        out.extend(b[header..header + len].iter().enumerate().map(|(i, byte)| byte ^ mask[i & 3]));
        self.rx_start += header + len;
        Some(binary)
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
            // Follow fragmentation: a non-final text or binary frame
            // starts a message, a final continuation ends it.
            let (fin, opcode) = (pending[0] & 0x80 != 0, pending[0] & 0x0f);
            match opcode {
                OPCODE_TEXT | OPCODE_BINARY if !fin => self.mid_message = true,
                0 if fin => self.mid_message = false,
                _ => {}
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

/// What tungstenite reads from and writes to: a connection's [`Wire`] for
/// the client's frames, and `tx` for the frames tungstenite writes itself
/// (pongs, close frames, echoes).
#[derive(Debug)]
pub struct Pipe<'a, W> {
    /// The receive side.
    pub wire: &'a mut Wire,
    /// The send side.
    pub tx: W,
}

impl<W> Read for Pipe<'_, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.wire.read(buf)
    }
}

impl<W: io::Write> io::Write for Pipe<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tx.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::Message;

    fn read(ctx: &mut WebSocketContext, wire: &mut Wire, tx: &mut Vec<u8>) -> tungstenite::Result<Message> {
        ctx.read(&mut Pipe { wire, tx })
    }

    /// A masked client frame.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [3u8, 1, 4, 1];
        let mut f = vec![first];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    #[test]
    fn simple_frames_are_taken_whole_and_the_rest_left_to_tungstenite() {
        let mut out = Vec::new();
        let long: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut wire = Wire::with_rx(client_frame(0x82, b"in"));
        wire.push_rx(&client_frame(0x81, &long));
        wire.push_rx(&client_frame(0x89, b"")); // a ping
        assert_eq!(wire.take_simple_frame(1024, &mut out), Some(true));
        assert_eq!(out, b"in");
        assert_eq!(wire.take_simple_frame(100, &mut out), None, "over the size given");
        assert_eq!(wire.take_simple_frame(1024, &mut out), Some(false));
        assert_eq!(out, long);
        assert_eq!(wire.take_simple_frame(1024, &mut out), None, "control frames go to tungstenite");
        // A frame not all here yet stays.
        let frame = client_frame(0x82, b"later");
        let mut wire = Wire::with_rx(frame[..4].to_vec());
        assert_eq!(wire.take_simple_frame(1024, &mut out), None);
        wire.push_rx(&frame[4..]);
        assert_eq!(wire.take_simple_frame(1024, &mut out), Some(true));
    }

    #[test]
    fn a_fragmented_message_goes_to_tungstenite_to_its_end() {
        let mut out = Vec::new();
        let mut wire = Wire::with_rx(client_frame(0x01, b"frag")); // text, not final
        let mut ctx = server_context(1024);
        assert_eq!(wire.take_simple_frame(1024, &mut out), None);
        assert!(matches!(read(&mut ctx, &mut wire, &mut Vec::new()), Err(tungstenite::Error::Io(_))));
        // A new message mid-message: tungstenite's error to find, not ours
        // to take.
        wire.push_rx(&client_frame(0x82, b"x"));
        assert_eq!(wire.take_simple_frame(1024, &mut out), None, "mid-message: left to tungstenite");
        assert!(matches!(read(&mut ctx, &mut wire, &mut Vec::new()), Err(tungstenite::Error::Protocol(_))));
        // A fragmented message that ends lets simple frames through again.
        let mut wire = Wire::with_rx(client_frame(0x02, b"a"));
        wire.push_rx(&client_frame(0x80, b"b"));
        wire.push_rx(&client_frame(0x82, b"c"));
        let mut ctx = server_context(1024);
        assert_eq!(read(&mut ctx, &mut wire, &mut Vec::new()).unwrap(), Message::binary(b"ab".to_vec()));
        assert_eq!(wire.take_simple_frame(1024, &mut out), Some(true));
        assert_eq!(out, b"c");
    }

    #[test]
    fn frame_headers_in_every_length_form() {
        let mut out = Vec::new();
        write_frame_header(&mut out, OPCODE_BINARY, 125);
        assert_eq!(out, [0x82, 125]);
        out.clear();
        write_frame_header(&mut out, OPCODE_TEXT, 126);
        assert_eq!(out, [0x81, 126, 0, 126]);
        out.clear();
        write_frame_header(&mut out, OPCODE_BINARY, 65_536);
        assert_eq!(out, [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn our_frames_parse_as_tungstenite_frames() {
        for len in [0usize, 5, 125, 126, 300, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut bytes = Vec::new();
            write_frame_header(&mut bytes, OPCODE_BINARY, len);
            bytes.extend_from_slice(&payload);
            let mut client = WebSocketContext::new(Role::Client, Some(websocket_config(1 << 20)));
            let mut wire = Wire::with_rx(bytes);
            let got = read(&mut client, &mut wire, &mut Vec::new()).unwrap();
            assert_eq!(got, Message::binary(payload), "length {len}");
        }
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
            match read(&mut ctx, &mut wire, &mut Vec::new()) {
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
        assert_eq!(read(&mut ctx, &mut wire, &mut Vec::new()).unwrap(), Message::text("one"));
        assert_eq!(wire.rx_pending().len(), 9 + 4);
        assert_eq!(read(&mut ctx, &mut wire, &mut Vec::new()).unwrap(), Message::text("two"));
        assert!(
            matches!(read(&mut ctx, &mut wire, &mut Vec::new()), Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock)
        );
        wire.push_rx(&third[4..]);
        assert_eq!(read(&mut ctx, &mut wire, &mut Vec::new()).unwrap(), Message::text("three"));
        let mut tx = Vec::new();
        ctx.write(&mut Pipe { wire: &mut wire, tx: &mut tx }, Message::text("hi")).unwrap();
        ctx.flush(&mut Pipe { wire: &mut wire, tx: &mut tx }).unwrap();
        assert_eq!(tx, b"\x81\x02hi");
    }
}
