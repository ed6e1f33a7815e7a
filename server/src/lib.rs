//! tickforge's game state server: thread-per-core shards (glommio,
//! io_uring) hosting authoritative rooms over WebSocket.
//!
//! # Layout
//! One process runs `--shards N` pinned executors. Each accepts on the same
//! port (SO_REUSEPORT) and owns its connections and rooms outright: the
//! per-message path takes no lock and crosses no thread.
//!
//! - [`config`]: [`ServerConfig`] and [`Limits`], documented, validated once.
//! - [`cluster`]: many processes as one cluster through Redis (directory,
//!   view, seat reservations, node-to-node requests).
//! - `shard`: one executor: accept loop, connection slab and permits, rooms
//!   and their tick tasks, graceful drain.
//! - [`http`]: request heads and the plain routes (`/`, `/healthz`,
//!   `/metrics`, `/rooms`).
//! - [`ws`]: the RFC 6455 handshake and the byte pipe tungstenite runs on.
//! - `conn`: one connection's driver loop: reads, limits, requests, inputs,
//!   the outbox's writes, keepalive, every close with its reason.
//! - `requests`: one function per request kind.
//! - [`room`], [`outbox`], [`schedule`], [`game`]: rooms, their per-player
//!   fan-out, the drift-free tick schedule, and the games.
//! - [`directory`]: the cross-shard room directory (control plane).
//! - [`handoff`] and `relocate`: moving a connection to the shard that
//!   hosts its room (the socket and unparsed bytes; the session and join).
//! - [`metrics`]: per-shard figures, Prometheus text.
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

pub mod cluster;
pub mod config;
mod conn;
pub mod directory;
pub mod game;
pub mod handoff;
pub mod http;
pub mod metrics;
pub mod outbox;
mod relocate;
mod requests;
pub mod room;
pub mod schedule;
mod shard;
mod web;
pub mod ws;

pub use config::{ConfigError, Limits, ServerConfig};

use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use metrics::Metrics;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;
use tracing::info;

/// io_uring buffer memory per shard: small, the server does no file I/O
/// (glommio's default is 10 MiB, over this machine's 8 MiB memlock).
const IO_MEMORY: usize = 512 * 1024;

/// Why the server could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// The shard executors could not start.
    #[error("cannot start the shards: {0}")]
    Executors(String),
    /// The cluster membership could not start.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterStartError),
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

/// Binds `shards` listening sockets to `addr` with SO_REUSEPORT (the first
/// resolves port 0; the others bind the port it got). Returns their fds.
fn bind_listeners(addr: SocketAddr, shards: usize) -> io::Result<(SocketAddr, Vec<RawFd>)> {
    let mut fds = Vec::with_capacity(shards);
    let mut bound = addr;
    for _ in 0..shards {
        let fd = reuseport_listener(bound)?;
        // SAFETY: `fd` is a listening socket we own; borrowed back below.
        let std = unsafe { StdListener::from_raw_fd(fd) };
        bound = std.local_addr()?;
        fds.push(std.into_raw_fd());
    }
    Ok((bound, fds))
}

fn reuseport_listener(addr: SocketAddr) -> io::Result<RawFd> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket syscalls on an fd this function owns; on any
    // failure the fd is closed before returning.
    unsafe {
        let fd = libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fail = |fd| {
            let e = io::Error::last_os_error();
            libc::close(fd);
            Err(e)
        };
        let one: libc::c_int = 1;
        let len = size_of::<libc::c_int>() as libc::socklen_t;
        let one_ptr = (&raw const one).cast();
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, one_ptr, len) != 0
            || libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, one_ptr, len) != 0
        {
            return fail(fd);
        }
        let rc = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                    sin_zero: [0; 8],
                };
                libc::bind(fd, (&raw const sin).cast(), size_of_val(&sin) as libc::socklen_t)
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                    sin6_scope_id: a.scope_id(),
                };
                libc::bind(fd, (&raw const sin6).cast(), size_of_val(&sin6) as libc::socklen_t)
            }
        };
        if rc != 0 || libc::listen(fd, 1024) != 0 {
            return fail(fd);
        }
        Ok(fd)
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
    // Phase 1 of the cluster: the node joins the directory and heartbeats
    // its capacity; publishing rooms and serving the shard inboxes is wired
    // with the request path (until then requests to it are refused).
    let cluster = match config.cluster.clone() {
        Some(c) => {
            let (cluster, _inboxes) = cluster::Cluster::start(c, shards)?;
            cluster.set_capacity(u32::try_from(config.connections_per_shard() * shards).unwrap_or(u32::MAX));
            Some(cluster)
        }
        None => None,
    };
    let (addr, fds) =
        bind_listeners(config.listen, shards).map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let metrics = Metrics::new(shards);
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let placement = if config.pin && shards <= cores {
        PoolPlacement::MaxSpread(shards, None)
    } else {
        PoolPlacement::Unbound(shards)
    };
    let shared = shard::Shared {
        config: Arc::new(config),
        metrics: metrics.clone(),
        directory: directory::Directory::default(),
        stop: stop.clone(),
    };
    let fds: Arc<[RawFd]> = fds.into();
    let mesh = relocate::mesh(shards);
    let threads = LocalExecutorPoolBuilder::new(placement)
        .name("tickforge-shard")
        .io_memory(IO_MEMORY)
        .ring_depth(256)
        .on_all_shards({
            let fds = fds.clone();
            move || shard::run_shard(shared, fds, mesh)
        })
        .map_err(|e| StartError::Executors(e.to_string()))?;
    info!("tickforge listening on http://{addr}/ (WebSocket: ws://{addr}/ws), {shards} shards");
    Ok(ServerHandle { addr, stop, metrics, threads: Some(threads), cluster })
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
