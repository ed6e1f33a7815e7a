//! The runtime: the only part of the server that knows glommio and
//! io_uring. It binds the port, starts one pinned executor per shard, and
//! per shard runs the accept loop ([`shard`]), each connection's task
//! ([`driver`]), the rooms' tick pass with its batched socket I/O
//! ([`ticker`], [`ring`]), the housekeeping sweep, and the hand-off of
//! connections between shards ([`handoff`], [`relocate`]).
//!
//! Below it everything is sans-IO: [`crate::conn::Connection`] takes bytes
//! and the time, rooms take the time, requests change the shard's state.

mod driver;
mod handoff;
mod relocate;
mod ring;
mod shard;
mod ticker;

use crate::metrics::Metrics;
use crate::shard_state::Shared;
use crate::{ServerConfig, StartError};
use glommio::{LocalExecutorPoolBuilder, PoolPlacement};
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;

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
) -> Result<Running, StartError> {
    let shards = config.shards;
    let (addr, fds) =
        bind_listeners(config.listen, shards).map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let placement = if config.pin && shards <= cores {
        PoolPlacement::MaxSpread(shards, None)
    } else {
        PoolPlacement::Unbound(shards)
    };
    let shared = Shared { config: Arc::new(config), metrics, directory, stop };
    let fds: Arc<[RawFd]> = fds.into();
    let next = Arc::new(AtomicUsize::new(0));
    let mesh = relocate::mesh(shards);
    let threads = LocalExecutorPoolBuilder::new(placement)
        .name("tickforge-shard")
        .io_memory(IO_MEMORY)
        .ring_depth(256)
        .on_all_shards({
            let fds = fds.clone();
            move || shard::run_shard(shared, fds, next, mesh)
        })
        .map_err(|e| {
            close_all(&fds);
            StartError::Executors(e.to_string())
        })?;
    Ok(Running { addr, threads })
}

/// Closes listening sockets no shard took.
fn close_all(fds: &[RawFd]) {
    for &fd in fds {
        // SAFETY: these fds were made by `bind_listeners` and not yet
        // handed to any shard.
        unsafe { libc::close(fd) };
    }
}
