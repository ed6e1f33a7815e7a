//! One accepted socket's task: the HTTP request head (within the handshake
//! timeout), the plain answers, and for a WebSocket the connection's life.
//!
//! The task only moves bytes; [`Connection`] decides everything. Outside a
//! room it drives the socket itself, promptly: it waits for whichever comes
//! first of socket readable, socket writable (while bytes wait) and its
//! outbox's wake-up. In a room it parks: the room's tick pass reads and
//! writes the socket in batches with every other player's
//! ([`super::ticker`]), so a player's input and tick cost no task wake-up,
//! no timer and no syscall of their own. The outbox wakes the task again
//! when the connection leaves its room or is asked to close.

use super::shard::{ConnCell, Shard};
use super::tls::{flush_link, HttpIo, TlsLink};
use crate::conn::{Connection, HandOff, Moving, CLOSE_LINGER};
use crate::http::routes::{self, Answer};
use crate::http::{self, parse_head, RequestHead};
use crate::metrics::ShardMetrics;
use crate::ws;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use futures_lite::FutureExt as _;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use glommio::sync::StaticPermit;
use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::Poll;
use std::time::{Duration, Instant};
use tickforge_protocol::CloseReason;
use tracing::{debug, warn};

/// Serves one accepted socket; `permit` is `None` when the shard is at its
/// connection limit (the answer is then 503). A panic (a bug, never bad
/// input) ends only this connection: it is logged and counted as an
/// `internal` close, and the shard goes on.
pub(crate) async fn serve(shard: Rc<Shard>, stream: TcpStream, permit: Option<StaticPermit>) {
    let _open = OpenConnection::new(shard.state.metrics());
    let task = AssertUnwindSafe(serve_inner(&shard, stream, permit.is_some()));
    if let Err(panic) = task.catch_unwind().await {
        log_panic(&shard, panic.as_ref());
    }
    drop(permit);
}

/// Runs a connection handed in from another shard (already registered as
/// `cell`).
pub(crate) async fn serve_arrived(shard: Rc<Shard>, stream: TcpStream, cell: Rc<ConnCell>) {
    let _open = OpenConnection::new(shard.state.metrics());
    // The sender checked this shard's connections gauge before handing off
    // (`ShardState::is_full`); a permit can still be missing when several
    // hand-offs crossed, and the connection is then served over the limit
    // by that small, bounded margin rather than dropped mid-session.
    let permit = shard.permits.try_acquire_static_permit(1).ok();
    let task = AssertUnwindSafe(run_websocket(&shard, stream, cell));
    if let Err(panic) = task.catch_unwind().await {
        log_panic(&shard, panic.as_ref());
    }
    drop(permit);
}

fn log_panic(shard: &Shard, panic: &(dyn std::any::Any + Send)) {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    warn!(shard = shard.state.id, panic = %what, "connection task panicked; connection dropped");
    shard.state.metrics().close(&CloseReason::Internal);
}

/// Counts an open connection in the metrics while it lives.
struct OpenConnection<'a>(&'a ShardMetrics);

impl<'a> OpenConnection<'a> {
    fn new(m: &'a ShardMetrics) -> Self {
        ShardMetrics::gauge(&m.connections, 1);
        Self(m)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        ShardMetrics::gauge(&self.0.connections, -1);
    }
}

async fn serve_inner(shard: &Rc<Shard>, stream: TcpStream, have_permit: bool) {
    let _ = stream.set_nodelay(true);
    set_send_backlog(&stream, shard.state.config().limits.send_backlog);
    // Boxed: the HTTP phase lives for one request head, and its locals
    // (the TLS handshake's among them) would otherwise size every
    // connection's task for its whole life.
    let Some((stream, cell)) = Box::pin(http_phase(shard, stream, have_permit)).await else { return };
    run_websocket(shard, stream, cell).await;
}

