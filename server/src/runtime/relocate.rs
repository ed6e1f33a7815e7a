//! The server's side of a hand-off: moving a connection to the shard that
//! hosts the room it joins, over [`crate::handoff`]'s mesh.
//!
//! A join of a room on another shard is not answered where it arrives.
//! Everything the connection was sent before it is flushed; then the socket
//! (a duplicated fd), the bytes already read but not yet parsed (our
//! [`crate::ws::Wire`] hands tungstenite one frame at a time, so they are
//! frame-aligned), the session and the pending join ([`Moving`]) travel to
//! the room's shard, which rebuilds the connection, answers the join and
//! serves it from then on. The client sees only its `joined`; after it,
//! every message of that player is served where the room is.

use super::handoff::{Handoff, HandoffMesh, HandoffSender};
use super::shard::Shard;
use super::tls::TlsLink;
use crate::conn::{Connection, Moving};
use crate::metrics::ShardMetrics;
use glommio::channels::channel_mesh::Receivers;
use glommio::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Instant;
use tracing::{debug, warn};

/// Hand-offs that may wait in one channel between two shards.
const CHANNEL_DEPTH: usize = 256;

/// What a hand-off carries besides the socket: the connection's state and,
/// on a TLS port, its TLS session (keys, sequence numbers, any partial
/// record), which goes on where the room is.
#[derive(Debug)]
pub(crate) struct Arriving {
    /// The connection's state and pending join.
    pub(crate) moving: Moving,
    /// Its TLS session.
    pub(crate) tls: Option<Box<TlsLink>>,
}

/// The mesh every shard joins at start.
pub(crate) type SharedMesh = HandoffMesh<Arriving>;

/// This shard's sending end.
pub(crate) type LocalMesh = HandoffSender<Arriving>;

/// A new mesh for `shards` shards.
pub(crate) fn mesh(shards: usize) -> SharedMesh {
    HandoffMesh::new(shards, CHANNEL_DEPTH)
}

/// Joins the mesh; returns this shard's index (its shard id) and its ends.
pub(crate) async fn join(mesh: SharedMesh) -> Option<(usize, LocalMesh, Receivers<Handoff<Arriving>>)> {
    let (sender, receivers) = mesh.join().await.ok()?;
    Some((sender.shard(), sender, receivers))
}

/// Starts receiving hand-offs from every other shard.
pub(crate) fn start(shard: &Rc<Shard>, mut receivers: Receivers<Handoff<Arriving>>) {
    for (from, receiver) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(handoff) = receiver.recv().await {
                let Handoff { fd, already_read, payload } = handoff;
                // SAFETY: the fd was duplicated for this hand-off and its
                // ownership travels with it; it is a connected TCP socket.
                let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
                debug!(shard = shard.state.id, from, "connection handed in");
                ShardMetrics::inc(&shard.state.metrics().handoffs_in);
                let Arriving { moving, tls } = payload;
                let conn = Connection::arrived(&shard.state, moving, already_read, Instant::now());
                let cell = shard.insert(stream.as_raw_fd(), tls, conn);
                glommio::spawn_local(super::driver::serve_arrived(shard.clone(), stream, cell)).detach();
            }
        })
        .detach();
    }
}

/// Sends a connection to shard `target`. On failure the socket is closed
/// (the client sees the connection drop, as if the server had failed).
pub(crate) async fn send(
    shard: &Rc<Shard>,
    target: usize,
    stream: TcpStream,
    already_read: Vec<u8>,
    moving: Moving,
    tls: Option<Box<TlsLink>>,
) {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an open fd we own returns a new fd
    // that keeps the socket open once `stream` (and its fd) is dropped.
    let dup = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    drop(stream);
    if dup < 0 {
        warn!(shard = shard.state.id, "hand-off failed: dup: {}", std::io::Error::last_os_error());
        return;
    }
    // SAFETY: `dup` is a fresh fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(dup) };
    let Some(mesh) = shard.mesh.get() else {
        warn!(shard = shard.state.id, "hand-off failed: no mesh");
        return;
    };
    match mesh.send_to(target, Handoff { fd, already_read, payload: Arriving { moving, tls } }).await {
        Ok(()) => ShardMetrics::inc(&shard.state.metrics().handoffs_out),
        Err(e) => warn!(shard = shard.state.id, target, "hand-off failed: {e}"),
    }
}
