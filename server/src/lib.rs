//! tickforge's game state server: thread-per-core shards (glommio,
//! io_uring) hosting authoritative rooms over WebSocket.
//!
//! # Layout
//! One process runs `--shards N` pinned executors. Each accepts on the same
//! port (SO_REUSEPORT) and owns its connections and rooms outright: the
//! per-message path takes no lock and crosses no thread. Dependencies run
//! one way, from the sockets down to the game:
//!
//! - `runtime`: the only module that knows glommio and io_uring: shards,
//!   accept, each connection's task, the rooms' tick pass (one batch of
//!   receives and one of sends per pass, for every player of the rooms it
//!   ticks), the housekeeping sweep, hand-offs between shards.
//! - [`http`] and [`ws`]: bytes before and around the WebSocket: request
//!   heads, routes and plain answers; the handshake checks and the framing
//!   around tungstenite.
//! - `conn`: one connection, sans-IO: bytes and the time in, frames out
//!   through its [`outbox`]; limits, keepalive, every close with its reason.
//! - `requests`: one function per request kind.
//! - `shard_state`: what a shard owns (rooms, ids), no sockets.
//! - [`room`]: a room, its players' [`room::Seat`]s, its per-player fan-out
//!   and its drift-free tick schedule; [`game`]: the games.
//! - [`directory`]: the cross-shard room directory; [`metrics`]: per-shard
//!   figures, Prometheus text; [`config`]: every setting and limit;
//!   [`signals`]: SIGINT/SIGTERM for a binary serving tickforge.
//!
//! A studio's own game implements [`game::Game`] and is registered in
//! [`ServerConfig::games`] before [`start`]; GAMES.md walks through one.
//!
//! # Flow of one input and one tick
//! A player's socket is read by its room's tick pass, just before the room
//! ticks: the input frame goes through tungstenite and the codec into the
//! player's slot in the room. The game steps, the room encodes the delta
//! from each distinct baseline once and writes each player's frame into its
//! outbox, and the pass sends every player's bytes in one batch.
//!
//! # Example
//! ```no_run
//! use tickforge_server::{start, ServerConfig};
//!
//! let mut config = ServerConfig::default();
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! config.shards = 1;
//! let server = start(config).expect("server starts");
//! println!("listening on ws://{}/ws", server.local_addr());
//! server.shutdown();
//! server.wait().expect("every shard drained");
//! ```

pub mod auth;
pub mod cluster;
pub mod config;
mod conn;
pub mod directory;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod game;
pub mod http;
pub mod metrics;
pub mod monitor;
pub mod outbox;
mod requests;
pub mod room;
mod runtime;
mod shard_state;
pub mod signals;
pub mod tls;
pub mod ws;

pub use config::{ConfigError, Limits, ServerConfig};

use metrics::Metrics;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;
use tracing::info;

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another process already listens on the address (or holds it):
    /// tickforge never joins another process's port, it would split the
    /// players between the two.
    #[error("cannot listen on {addr}: address in use (another process listens there)")]
    AddrInUse {
        /// The address.
        addr: SocketAddr,
    },
    /// The listen address could not be bound otherwise.
    // The message carries the OS error; it is not also the `source()`, so
    // that a printed chain (anyhow's `{:#}`) names it once.
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: io::Error,
    },
    /// The shard executors could not start.
    #[error("cannot start the shards: {0}")]
    Executors(String),
    /// The cluster membership could not start.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterStartError),
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A shard's thread ended abnormally.
#[derive(Debug, Error)]
#[error("{} shard(s) failed: {}", failures.len(), failures.join("; "))]
pub struct ShardFailed {
    /// What each failed shard reported.
    pub failures: Vec<String>,
}

/// A running server: its address, its metrics, and the way to stop it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    metrics: Metrics,
    threads: Option<glommio::PoolThreadHandles<()>>,
    cluster: Option<cluster::Cluster>,
    tls: Option<Arc<tls::TlsAcceptor>>,
}

impl ServerHandle {
    /// The address the shards accept on (the real port when 0 was asked).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's figures (what `GET /metrics` renders).
    #[must_use]
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// This node's cluster membership (started with `--cluster`).
    #[must_use]
    pub fn cluster(&self) -> Option<&cluster::Cluster> {
        self.cluster.as_ref()
    }