/// Bounds the bytes the kernel holds unsent for this socket
/// (`TCP_NOTSENT_LOWAT`): a slow reader's backlog stays in its outbox, where
/// ticks are skipped, not queued. 0 keeps the kernel's default. A failure
/// only loses the bound (the socket works as before), so it is logged.
fn set_send_backlog(stream: &TcpStream, bytes: usize) {
    if bytes == 0 {
        return;
    }
    // Validated to fit (`--send-backlog`).
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt on the stream's open socket, with a pointer to a
    // live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(stream.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NOTSENT_LOWAT, (&raw const value).cast(), len)
    };
    if rc != 0 {
        debug!(error = %io::Error::last_os_error(), "TCP_NOTSENT_LOWAT not set");
    }
}

/// The request head and its answer; for a WebSocket upgrade, the 101 and
/// the connection registered on the shard (its task then runs it).
async fn http_phase(shard: &Rc<Shard>, stream: TcpStream, have_permit: bool) -> Option<(TcpStream, Rc<ConnCell>)> {
    // One deadline from accept covers the TLS handshake and the request
    // head: a client that sends plain HTTP to a TLS port, stalls its
    // handshake or trickles its head holds the slot no longer.
    let deadline = Instant::now() + shard.state.config().limits.handshake_timeout;
    let mut io = match shard.tls_config() {
        None => HttpIo::Plain(stream),
        Some(config) => match TlsLink::new(config) {
            Ok(link) => HttpIo::Tls(stream, Box::new(link)),
            Err(e) => {
                warn!(shard = shard.state.id, "cannot start a TLS session: {e}");
                return None;
            }
        },
    };
    let (head, rest) = read_head(shard, &mut io, deadline).await?;
    match routes::answer(&shard.state, &head, have_permit) {
        Answer::Plain { bytes, status } => {
            answer(shard, &mut io, &bytes, status).await;
            None
        }
        Answer::Matchmake { len } => {
            let (status, bytes) = match read_body(&mut io, rest, len, deadline).await {
                Some(body) => crate::cluster::serve::matchmake(&shard.state, &body).await,
                None => (400, http::error(400, &format!("the {len}-byte body did not arrive in time"), &[])),
            };
            answer(shard, &mut io, &bytes, status).await;
            None
        }
        Answer::Upgrade { accepted, echo, session } => {
            if !write_within(shard, &mut io, &ws::switching_protocols(&accepted)).await {
                return None;
            }
            shard.state.metrics().http_status(101);
            let conn = Connection::new(&shard.state, accepted.format, echo, rest, session, Instant::now());
            let (stream, tls) = io.into_parts();
            let cell = shard.insert(stream.as_raw_fd(), tls, conn);
            Some((stream, cell))
        }
    }
}

/// Reads a request body of `len` bytes (`have`: what came with the head)
/// by `deadline`; `None` when it does not all arrive.
async fn read_body(io: &mut HttpIo, mut have: Vec<u8>, len: usize, deadline: Instant) -> Option<Vec<u8>> {
    let read = async {
        while have.len() < len {
            match io.read_some(&mut have).await {
                Ok(1..) => {}
                _ => return None,
            }
        }
        have.truncate(len);
        Some(have)
    };
    let timed = async {
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
        None
    };
    futures_lite::future::or(read, timed).await
}

