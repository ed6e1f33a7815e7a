//! Sockets: the server's address from the URL, a non-blocking TCP connect
//! that can bind a source address first, the socket options every client
//! sets (no Nagle, kernel receive timestamps), and the one blocking probe
//! that checks the URL before a run.

use crate::handshake::{Answer, Handshake};
use crate::ws;
use crate::LoadError;
use rustls::pki_types::ServerName;
use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickforge_protocol::Format;

/// Where the clients connect: the URL as given, its resolved address, and
/// what the handshake names (`Host`, the path with its query).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) addr: SocketAddr,
    /// The URL's authority, for the `Host` header.
    pub(crate) host: String,
    /// The path and query, `/` when the URL has none.
    pub(crate) path: String,
    /// `wss://`: the TLS settings and the name the certificate must carry.
    pub(crate) tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl Target {
    /// Parses and resolves a `ws://HOST[:PORT]/PATH` URL, or a
    /// `wss://` one spoken with `tls` (`--ca` / `--insecure`).
    #[cfg(test)]
    pub(crate) fn parse(url: &str) -> Result<Self, LoadError> {
        Self::parse_with(url, || Err(LoadError::Config("wss:// needs TLS settings".into())))
    }

    /// As [`Target::parse`]; a `wss://` URL takes its TLS settings from
    /// `tls` (called only then).
    pub(crate) fn parse_with(
        url: &str,
        tls: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, LoadError>,
    ) -> Result<Self, LoadError> {
        let bad = |reason: &str| LoadError::Url { url: url.into(), reason: reason.into() };
        let uri: tungstenite::http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(bad("the scheme must be ws:// or wss://")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("user information in the URL is not supported"));
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| bad(&format!("{host} resolves to no address")))?;
        let path = uri.path_and_query().map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        let path = if path.is_empty() { "/".into() } else { path };
        let tls = if secure { Some((tls()?, crate::tls::server_name(url, host)?)) } else { None };
        Ok(Self { url: url.into(), addr, host: authority.as_str().into(), path, tls })
    }
}

