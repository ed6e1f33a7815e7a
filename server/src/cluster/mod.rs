//! Many tickforge processes as one cluster, through Redis.
//!
//! Each node (one process, `--cluster redis://...`) heartbeats its address
//! and load, publishes its rooms, reads everyone else's into a view, and
//! asks other nodes, through Redis, to hold a seat for a client it sends
//! their way. DESIGN.md (Cluster) documents the keys and the flows.
//!
//! # Layout
//! - [`config`]: [`ClusterConfig`], every interval, timeout and bound.
//! - [`records`]: what is stored and said: the Redis [`Keys`], the
//!   [`NodeRecord`] heartbeat, the [`RoomRecord`] row, the node requests
//!   and replies, the [`Seat`] a redirect carries.
//! - `node`: [`Cluster`], the handle the shards share: publish rooms, read
//!   the [`ClusterView`], ask other nodes. No method waits on Redis.
//! - `writer` and `listener`: the two helper threads, the only code that
//!   talks to Redis (blocking calls, each bounded by the Redis timeout).
//! - [`view`]: [`ClusterView`]: list rooms, find the fullest open room,
//!   the least-loaded node.
//! - [`requests`]: the owner side ([`SeatOwner`], [`serve_requests`]) and
//!   the asking side's [`RequestError`].
//! - [`reservations`]: [`ReservationBook`], the owner's single-use,
//!   10-second seat reservations.
//! - [`health`]: [`Health`] (`/healthz`) and [`ClusterStats`] (`/metrics`).
//! - `wake`: the cross-thread mailbox and reply slot that wake glommio tasks.
//!
//! # Why a helper thread and the `redis` crate's blocking API
//! The shards are glommio executors: a blocking call there stalls every
//! room of the shard. A RESP client over glommio sockets would keep Redis
//! I/O on the shards, but then every shard holds its own connection and
//! heartbeat logic runs on the hot path's executor. Instead one writer
//! thread and one listener thread per process own all Redis I/O with the
//! `redis` crate's synchronous API (mature parsing, URLs, pipelines,
//! timeouts) and no async runtime. Shards talk to them only through
//! non-blocking queues: `publish_room` marks a row; requests return a
//! future that the helper fills and wakes (glommio wakes a task woken from
//! a foreign thread through its eventfd; see `wake`).
//!
//! # Example
//! ```no_run
//! use tickforge_server::cluster::{Cluster, ClusterConfig, RoomRecord};
//! use tickforge_protocol::ids::RoomId;
//!
//! let config = ClusterConfig::new("redis://127.0.0.1:6379", "ws://10.0.0.5:7700/ws");
//! let (cluster, _inboxes) = Cluster::start(config, 1).expect("valid settings");
//! cluster.set_capacity(8192);
//! let room = RoomId(format!("r-{}-0-1", cluster.node_tag()));
//! cluster.publish_room(0, RoomRecord::new(room, "arena", 8, 30));
//! for row in cluster.view().list(Some("arena"), None) {
//!     println!("{} on {}", row.room.room_id, row.node.url);
//! }
//! cluster.shutdown();
//! ```

pub mod config;
pub mod health;
mod listener;
mod node;
pub mod records;
pub mod requests;
pub mod reservations;
pub(crate) mod serve;
pub mod view;
mod wake;
mod writer;

pub use config::{ClusterConfig, RESERVATION_TTL};
pub use health::{ClusterStats, Health};
pub use node::{Cluster, ClusterStartError};
pub use records::{Ask, JsonMap, Keys, NodeRecord, Refusal, RefuseCode, RoomRecord, Seat};
pub use requests::{serve_requests, IncomingRequest, RequestError, SeatOwner, SeatResult, ShardInbox};
pub use reservations::{Reservation, ReservationBook, ReservationError};
pub use view::{ClusterView, RoomRef};
pub use wake::{MailboxReceiver, Recv, ReplyFuture};
