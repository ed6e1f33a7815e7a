//! The mesh that carries connections between shards.
//!
//! A room lives on one shard; a connection that joins a room elsewhere is
//! handed to that shard (`relocate.rs` does it), so that all its later
//! traffic is served where the room is, with nothing visible to the client.
//! What crosses the mesh is a [`Handoff`]: the socket as a duplicated fd
//! (re-wrapped as a glommio `TcpStream` on the target shard, the original
//! dropped with the old task), the bytes read from it but not yet parsed,
//! and the caller's payload (session state, pending join).
//!
//! This is control-plane traffic: one message per hand-off, never per
//! message of the connection.

use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers, Senders};
use std::os::fd::OwnedFd;
use thiserror::Error;

/// Why a hand-off could not be made.
#[derive(Debug, Error)]
#[non_exhaustive]
pub(crate) enum HandoffError {
    /// The target shard is gone (shutting down) or the mesh cannot be joined.
    #[error("shard {0} does not take hand-offs")]
    ShardGone(usize),
}

/// A connection on its way to another shard: `Send`, so it can cross the
/// mesh. `T` is the caller's session state and pending request.
#[derive(Debug)]
pub(crate) struct Handoff<T> {
    /// The duplicated socket.
    pub(crate) fd: OwnedFd,
    /// Bytes the client sent that were read but not parsed.
    pub(crate) already_read: Vec<u8>,
    /// The caller's payload.
    pub(crate) payload: T,
}

/// The hand-off mesh, built once before the shards start and joined by
/// each of them.
#[derive(Debug)]
pub(crate) struct HandoffMesh<T: Send>(MeshBuilder<Handoff<T>, Full>);

impl<T: Send> Clone for HandoffMesh<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + 'static> HandoffMesh<T> {
    /// A mesh between `shards` shards, each channel holding `capacity`
    /// hand-offs in flight.
    #[must_use]
    pub(crate) fn new(shards: usize, capacity: usize) -> Self {
        Self(MeshBuilder::full(shards, capacity))
    }

    /// Joins from the current shard (waits until every shard has joined).
    ///
    /// # Errors
    /// `HandoffError::ShardGone(0)` when the mesh cannot be joined.
    pub(crate) async fn join(self) -> Result<(HandoffSender<T>, Receivers<Handoff<T>>), HandoffError> {
        let (senders, receivers) = self.0.join().await.map_err(|_| HandoffError::ShardGone(0))?;
        Ok((HandoffSender(senders), receivers))
    }
}

/// This shard's end for sending hand-offs.
#[derive(Debug)]
pub(crate) struct HandoffSender<T: Send>(Senders<Handoff<T>>);

impl<T: Send> HandoffSender<T> {
    /// This shard's index in the mesh.
    #[must_use]
    pub(crate) fn shard(&self) -> usize {
        self.0.peer_id()
    }

    /// Sends a hand-off to shard `to`.
    ///
    /// # Errors
    /// [`HandoffError::ShardGone`] when that shard no longer takes any (the
    /// connection is then closed by the drop of its socket).
    pub(crate) async fn send_to(&self, to: usize, handoff: Handoff<T>) -> Result<(), HandoffError> {
        self.0.send_to(to, handoff).await.map_err(|_| HandoffError::ShardGone(to))
    }
}
