//! Node-to-node requests: the owner side ([`SeatOwner`], implemented by a
//! shard; [`IncomingRequest`], what it is asked) and the asking side's
//! outcome ([`RequestError`]).
//!
//! The owner of a room is the only one who can hold a seat in it, so a
//! request to reserve a seat (or to create a room and reserve a seat in it)
//! travels to the owner: through Redis to another node's listener thread,
//! then through a [`ShardInbox`] to the shard that hosts the room, which
//! answers synchronously on its own thread.

use super::config::RESERVATION_TTL;
use super::node::Inner;
use super::records::{Ask, JsonMap, Refusal, RefuseCode, Seat};
use super::reservations::Reservation;
use super::wake::MailboxReceiver;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tickforge_protocol::ids::RoomId;

/// What a shard does for other nodes. Called on the shard's own thread, so
/// an implementation reaches its rooms directly (no lock, no wait).
pub trait SeatOwner {
    /// Holds a seat in `room_id` (a room of this shard) for `ttl`: the seat
    /// counts as taken until the reservation is redeemed or expires.
    ///
    /// # Errors
    /// A [`Refusal`]: `not_found` (no such room here), `room_full`,
    /// `overloaded` (too many reservations, draining).
    fn reserve(&self, room_id: &RoomId, ttl: Duration) -> Result<Reservation, Refusal>;

    /// A public room of `game` with `options` on this shard for a player
    /// another node sends (asked when that node saw no open room here):
    /// the shard may pick an open room it has, else it creates one; the
    /// caller then reserves a seat in it.
    ///
    /// # Errors
    /// A [`Refusal`]: `not_found` (no such game), `refused` (the game
    /// refused the options), `overloaded` (at the rooms limit, draining).
    fn create(&self, game: &str, options: &JsonMap) -> Result<RoomId, Refusal>;
}

/// The requests from other nodes for one shard (from
/// [`super::Cluster::start`]): drain it with [`serve_requests`].
pub type ShardInbox = MailboxReceiver<IncomingRequest>;

/// Where an answer goes.
#[derive(Debug)]
pub(crate) enum ReplyTo {
    /// A request of another node: pushed on its replies list.
    Node {
        /// The asking node.
        node: String,
        /// Its request id.
        id: u64,
    },
    /// A request of this node: fills its pending slot directly.
    Local {
        /// The request id.
        id: u64,
    },
}

/// One request from a node (this one or another) to this shard. Answered
/// exactly once: by [`IncomingRequest::answer`], or as `internal` if it is
/// dropped unanswered.
#[derive(Debug)]
pub struct IncomingRequest {
    pub(crate) ask: Ask,
    pub(crate) reply_to: Option<ReplyTo>,
    pub(crate) inner: Arc<Inner>,
}

impl IncomingRequest {
    /// What is asked.
    #[must_use]
    pub fn ask(&self) -> &Ask {
        &self.ask
    }

    /// Asks `owner` and sends the answer (never blocks: the answer is
    /// queued for the writer thread, or fills a local waiter).
    pub fn answer(mut self, owner: &impl SeatOwner) {
        let result = match &self.ask {
            Ask::Reserve { room_id } => owner.reserve(room_id, RESERVATION_TTL),
            Ask::Create { game, options } => {
                owner.create(game, options).and_then(|room_id| owner.reserve(&room_id, RESERVATION_TTL))
            }
        };
        if let Some(to) = self.reply_to.take() {
            self.inner.answer(to, result);
        }
    }
}

impl Drop for IncomingRequest {
    fn drop(&mut self) {
        if let Some(to) = self.reply_to.take() {
            self.inner.answer(to, Err(Refusal::new(RefuseCode::Internal, "the request was dropped unanswered")));
        }
    }
}

/// Answers every request of `inbox` with `owner` until the cluster shuts
/// down. Spawn it once per shard on the shard's executor.
pub async fn serve_requests(mut inbox: ShardInbox, owner: impl SeatOwner) {
    while let Some(request) = inbox.recv().await {
        request.answer(&owner);
    }
}

/// Why a request to a node gave no seat.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The owner refused (no such room, full, ...).
    #[error("{node} refused: {refusal}")]
    Refused {
        /// The owner.
        node: String,
        /// Its answer.
        refusal: Refusal,
    },
    /// No answer within the request timeout.
    #[error("{node} did not answer within {after:?}")]
    Timeout {
        /// The asked node.
        node: String,
        /// The bounded wait.
        after: Duration,
    },
    /// Redis cannot be reached: no other node can be asked now.
    #[error("the cluster is unreachable: {0}")]
    Unavailable(String),
    /// No live node by that id in the view.
    #[error("no live node {0}")]
    UnknownNode(String),
    /// Too many requests awaiting answers (`--cluster-max-requests`).
    #[error("{0} cluster requests are already waiting")]
    Overloaded(usize),
    /// This node is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

impl RequestError {
    /// The reject code for the client: the owner's code when it refused,
    /// `not_found` for a node that is gone, else `overloaded` (try again).
    #[must_use]
    pub fn code(&self) -> RefuseCode {
        match self {
            Self::Refused { refusal, .. } => refusal.code,
            Self::UnknownNode(_) => RefuseCode::NotFound,
            _ => RefuseCode::Overloaded,
        }
    }
}

/// What a request to a node ends in.
pub type SeatResult = Result<Seat, RequestError>;