/// Sets what every client socket needs once connected: `TCP_NODELAY` (an
/// input goes out at once) and `SO_TIMESTAMPNS` (the kernel stamps each
/// received segment with the wall-clock time it reached this host's network
/// stack, so a tick is timed when it arrived, not when the loadgen got
/// around to reading it).
pub(crate) fn client_options(fd: RawFd) -> io::Result<()> {
    let one: libc::c_int = 1;
    for (level, name) in [(libc::IPPROTO_TCP, libc::TCP_NODELAY), (libc::SOL_SOCKET, libc::SO_TIMESTAMPNS)] {
        // SAFETY: valid option pointer and length.
        let rc = unsafe {
            libc::setsockopt(fd, level, name, (&raw const one).cast(), size_of::<libc::c_int>() as libc::socklen_t)
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The pending error of a socket whose non-blocking connect finished.
pub(crate) fn socket_error(fd: RawFd) -> io::Result<()> {
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for getsockopt(SO_ERROR).
    let rc = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut err).cast(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(())
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&raw mut storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// A non-blocking socket, bound to `source` when given, with its connect
/// started.
pub(crate) fn start_connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let raw = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh socket nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    if let Some(ip) = source {
        let one: libc::c_int = 1;
        // SAFETY: valid option pointer and length. IP_BIND_ADDRESS_NO_PORT
        // defers the port choice to connect, so 4-tuples, not ports, are unique.
        unsafe {
            libc::setsockopt(
                raw,
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let (storage, len) = sockaddr(SocketAddr::new(ip, 0));
        // SAFETY: storage holds a sockaddr of `len` bytes.
        if unsafe { libc::bind(raw, (&raw const storage).cast(), len) } < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("bind {ip}: {e}")));
        }
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: storage holds a sockaddr of `len` bytes.
    if unsafe { libc::connect(raw, (&raw const storage).cast(), len) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(fd)
}

/// One blocking connection and handshake before the run, so that a wrong
/// URL or a refusing server is one clear error instead of N counted ones.
/// It speaks the same handshake as the clients.
pub(crate) fn probe(target: &Target, format: Format, timeout: Duration) -> Result<(), LoadError> {
    let connect_err = |source| LoadError::Connect { addr: target.addr, source };
    let socket = StdTcpStream::connect_timeout(&target.addr, timeout).map_err(connect_err)?;
    let failed = |reason: String| LoadError::Handshake { url: target.url.clone(), reason };
    // The same socket, for its timeouts while TLS may wrap it.
    let timeouts = socket.try_clone().map_err(connect_err)?;
    let mut stream: Box<dyn ReadWrite> = match &target.tls {
        None => Box::new(socket),
        Some((config, name)) => {
            Box::new(crate::tls::probe_stream(config, name.clone(), socket).map_err(|e| failed(e.to_string()))?)
        }
    };
    let deadline = Instant::now() + timeout;
    let hs = Handshake::new(target, format);
    timeouts.set_write_timeout(Some(timeout)).map_err(connect_err)?;
    stream.write_all(&hs.request).map_err(|e| failed(e.to_string()))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut refused: Option<(u16, usize)> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            if let Some((status, _)) = refused {
                return Err(refusal(target, &hs, &buf, status));
            }
            return Err(failed(format!("no answer within {timeout:?}")));
        }
        timeouts.set_read_timeout(Some(left)).map_err(connect_err)?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            Err(e) if refused.is_some() => {
                let _ = e;
                0
            }
            Err(e) => return Err(failed(one_line(&e.to_string()))),
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some((status, want)) = refused {
            // Read the refusal's body (to its length, or the peer's close).
            if n == 0 || buf.len() >= want {
                return Err(refusal(target, &hs, &buf, status));
            }
            continue;
        }
        match hs.answer(&buf) {
            Answer::Open { .. } => {
                let mut close = Vec::new();
                ws::write_close(1000, "probe", rand_mask(), &mut close);
                let _ = stream.write_all(&close);
                return Ok(());
            }
            Answer::Refused { status, .. } => {
                let head = head_len(&buf);
                let want = head + content_length(&buf[..head]).unwrap_or(0).min(4096);
                refused = Some((status, want));
                if buf.len() >= want {
                    return Err(refusal(target, &hs, &buf, status));
                }
            }
            Answer::Failed(reason) => return Err(failed(reason)),
            Answer::Incomplete if n == 0 => return Err(failed("the server closed the connection".into())),
            Answer::Incomplete => {}
        }
    }
}

/// What the probe reads and writes: a socket, or TLS over one.
trait ReadWrite: io::Read + io::Write {}
impl<T: io::Read + io::Write> ReadWrite for T {}

fn refusal(target: &Target, hs: &Handshake, buf: &[u8], status: u16) -> LoadError {
    let reason = match hs.answer(buf) {
        Answer::Refused { reason, .. } => reason,
        _ => String::new(),
    };
    LoadError::HandshakeRefused { url: target.url.clone(), status, reason }
}

/// The length of the HTTP head at the start of `buf` (all of it if none).
fn head_len(buf: &[u8]) -> usize {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map_or(buf.len(), |p| p + 4)
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
    })
}

/// A mask key for a frame the probe writes (masks need not be strong,
/// only unpredictable to the peer's proxy; the clients use their core's
/// generator).
fn rand_mask() -> [u8; 4] {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    (t ^ std::process::id().rotate_left(16)).to_le_bytes()
}

/// `text` on one line, cut to 200 characters.
pub(crate) fn one_line(text: &str) -> String {
    let mut s: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 200 {
        s = s.chars().take(200).collect::<String>() + "…";
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let t = Target::parse("ws://127.0.0.1:7700/ws").unwrap();
        assert_eq!(t.addr, "127.0.0.1:7700".parse().unwrap());
        assert!(matches!(Target::parse("wss://127.0.0.1/ws"), Err(LoadError::Config(_))));
        let tls = || crate::tls::client_config(None, true);
        let t = Target::parse_with("wss://127.0.0.1/ws", tls).unwrap();
        assert_eq!(t.addr.port(), 443);
        assert!(t.tls.is_some());
        assert!(matches!(Target::parse("http://127.0.0.1/ws"), Err(LoadError::Url { .. })));
        assert!(matches!(Target::parse("not a url"), Err(LoadError::Url { .. })));
        let t = Target::parse("ws://localhost:9/x/ws?token=1").unwrap();
        assert_eq!((t.host.as_str(), t.path.as_str()), ("localhost:9", "/x/ws?token=1"));
        assert_eq!(Target::parse("ws://127.0.0.1:9").unwrap().path, "/");
    }

    #[test]
    fn one_line_joins_and_cuts() {
        assert_eq!(one_line("a\n b\tc"), "a b c");
        assert_eq!(one_line(&"x".repeat(300)).chars().count(), 201);
    }
}