/// Reads a request head by `deadline` (through TLS: its handshake first);
/// answers 400 itself for a malformed one. `None`: nothing more to do with
/// this socket.
async fn read_head(shard: &Shard, io: &mut HttpIo, deadline: Instant) -> Option<(RequestHead, Vec<u8>)> {
    let read = async {
        // Read straight into the heap buffer: no array in this future,
        // whose size every connection's task keeps for its whole life.
        let mut buf = Vec::new();
        loop {
            match io.read_some(&mut buf).await {
                Ok(0) => return Err(None),
                Ok(_) => {}
                Err(e) => return Err(Some(Err(e))),
            }
            match parse_head(&buf) {
                Ok(Some((head, len))) => return Ok((head, buf.split_off(len))),
                Ok(None) => {}
                Err(e) => return Err(Some(Ok(e))),
            }
        }
    };
    let timed = async {
        glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
        Err(None)
    };
    let read = futures_lite::future::or(read, timed).await;
    if let HttpIo::Tls(_, link) = &*io {
        let m = shard.state.metrics();
        // A TLS client that never finished its handshake: not TLS at all,
        // refused by rustls, or too slow.
        ShardMetrics::inc(if link.is_handshaking() { &m.tls_handshake_failures } else { &m.tls_handshakes });
    }
    match read {
        Ok(head) => Some(head),
        Err(Some(Ok(e))) => {
            answer(shard, io, &http::error(400, &e.to_string(), &[]), 400).await;
            None
        }
        Err(Some(Err(e))) => {
            debug!(shard = shard.state.id, "request head not read: {e}");
            None
        }
        Err(None) => None,
    }
}

/// Writes a whole plain answer and closes: our side first, then, after
/// reading (and dropping) what the client still sends, such as a request
/// body, for at most a second, so that unread input does not turn the close
/// into a RST that could discard the answer.
async fn answer(shard: &Shard, io: &mut HttpIo, bytes: &[u8], status: u16) {
    shard.state.metrics().http_status(status);
    if !write_within(shard, io, bytes).await {
        return;
    }
    let _ = io.close().await;
    let stream = io.stream();
    let drain = async {
        let mut sink = vec![0u8; 1024];
        let mut total = 0usize;
        while let Ok(n @ 1..) = stream.read(&mut sink).await {
            total += n;
            if total > 1 << 20 {
                break;
            }
        }
    };
    futures_lite::future::or(drain, glommio::timer::sleep(Duration::from_secs(1))).await;
}

/// Writes `bytes` within the handshake timeout: a client that does not
/// read its answer (a zero receive window) cannot hold the task and its
/// connection permit forever. Returns whether everything was written.
async fn write_within(shard: &Shard, io: &mut HttpIo, bytes: &[u8]) -> bool {
    let write = async { io.write_all(bytes).await.is_ok() };
    let timed = async {
        glommio::timer::sleep(shard.state.config().limits.handshake_timeout).await;
        false
    };
    futures_lite::future::or(write, timed).await
}

/// What the driver does next.
enum Next {
    HandOff(HandOff),
    End,
    ShutdownWrite,
    Park,
    Io { want_read: bool },
}

/// What woke the driver.
enum Wake {
    Read(io::Result<usize>),
    Wrote(io::Result<usize>),
    Notified,
}

/// Runs a WebSocket connection (registered as `cell`) to its end, or until
/// it moves to another shard. The connection's state lives in the shard's
/// slab, never in this future (whose size every connection's task keeps
/// for its whole life).
async fn run_websocket(shard: &Rc<Shard>, mut stream: TcpStream, cell: Rc<ConnCell>) {
    // Should the task panic, the connection still leaves the shard's slab
    // and its socket the tick ring's files (or the ring would hold it open).
    let _forget = Forget(shard, Rc::downgrade(&cell));
    let ending = {
        let handoff = drive(shard, &cell, &mut stream).await;
        shard.remove(&cell);
        end(shard, cell, handoff)
    };
    match ending {
        // Boxed: rare, and its future would otherwise enlarge every
        // connection's task.
        Ending::Move(moving) => {
            let Relocation { target, moving, already_read, tls } = *moving;
            Box::pin(super::relocate::send(shard, target, stream, already_read, moving, tls)).await;
        }
        Ending::Close(tls) => {
            if let Some(link) = tls {
                Box::pin(close_tls(&mut stream, link)).await;
            }
            let _ = stream.close().await;
        }
    }
}

