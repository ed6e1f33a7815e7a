//! Sockets: the server's address from the URL, a TCP connect that can bind
//! a source address first (glommio's own `connect` cannot), the handshake
//! request, and the one blocking probe that checks the URL before a run.

use crate::LoadError;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};
use tickforge_protocol::Format;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::WebSocketConfig;

/// Where the clients connect: the URL as given and its resolved address.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) addr: SocketAddr,
}

impl Target {
    /// Parses and resolves a `ws://HOST[:PORT]/PATH` URL.
    pub(crate) fn parse(url: &str) -> Result<Self, LoadError> {
        let bad = |reason: &str| LoadError::Url { url: url.into(), reason: reason.into() };
        let uri: tungstenite::http::Uri = url.parse().map_err(|e| bad(&format!("{e}")))?;
        match uri.scheme_str() {
            Some("ws") => {}
            Some("wss") => return Err(bad("wss is not supported; use ws://")),
            _ => return Err(bad("the scheme must be ws://")),
        }
        let host = uri.host().ok_or_else(|| bad("no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(80);
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| bad(&format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| bad(&format!("{host} resolves to no address")))?;
        Ok(Self { url: url.into(), addr })
    }

    /// The handshake request, offering `format`'s subprotocol.
    pub(crate) fn request(&self, format: Format) -> Result<Request, tungstenite::Error> {
        let mut req = self.url.as_str().into_client_request()?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(format.subprotocol()));
        Ok(req)
    }
}

/// Small buffers: 10,000 clients in one process (WebSocket messages here
/// are a few hundred bytes; buffers grow when a full state is larger).
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(16 << 20))
}

/// Connects to `addr` from `source` (port chosen by the kernel), without
/// blocking the executor, within `timeout`.
pub(crate) async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> io::Result<glommio::net::TcpStream> {
    let fd = start_connect(addr, source)?;
    let deadline = Instant::now() + timeout;
    let mut wait = Duration::from_micros(200);
    loop {
        let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n > 0 {
            break;
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("connect timed out after {timeout:?}")));
        }
        glommio::timer::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(20));
    }
    let mut err: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: err and len are valid for getsockopt(SO_ERROR).
    let rc =
        unsafe { libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut err).cast(), &mut len) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);
    // SAFETY: `raw` is a connected TCP socket this function owns.
    let stream = unsafe { glommio::net::TcpStream::from_raw_fd(raw) };
    stream.set_nodelay(true).map_err(io::Error::from)?;
    Ok(stream)
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
fn start_connect(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<OwnedFd> {
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
pub(crate) fn probe(target: &Target, format: Format, timeout: Duration) -> Result<(), LoadError> {
    let stream = StdTcpStream::connect_timeout(&target.addr, timeout)
        .map_err(|source| LoadError::Connect { addr: target.addr, source })?;
    stream.set_read_timeout(Some(timeout)).map_err(|source| LoadError::Connect { addr: target.addr, source })?;
    stream.set_write_timeout(Some(timeout)).map_err(|source| LoadError::Connect { addr: target.addr, source })?;
    let req = target.request(format).map_err(|e| LoadError::Url { url: target.url.clone(), reason: e.to_string() })?;
    match tungstenite::client::client_with_config(req, stream, Some(ws_config())) {
        Ok((mut ws, _)) => {
            let _ = ws.close(None);
            let _ = ws.flush();
            Ok(())
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            let status = resp.status();
            let body = resp.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
            Err(LoadError::HandshakeRefused {
                url: target.url.clone(),
                status: status.as_u16(),
                reason: format!("{} {}", status.canonical_reason().unwrap_or(""), one_line(&body)).trim().into(),
            })
        }
        Err(tungstenite::HandshakeError::Failure(e)) => {
            Err(LoadError::Handshake { url: target.url.clone(), reason: one_line(&e.to_string()) })
        }
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            Err(LoadError::Handshake { url: target.url.clone(), reason: format!("no answer within {timeout:?}") })
        }
    }
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
        assert!(matches!(Target::parse("wss://127.0.0.1/ws"), Err(LoadError::Url { .. })));
        assert!(matches!(Target::parse("http://127.0.0.1/ws"), Err(LoadError::Url { .. })));
        assert!(matches!(Target::parse("not a url"), Err(LoadError::Url { .. })));
    }

    #[test]
    fn one_line_joins_and_cuts() {
        assert_eq!(one_line("a\n b\tc"), "a b c");
        assert_eq!(one_line(&"x".repeat(300)).chars().count(), 201);
    }
}
