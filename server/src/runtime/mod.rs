//! The runtime: the only part of the server that knows glommio and
//! io_uring. It binds the port, starts one pinned executor per shard, and
//! per shard claims a listening socket ([`listen`]) and runs the accept loop ([`shard`]), each connection's task
//! ([`driver`]), the rooms' tick pass with its batched socket I/O
//! ([`ticker`], [`ring`]), the housekeeping sweep, and the hand-off of
//! connections between shards ([`handoff`], [`relocate`]).
//!
//! Below it everything is sans-IO: [`crate::conn::Connection`] takes bytes
//! and the time, rooms take the time, requests change the shard's state.

mod driver;
mod handoff;
mod listen;
mod relocate;
mod ring;
mod shard;
mod ticker;
mod tls;

use crate::metrics::Metrics;
use crate::shard_state::Shared;
use crate::{ServerConfig, StartError};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

/// io_uring buffer memory per shard: small, the server does no file I/O
/// (glommio's default is 10 MiB, over this machine's 8 MiB memlock).
const IO_MEMORY: usize = 512 * 1024;

/// The running shards.
pub(crate) struct Running {
    /// The address they accept on.
    pub(crate) addr: SocketAddr,
    /// Their threads.
    pub(crate) threads: glommio::PoolThreadHandles<()>,
}

/// Binds the port and starts the shards.
///
/// # Errors
/// [`StartError`] for an address that cannot be bound or executors that
/// cannot start.
pub(crate) fn start(
    config: ServerConfig,
    metrics: Metrics,
    stop: Arc<AtomicBool>,
    directory: crate::directory::Directory,
    tls: Option<Arc<crate::tls::TlsAcceptor>>,
    cluster: Option<crate::cluster::serve::ClusterLink>,
) -> Result<Running, StartError> {
    let shards = config.shards;
    let (addr, fds) = listen::bind_listeners(config.listen, shards)?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let placement = if config.pin && shards <= cores {
        PoolPlacement::MaxSpread(shards, None)
    } else {
        PoolPlacement::Unbound(shards)
    };
    let monitor = crate::monitor::Monitor::new(shards, config.admin_token.is_some(), crate::shard_state::unix_now_us());
    let shared = Shared { config: Arc::new(config), metrics, directory, stop, tls, monitor, cluster };
    let listeners = Arc::new(listen::Listeners(Mutex::new(fds)));
    let mesh = relocate::mesh(shards);
    let threads = LocalExecutorPoolBuilder::new(placement)
        .name("tickforge-shard")
        .io_memory(IO_MEMORY)
        .ring_depth(256)
        .on_all_shards(move || shard::run_shard(shared, listeners, mesh))
        .map_err(|e| StartError::Executors(e.to_string()))?;
    Ok(Running { addr, threads })
}