/// What is still encrypted (a close frame), then `close_notify`, within the
/// close linger.
async fn close_tls(stream: &mut TcpStream, mut link: Box<TlsLink>) {
    link.close_notify();
    let flush = flush_link(stream, &mut link);
    let _ = futures_lite::future::or(async { flush.await.is_ok() }, async {
        glommio::timer::sleep(CLOSE_LINGER).await;
        false
    })
    .await;
}

/// A connection moving to another shard.
struct Relocation {
    target: usize,
    moving: Moving,
    already_read: Vec<u8>,
    tls: Option<Box<TlsLink>>,
}

/// How a connection's task ends.
enum Ending {
    /// It moves to another shard.
    Move(Box<Relocation>),
    /// Its socket closes (through TLS: `close_notify` first).
    Close(Option<Box<TlsLink>>),
}

/// The connection's end, once its task is done with the socket: what moves
/// to another shard (with a hand-off), or its close counted and its seat
/// given back.
fn end(shard: &Shard, cell: Rc<ConnCell>, handoff: Option<HandOff>) -> Ending {
    let Ok(cell) = Rc::try_unwrap(cell) else {
        // Nothing else keeps a connection past its removal; if something
        // did, the socket still closes here.
        warn!(shard = shard.state.id, "connection still referenced at its end");
        return Ending::Close(None);
    };
    let mut conn = cell.conn.into_inner();
    let tls = cell.tls.into_inner();
    match handoff {
        Some(HandOff { target, request }) => {
            let (moving, already_read) = conn.into_moving(*request);
            Ending::Move(Box::new(Relocation { target, moving, already_read, tls }))
        }
        None => {
            conn.finish();
            Ending::Close(tls)
        }
    }
}

/// The driver loop. Returns the hand-off to make, if the connection is to
/// move to another shard.
async fn drive(shard: &Rc<Shard>, cell: &Rc<ConnCell>, stream: &mut TcpStream) -> Option<HandOff> {
    let outbox = cell.conn.borrow().outbox().clone();
    cell.conn.borrow_mut().on_buffered(Instant::now());
    loop {
        let next = {
            let mut conn = cell.conn.borrow_mut();
            conn.sync(Instant::now());
            if let Some(handoff) = conn.take_handoff() {
                Next::HandOff(handoff)
            } else if conn.is_done() {
                Next::End
            } else if conn.wants_shutdown_write() {
                Next::ShutdownWrite
            } else if conn.in_room() {
                Next::Park
            } else {
                Next::Io { want_read: conn.wants_read() }
            }
        };
        let want_read = match next {
            // Everything answered before the join goes out first.
            // Boxed: rare, and as large as the driver's other states.
            Next::HandOff(handoff) => {
                let deadline = Instant::now() + shard.state.config().limits.send_stall;
                return Box::pin(flush_all(cell, stream, deadline)).await.then_some(handoff);
            }
            Next::End => return None,
            Next::ShutdownWrite => {
                // Through TLS, the close frame is still to be encrypted
                // and sent, then `close_notify`, before the write side shuts.
                if cell.tls.borrow().is_some() {
                    let deadline = Instant::now() + CLOSE_LINGER;
                    if !flush_all(cell, stream, deadline).await {
                        return None;
                    }
                    if let Some(link) = cell.tls.borrow_mut().as_mut() {
                        link.close_notify();
                    }
                    if !flush_all(cell, stream, deadline).await {
                        return None;
                    }
                }
                let _ = stream.shutdown(std::net::Shutdown::Write).await;
                continue;
            }
            Next::Park => {
                park(cell, stream).await;
                continue;
            }
            Next::Io { want_read } => want_read,
        };
        let wake = poll_fn(|cx| {
            if outbox.take_notified() {
                return Poll::Ready(Wake::Notified);
            }
            // A request waiting on another node of the cluster.
            if cell.conn.borrow_mut().poll_later(cx, Instant::now()) {
                return Poll::Ready(Wake::Notified);
            }
            outbox.set_waker(cx.waker(), true);
            // Through TLS, the outbox's bytes are encrypted first.
            cell.seal(&mut cell.conn.borrow_mut(), Instant::now());
            if cell.has_tx(&cell.conn.borrow()) {
                let tx = cell.tx(&outbox);
                if let Poll::Ready(r) = Pin::new(&mut *stream).poll_write(cx, &tx) {
                    return Poll::Ready(Wake::Wrote(r));
                }
            }
            if want_read {
                // Read into the shard's scratch buffer (glommio reads
                // synchronously once the socket is ready) and keep only
                // what arrived: an idle connection holds no read buffer.
                let mut scratch = shard.scratch.borrow_mut();
                if let Poll::Ready(r) = Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]) {
                    if let Ok(n @ 1..) = r {
                        let metrics = shard.state.metrics();
                        cell.receive(&mut cell.conn.borrow_mut(), &scratch[..n], Instant::now(), metrics);
                    }
                    return Poll::Ready(Wake::Read(r));
                }
            }
            Poll::Pending
        })
        .await;
        let now = Instant::now();
        let mut conn = cell.conn.borrow_mut();
        match wake {
            Wake::Read(Ok(0)) => conn.on_eof(now),
            Wake::Read(Err(_)) | Wake::Wrote(Err(_)) => conn.on_io_error(),
            Wake::Wrote(Ok(n)) => cell.sent(&mut conn, n, now),
            Wake::Read(Ok(_)) | Wake::Notified => {}
        }
    }
}

