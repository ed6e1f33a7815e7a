//! Moving a live WebSocket connection to another shard.
//!
//! A room lives on one shard; a connection that joins a room elsewhere is
//! handed to that shard so that all its later traffic is served where the
//! room is, with nothing visible to the client. What moves:
//! - the socket: its fd is duplicated, the duplicate crosses the mesh and
//!   is re-wrapped as a glommio `TcpStream` on the target shard (the
//!   original is dropped with the old task);
//! - the bytes already read but not yet parsed: [`FrameBounded`] hands
//!   tungstenite at most one WebSocket frame at a time, so when a message
//!   has been returned tungstenite holds nothing, and whatever the client
//!   pipelined after it sits in the adapter and moves along;
//! - the session state and the pending join, carried by the caller's
//!   payload `T` in a [`Handoff`].
//!
//! This is control-plane traffic: one message per hand-off, never per
//! message of the connection.

use async_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use async_tungstenite::WebSocketStream;
use futures_lite::io::{AsyncRead, AsyncWrite};
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use glommio::net::TcpStream;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use thiserror::Error;

/// The most bytes a frame header takes (2 + 8 length + 4 mask).
const MAX_HEADER: usize = 14;
/// How much the adapter reads from the socket at once.
const READ_CHUNK: usize = 4096;

/// The header and payload length of the frame at the start of `bytes`, or
/// `None` while the header is incomplete.
fn frame_len(bytes: &[u8]) -> Option<u64> {
    let (&b1, rest) = bytes.get(1).zip(bytes.get(2..))?;
    let masked = b1 & 0x80 != 0;
    let (extended, payload) = match b1 & 0x7f {
        126 => (2, u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?))),
        127 => (8, u64::from_be_bytes(rest.get(..8)?.try_into().ok()?)),
        n => (0, u64::from(n)),
    };
    let header = 2 + extended + if masked { 4 } else { 0 };
    Some((header as u64).saturating_add(payload))
}

/// A stream adapter that gives its reader at most one WebSocket frame per
/// read, and keeps what it read past that frame for the next read or for
/// [`FrameBounded::into_parts`]. Writes pass straight through.
#[derive(Debug)]
pub struct FrameBounded<S> {
    inner: S,
    buf: Vec<u8>,
    pos: usize,
    /// Bytes of the current frame not yet handed out (0 = at a boundary).
    frame_left: u64,
}