    /// Whether the port speaks TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Loads the TLS certificate and key again (SIGHUP): new connections
    /// get the new certificate; open connections keep theirs and stay.
    /// Returns the new certificate's SHA-256 fingerprint.
    ///
    /// # Errors
    /// As [`tls::load`] (the certificate served so far stays); a server
    /// without TLS has nothing to reload ([`tls::TlsError::NotTls`]).
    pub fn reload_tls(&self) -> Result<String, tls::TlsError> {
        let Some(acceptor) = &self.tls else { return Err(tls::TlsError::NotTls) };
        let loaded = acceptor.reload()?;
        info!(fingerprint = %loaded.fingerprint, not_after = %loaded.not_after, "TLS certificate reloaded");
        Ok(loaded.fingerprint)
    }

    /// Starts a graceful shutdown: `/healthz` and new handshakes answer
    /// 503, rooms send `room_closing`, connections close with 1001.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(c) = &self.cluster {
            c.set_draining(true);
        }
    }

    /// Waits until every shard has drained (at most the drain timeout after
    /// [`ServerHandle::shutdown`]).
    ///
    /// # Errors
    /// [`ShardFailed`] when a shard's thread ended abnormally (a panic).
    pub fn wait(mut self) -> Result<(), ShardFailed> {
        let Some(threads) = self.threads.take() else { return Ok(()) };
        let failures: Vec<String> =
            threads.join_all().into_iter().filter_map(Result::err).map(|e| e.to_string()).collect();
        if let Some(c) = self.cluster.take() {
            c.shutdown();
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ShardFailed { failures })
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(threads) = self.threads.take() {
            self.stop.store(true, Ordering::Relaxed);
            threads.join_all();
        }
        if let Some(c) = self.cluster.take() {
            c.shutdown();
        }
    }
}

/// Starts the server: binds, spawns the shards, and returns at once.
///
/// # Errors
/// [`StartError`] for a bad configuration, an address that cannot be
/// bound, or executors that cannot start.
pub fn start(config: ServerConfig) -> Result<ServerHandle, StartError> {
    config.validate()?;
    let shards = config.shards;
    // The node joins the directory (in the background: nothing here waits
    // on Redis); each shard publishes its rooms and answers other nodes'
    // requests through its inbox.
    let (cluster, link) = match config.cluster.clone() {
        Some(c) => {
            let (cluster, inboxes) = cluster::Cluster::start(c, shards)?;
            cluster.set_capacity(u32::try_from(config.connections_per_shard() * shards).unwrap_or(u32::MAX));
            let link = cluster::serve::ClusterLink::new(cluster.clone(), inboxes);
            (Some(cluster), Some(link))
        }
        None => (None, None),
    };
    let tls = match &config.tls {
        Some(source) => {
            let loaded = tls::load(source)?;
            if *source == tls::TlsSource::SelfSigned {
                info!(fingerprint = %loaded.fingerprint, "TLS: self-signed certificate for localhost and 127.0.0.1 (development only)");
            } else {
                info!(fingerprint = %loaded.fingerprint, not_after = %loaded.not_after, "TLS certificate loaded");
            }
            Some(Arc::new(tls::TlsAcceptor::new(source.clone(), &loaded)))
        }
        None => None,
    };
    let metrics = Metrics::new(shards);
    let stop = Arc::new(AtomicBool::new(false));
    let directory = directory::Directory::default();
    let running = runtime::start(config, metrics.clone(), stop.clone(), directory, tls.clone(), link)?;
    let addr = running.addr;
    let shard_word = if shards == 1 { "shard" } else { "shards" };
    let (http, ws) = if tls.is_some() { ("https", "wss") } else { ("http", "ws") };
    info!("tickforge listening on {http}://{addr}/ (WebSocket: {ws}://{addr}/ws), {shards} {shard_word}");
    Ok(ServerHandle { addr, stop, metrics, threads: Some(running.threads), cluster, tls })
}

/// Runs the server until `shutdown` completes, then drains and returns
/// (mini-redis's `run(listener, shutdown)`).
///
/// # Errors
/// As [`start`]; [`RunError::Shard`] when a shard failed.
pub fn run(config: ServerConfig, shutdown: impl Future) -> Result<(), RunError> {
    let server = start(config)?;
    futures_lite::future::block_on(shutdown);
    server.shutdown();
    server.wait()?;
    Ok(())
}

/// Why [`run`] failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RunError {
    /// The server could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// A shard failed while running.
    #[error(transparent)]
    Shard(#[from] ShardFailed),
}