/// Hands the socket to the room's tick pass until the outbox wakes this
/// task (the connection left its room, or is to close). What is pending
/// (the `joined` answer, say) is sent first, at once, rather than with
/// the room's next tick.
async fn park(cell: &ConnCell, stream: &mut TcpStream) {
    let outbox = cell.conn.borrow().outbox().clone();
    {
        let now = Instant::now();
        let mut conn = cell.conn.borrow_mut();
        cell.seal(&mut conn, now);
        let sent = if cell.has_tx(&conn) { send_now(stream.as_raw_fd(), &cell.tx(&outbox)) } else { Ok(0) };
        match sent {
            Ok(n) => cell.sent(&mut conn, n, now),
            Err(_) => conn.on_io_error(),
        }
        if !conn.in_room() {
            return;
        }
    }
    cell.parked.set(true);
    poll_fn(|cx| {
        if outbox.take_notified() {
            Poll::Ready(())
        } else {
            outbox.set_waker(cx.waker(), false);
            Poll::Pending
        }
    })
    .await;
    cell.parked.set(false);
}

/// Removes its connection from the shard when dropped, if it is still
/// there (weak: the connection's end takes the cell whole).
struct Forget<'a>(&'a Shard, Weak<ConnCell>);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(cell) = self.1.upgrade() {
            self.0.remove(&cell);
        }
    }
}

/// One non-blocking `send(2)`: how many bytes the socket took (0 when its
/// buffer is full).
fn send_now(fd: std::os::fd::RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is a valid buffer of its length; `fd` is an open socket.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
        _ => Err(e),
    }
}

/// Writes everything pending to the socket (before a hand-off, or a
/// TLS close) by `deadline`; false when the socket failed or stalled.
async fn flush_all(cell: &ConnCell, stream: &mut TcpStream, deadline: Instant) -> bool {
    let outbox = cell.conn.borrow().outbox().clone();
    loop {
        let bytes = {
            let mut conn = cell.conn.borrow_mut();
            cell.seal(&mut conn, Instant::now());
            if !cell.has_tx(&conn) {
                return true;
            }
            cell.tx(&outbox).to_vec()
        };
        let write = stream.write(&bytes);
        let timed = async {
            glommio::timer::sleep(deadline.saturating_duration_since(Instant::now())).await;
            Err(io::ErrorKind::TimedOut.into())
        };
        match futures_lite::future::or(write, timed).await {
            Ok(n) if n > 0 => cell.sent(&mut cell.conn.borrow_mut(), n, Instant::now()),
            _ => return false,
        }
    }
}