impl<S> FrameBounded<S> {
    /// Wraps `inner`, whose next bytes are `already_read` and then the
    /// socket's; both must start at a frame boundary.
    pub fn new(inner: S, already_read: Vec<u8>) -> Self {
        Self { inner, buf: already_read, pos: 0, frame_left: 0 }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether the reader stands between two frames.
    pub fn at_frame_boundary(&self) -> bool {
        self.frame_left == 0
    }

    /// The stream and the bytes read from it but not handed out yet.
    pub fn into_parts(mut self) -> (S, Vec<u8>) {
        self.buf.drain(..self.pos);
        (self.inner, self.buf)
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.pos..]
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameBounded<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            if this.frame_left == 0 {
                if let Some(len) = frame_len(this.buffered()) {
                    this.frame_left = len;
                }
            }
            let buffered = this.buf.len() - this.pos;
            if this.frame_left > 0 && buffered > 0 {
                let n = out.len().min(buffered).min(usize::try_from(this.frame_left).unwrap_or(usize::MAX));
                out[..n].copy_from_slice(&this.buf[this.pos..this.pos + n]);
                this.pos += n;
                this.frame_left -= n as u64;
                if this.pos == this.buf.len() {
                    this.buf.clear();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(n));
            }
            if this.frame_left > 0 {
                // Inside a frame with nothing buffered: read straight into
                // the caller's buffer, never past the frame's end.
                let limit = out.len().min(usize::try_from(this.frame_left).unwrap_or(usize::MAX));
                let n = std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut out[..limit]))?;
                this.frame_left -= n as u64;
                return Poll::Ready(Ok(n));
            }
            // At a boundary without a whole header: read more.
            if this.pos > 0 {
                this.buf.drain(..this.pos);
                this.pos = 0;
            }
            let start = this.buf.len();
            this.buf.resize(start + READ_CHUNK.max(MAX_HEADER), 0);
            let read = Pin::new(&mut this.inner).poll_read(cx, &mut this.buf[start..]);
            let n = match read {
                Poll::Ready(Ok(n)) => n,
                other => {
                    this.buf.truncate(start);
                    return other;
                }
            };
            this.buf.truncate(start + n);
            if n == 0 {
                // End of stream: hand out a partial header, if any, and let
                // the reader report the truncated frame; else end of file.
                let rest = this.buffered().len().min(out.len());
                out[..rest].copy_from_slice(&this.buf[this.pos..this.pos + rest]);
                this.pos += rest;
                return Poll::Ready(Ok(rest));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameBounded<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

/// The server's WebSocket stream type: a glommio socket behind [`FrameBounded`].
pub type ServerWs = WebSocketStream<FrameBounded<TcpStream>>;

/// Why a connection could not be handed off.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HandoffError {
    /// The reader is inside a frame (a fragmented message in progress).
    #[error("connection is mid-frame")]
    MidFrame,
    /// Duplicating the socket failed (out of file descriptors).
    #[error("duplicating the socket: {0}")]
    Dup(#[source] io::Error),
    /// The target shard is gone (shutting down).
    #[error("shard {0} does not take hand-offs")]
    ShardGone(usize),
}

/// A connection on its way to another shard: `Send`, so it can cross the
/// mesh. `T` is the caller's session state and pending request.
#[derive(Debug)]
pub struct Handoff<T> {
    /// The duplicated socket.
    pub fd: OwnedFd,
    /// Bytes the client sent that were read but not parsed.
    pub already_read: Vec<u8>,
    /// The caller's payload.
    pub payload: T,
}

/// A failed [`detach`]: the connection and payload handed back, and why.
#[derive(Debug)]
pub struct DetachError<T> {
    /// The connection, still usable.
    pub ws: ServerWs,
    /// The caller's payload.
    pub payload: T,
    /// Why it could not be detached.
    pub error: HandoffError,
}

/// Takes a connection apart for a hand-off; flush it first. Dropping the
/// stream afterwards closes only the old fd: the socket stays open.
///
/// # Errors
/// [`HandoffError::MidFrame`] when a frame is half read;
/// [`HandoffError::Dup`] when the fd cannot be duplicated.
pub fn detach<T>(ws: ServerWs, payload: T) -> Result<Handoff<T>, Box<DetachError<T>>> {
    let adapter = ws.get_ref();
    if !adapter.at_frame_boundary() {
        return Err(Box::new(DetachError { ws, payload, error: HandoffError::MidFrame }));
    }
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a valid open fd returns a new fd we own.
    let dup = unsafe { libc::fcntl(adapter.get_ref().as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    if dup < 0 {
        let error = HandoffError::Dup(io::Error::last_os_error());
        return Err(Box::new(DetachError { ws, payload, error }));
    }
    // SAFETY: `dup` is a fresh fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(dup) };
    let already_read = ws.get_ref().buffered().to_vec();
    drop(ws);
    Ok(Handoff { fd, already_read, payload })
}

/// Rebuilds the WebSocket of a hand-off on the current shard.
pub async fn attach<T>(handoff: Handoff<T>, config: WebSocketConfig) -> (ServerWs, T) {
    // SAFETY: the fd is an open TCP socket we own; ownership moves into the stream.
    let stream = unsafe { TcpStream::from_raw_fd(handoff.fd.into_raw_fd()) };
    let ws =
        WebSocketStream::from_raw_socket(FrameBounded::new(stream, handoff.already_read), Role::Server, Some(config))
            .await;
    (ws, handoff.payload)
}

/// The hand-off mesh, built once before the shards start and joined by
/// each of them.
#[derive(Debug)]
pub struct HandoffMesh<T: Send>(MeshBuilder<Handoff<T>, Full>);

impl<T: Send> Clone for HandoffMesh<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + 'static> HandoffMesh<T> {
    /// A mesh between `shards` shards, each channel holding `capacity`
    /// hand-offs in flight.
    #[must_use]
    pub fn new(shards: usize, capacity: usize) -> Self {
        Self(MeshBuilder::full(shards, capacity))
    }

    /// Joins from the current shard (waits until every shard has joined).
    ///
    /// # Errors
    /// `HandoffError::ShardGone(0)` when the mesh cannot be joined.
    pub async fn join(self) -> Result<(HandoffSender<T>, Receivers<Handoff<T>>), HandoffError> {
        let (senders, receivers) = self.0.join().await.map_err(|_| HandoffError::ShardGone(0))?;
        Ok((HandoffSender(senders), receivers))
    }
}

/// This shard's end for sending hand-offs.
#[derive(Debug)]
pub struct HandoffSender<T: Send>(Senders<Handoff<T>>);

impl<T: Send> HandoffSender<T> {
    /// This shard's index in the mesh.
    #[must_use]
    pub fn shard(&self) -> usize {
        self.0.peer_id()
    }

    /// Sends a hand-off to shard `to`.
    ///
    /// # Errors
    /// [`HandoffError::ShardGone`] when that shard no longer takes any (the
    /// connection is then closed by the drop of its socket).
    pub async fn send_to(&self, to: usize, handoff: Handoff<T>) -> Result<(), HandoffError> {
        self.0.send_to(to, handoff).await.map_err(|_| HandoffError::ShardGone(to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::{AsyncReadExt, AsyncWriteExt, StreamExt};
    use glommio::net::TcpListener;
    use glommio::{LocalExecutorBuilder, Placement};
    use tungstenite::Message;

    #[test]
    fn frame_len_reads_every_header_form() {
        assert_eq!(frame_len(&[0x81]), None);
        assert_eq!(frame_len(&[0x81, 0x05]), Some(7));
        assert_eq!(frame_len(&[0x81, 0x85, 1, 2, 3, 4]), Some(11));
        assert_eq!(frame_len(&[0x82, 126, 0x01]), None);
        assert_eq!(frame_len(&[0x82, 126, 0x01, 0x00]), Some(4 + 256));
        assert_eq!(frame_len(&[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0]), Some(14 + 65_536));
    }

    /// Reads an HTTP upgrade request from `stream` and answers 101; returns
    /// the bytes read past the request.
    async fn handshake(stream: &mut TcpStream) -> Vec<u8> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let end = loop {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
        };
        let text = String::from_utf8_lossy(&buf[..end]).to_string();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ").or_else(|| l.strip_prefix("sec-websocket-key: ")))
            .unwrap()
            .trim()
            .to_owned();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        stream.write_all(reply.as_bytes()).await.unwrap();
        buf.split_off(end)
    }

    /// A connection accepted on shard 0 reads one message, is handed to
    /// shard 1 with the two messages the client pipelined behind it, and
    /// shard 1 answers them: the client sees one connection throughout.
    #[test]
    fn a_connection_moves_between_shards_with_its_pipelined_messages() {
        let mesh = HandoffMesh::<String>::new(2, 4);
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let config = WebSocketConfig::default();
        let shard0 = {
            let mesh = mesh.clone();
            LocalExecutorBuilder::new(Placement::Unbound)
                .io_memory(256 << 10)
                .spawn(move || async move {
                    let (sender, _receivers) = mesh.join().await.unwrap();
                    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                    port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                    let mut stream = listener.accept().await.unwrap();
                    let rest = handshake(&mut stream).await;
                    let mut ws =
                        WebSocketStream::from_raw_socket(FrameBounded::new(stream, rest), Role::Server, Some(config))
                            .await;
                    let first = ws.next().await.unwrap().unwrap();
                    ws.send(Message::text(format!("shard0:{}", first.to_text().unwrap()))).await.unwrap();
                    let handoff = detach(ws, "session-7".to_owned()).map_err(|e| e.error).unwrap();
                    sender.send_to(1, handoff).await.unwrap();
                })
                .unwrap()
        };
        let shard1 = LocalExecutorBuilder::new(Placement::Unbound)
            .io_memory(256 << 10)
            .spawn(move || async move {
                let (_sender, mut receivers) = mesh.join().await.unwrap();
                let (_, mut from0) = receivers.streams().into_iter().find(|(peer, _)| *peer == 0).unwrap();
                let handoff = from0.next().await.unwrap();
                let (mut ws, session) = attach(handoff, config).await;
                assert_eq!(session, "session-7");
                for _ in 0..2 {
                    let msg = ws.next().await.unwrap().unwrap();
                    ws.send(Message::text(format!("shard1:{}", msg.to_text().unwrap()))).await.unwrap();
                }
                ws.close(None).await.unwrap();
            })
            .unwrap();

        let port = port_rx.recv().unwrap();
        let socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let (mut client, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/ws"), socket).unwrap();
        // Three messages in one write: the last two arrive with the first.
        for text in ["hello", "one", "two"] {
            client.write(Message::text(text)).unwrap();
        }
        client.flush().unwrap();
        let mut replies = Vec::new();
        while replies.len() < 3 {
            match client.read().unwrap() {
                Message::Text(t) => replies.push(t.to_string()),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(replies, ["shard0:hello", "shard1:one", "shard1:two"]);
        shard0.join().unwrap();
        shard1.join().unwrap();
    }
}
