//! The server's side of a hand-off: moving a connection to the shard that
//! hosts the room it joins, over [`crate::handoff`]'s mesh.
//!
//! A join of a room on another shard is not answered where it arrives.
//! Everything the connection was sent before it is flushed; then the socket
//! (a duplicated fd), the bytes already read but not yet parsed (our
//! [`crate::ws::Wire`] hands tungstenite one frame at a time, so they are
//! frame-aligned), the session and the pending join travel to the room's
//! shard, which rebuilds the WebSocket, answers the join and serves the
//! connection from then on. The client sees only its `joined`; after it,
//! every message of that player is served where the room is.

use crate::conn::Conn;
use crate::handoff::{Handoff, HandoffMesh, HandoffSender};
use crate::metrics::ShardMetrics;
use crate::requests::Session;
use crate::shard::Shard;
use futures_lite::FutureExt as _;
use glommio::channels::channel_mesh::Receivers;
use glommio::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use tickforge_protocol::codec::Format;
use tickforge_protocol::ids::RequestId;
use tickforge_protocol::message::Request;
use tracing::{debug, warn};

/// Hand-offs that may wait in one channel between two shards.
const CHANNEL_DEPTH: usize = 256;

/// The mesh every shard joins at start.
pub(crate) type SharedMesh = HandoffMesh<Moving>;

/// This shard's sending end.
pub(crate) type LocalMesh = HandoffSender<Moving>;

/// A new mesh for `shards` shards.
pub(crate) fn mesh(shards: usize) -> SharedMesh {
    HandoffMesh::new(shards, CHANNEL_DEPTH)
}

/// A connection's state in transit (the hand-off's payload).
#[derive(Debug)]
pub(crate) struct Moving {
    /// The negotiated wire format.
    pub(crate) format: Format,
    /// The session (id, authentication).
    pub(crate) session: Session,
    /// The request-rate bucket's level.
    pub(crate) req_tokens: f64,
    /// The join to answer on arrival.
    pub(crate) request: Option<(RequestId, Request)>,
}

/// Joins the mesh; returns this shard's index (its shard id) and its ends.
pub(crate) async fn join(mesh: SharedMesh) -> Option<(usize, LocalMesh, Receivers<Handoff<Moving>>)> {
    let (sender, receivers) = mesh.join().await.ok()?;
    Some((sender.shard(), sender, receivers))
}

/// Starts receiving hand-offs from every other shard.
pub(crate) fn start(shard: &Rc<Shard>, mut receivers: Receivers<Handoff<Moving>>) {
    for (from, receiver) in receivers.streams() {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Some(handoff) = receiver.recv().await {
                let Handoff { fd, already_read, payload } = handoff;
                // SAFETY: the fd was duplicated for this hand-off and its
                // ownership travels with it; it is a connected TCP socket.
                let stream = unsafe { TcpStream::from_raw_fd(fd.into_raw_fd()) };
                debug!(shard = shard.id, from, "connection handed in");
                ShardMetrics::inc(&shard.metrics().handoffs_in);
                let mut payload = payload;
                let request = payload.request.take();
                let mut conn = Conn::from_moving(&shard, payload, already_read);
                let shard = shard.clone();
                glommio::spawn_local(async move {
                    // The sender checked this shard's connections gauge
                    // before handing off (`Shard::is_full`); a permit can
                    // still be missing when several hand-offs crossed, and
                    // the connection is then served over the limit by that
                    // small, bounded margin rather than dropped mid-session.
                    let permit = shard.permits.try_acquire_static_permit(1).ok();
                    ShardMetrics::gauge(&shard.metrics().connections, 1);
                    let task = AssertUnwindSafe(conn.run_with(stream, request));
                    if task.catch_unwind().await.is_err() {
                        warn!(shard = shard.id, "connection task panicked; connection dropped");
                        shard.metrics().close(&tickforge_protocol::CloseReason::Internal);
                    }
                    ShardMetrics::gauge(&shard.metrics().connections, -1);
                    drop(permit);
                })
                .detach();
            }
        })
        .detach();
    }
}

/// Sends a connection to shard `target`. On failure the socket is closed
/// (the client sees the connection drop, as if the server had failed).
pub(crate) async fn send(shard: &Rc<Shard>, target: usize, stream: TcpStream, already_read: Vec<u8>, moving: Moving) {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on an open fd we own returns a new fd
    // that keeps the socket open once `stream` (and its fd) is dropped.
    let dup = unsafe { libc::fcntl(stream.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) };
    drop(stream);
    if dup < 0 {
        warn!(shard = shard.id, "hand-off failed: dup: {}", std::io::Error::last_os_error());
        return;
    }
    // SAFETY: `dup` is a fresh fd owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(dup) };
    let Some(mesh) = shard.mesh.get() else {
        warn!(shard = shard.id, "hand-off failed: no mesh");
        return;
    };
    match mesh.send_to(target, Handoff { fd, already_read, payload: moving }).await {
        Ok(()) => ShardMetrics::inc(&shard.metrics().handoffs_out),
        Err(e) => warn!(shard = shard.id, target, "hand-off failed: {e}"),
    }
}
