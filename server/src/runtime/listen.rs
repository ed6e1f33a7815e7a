//! The shards' listening sockets: one per shard on one port
//! (SO_REUSEPORT among themselves), never shared with another process.

use crate::StartError;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};
use std::sync::Mutex;

/// The shards' listening sockets, claimed one by one as the shards start.
/// Whatever is not claimed (a shard that never ran) is closed on drop.
#[derive(Debug)]
pub(crate) struct Listeners(pub(crate) Mutex<Vec<OwnedFd>>);

impl Listeners {
    /// One listening socket for the calling shard; `None` when every one
    /// was claimed. (A lock taken once per shard at start, never after.)
    pub(crate) fn claim(&self) -> Option<OwnedFd> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }
}

/// Binds one listening socket per shard to `addr`, all on one port.
///
/// The first socket takes the address alone: SO_REUSEADDR (a restart is
/// not refused over the last run's TIME_WAIT connections) but not
/// SO_REUSEPORT, so its bind or its listen fails with EADDRINUSE when any
/// other process listens there, with or without SO_REUSEPORT (a second
/// tickforge included). The race of two servers starting at once is
/// settled by the kernel: both may bind, but `listen` re-checks the port
/// and only the first succeeds. Port 0 needs no special case: the kernel
/// picks a port nobody holds. Only once it listens is SO_REUSEPORT turned
/// on for it, and the other shards' sockets join the port it got with
/// SO_REUSEPORT; the kernel spreads new connections over all of them.
///
/// On any failure the sockets already bound are closed (they are owned).
pub(crate) fn bind_listeners(addr: SocketAddr, shards: usize) -> Result<(SocketAddr, Vec<OwnedFd>), StartError> {
    bind_with(addr, shards, listener)
}

/// [`bind_listeners`] with the socket maker as a parameter (`exclusive`:
/// the first socket, without SO_REUSEPORT), so that a test can make a
/// later bind fail.
fn bind_with(
    addr: SocketAddr,
    shards: usize,
    mut open: impl FnMut(SocketAddr, bool) -> io::Result<OwnedFd>,
) -> Result<(SocketAddr, Vec<OwnedFd>), StartError> {
    let failed = |addr, error: io::Error| match error.raw_os_error() {
        Some(libc::EADDRINUSE) => StartError::AddrInUse { addr },
        _ => StartError::Bind { addr, error },
    };
    let first = open(addr, true).map_err(|e| failed(addr, e))?;
    let first = StdListener::from(first);
    let bound = first.local_addr().map_err(|e| failed(addr, e))?;
    set_flag(first.as_fd(), libc::SO_REUSEPORT).map_err(|e| failed(bound, e))?;
    let mut fds = Vec::with_capacity(shards);
    fds.push(OwnedFd::from(first));
    for _ in 1..shards {
        fds.push(open(bound, false).map_err(|e| failed(bound, e))?);
    }
    Ok((bound, fds))
}

fn set_flag(fd: BorrowedFd<'_>, option: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    let len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: setsockopt on a valid socket with a pointer to a live c_int.
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, option, (&raw const one).cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A listening TCP socket on `addr`: SO_REUSEADDR always, SO_REUSEPORT
/// unless `exclusive`.
fn listener(addr: SocketAddr, exclusive: bool) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: a plain socket syscall; the fd is owned at once.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new socket nobody else owns; dropping it closes it,
    // on every early return below too.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    set_flag(fd.as_fd(), libc::SO_REUSEADDR)?;
    if !exclusive {
        set_flag(fd.as_fd(), libc::SO_REUSEPORT)?;
    }
    // SAFETY: bind and listen on the owned socket, with a sockaddr of the
    // right family and length.
    let rc = unsafe {
        match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                    sin_zero: [0; 8],
                };
                libc::bind(fd.as_raw_fd(), (&raw const sin).cast(), size_of_val(&sin) as libc::socklen_t)
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                    sin6_scope_id: a.scope_id(),
                };
                libc::bind(fd.as_raw_fd(), (&raw const sin6).cast(), size_of_val(&sin6) as libc::socklen_t)
            }
        }
    };
    // SAFETY: listen on the owned, bound socket.
    if rc != 0 || unsafe { libc::listen(fd.as_raw_fd(), 1024) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_port() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    /// Whether a plain listener (SO_REUSEADDR, as std sets it, no
    /// SO_REUSEPORT) can take `addr` now.
    fn free(addr: SocketAddr) -> bool {
        StdListener::bind(addr).is_ok()
    }

    #[test]
    fn the_shards_share_a_port_no_other_server_can_join() {
        let (addr, fds) = bind_listeners(any_port(), 3).unwrap();
        assert_eq!(fds.len(), 3);
        assert_ne!(addr.port(), 0);
        assert!(!free(addr));
        // Another server's first socket is refused, as "address in use".
        let err = bind_listeners(addr, 1).unwrap_err();
        assert!(matches!(err, StartError::AddrInUse { addr: a } if a == addr), "{err}");
        assert_eq!(err.to_string(), format!("cannot listen on {addr}: address in use (another process listens there)"));
        // Unclaimed listeners close with the set; a claimed one lives on.
        let listeners = Listeners(Mutex::new(fds));
        let claimed = listeners.claim().unwrap();
        drop(listeners);
        assert!(!free(addr));
        drop(claimed);
        assert!(free(addr));
    }

    #[test]
    fn a_failed_later_bind_closes_the_listeners_already_bound() {
        let mut calls = 0;
        let mut failed_on = None;
        let err = bind_with(any_port(), 3, |addr, exclusive| {
            calls += 1;
            if calls == 3 {
                assert!(!free(addr), "the first two listen");
                failed_on = Some(addr);
                return Err(io::Error::from_raw_os_error(libc::EMFILE));
            }
            listener(addr, exclusive)
        })
        .unwrap_err();
        let addr = failed_on.unwrap();
        assert!(matches!(err, StartError::Bind { addr: a, .. } if a == addr), "{err}");
        // The OS error is in the message, once, and not again as a source.
        assert_eq!(err.to_string().matches("(os error 24)").count(), 1, "{err}");
        assert!(std::error::Error::source(&err).is_none());
        assert!(free(addr), "the two listeners bound before the failure are closed");
    }
}
