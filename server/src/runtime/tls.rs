//! TLS between a socket and its [`Connection`]: rustls's sans-IO
//! `ServerConnection` sits in the byte pipe, and nothing above it knows.
//!
//! Ciphertext read from the socket (by the connection's task outside a
//! room, by the tick pass's receive batch in a room) goes into
//! [`TlsLink::receive`], which hands the plaintext to
//! [`Connection::on_bytes`]. Before a send, [`TlsLink::encrypt`] takes the
//! outbox's pending plaintext into the link's ciphertext buffer, which the
//! socket then sends from ([`TlsLink::pending`], [`TlsLink::consume`]),
//! in the same batch as every plain socket.
//!
//! The link encrypts (and so consumes the outbox) only while its
//! ciphertext backlog is under [`TX_HIGH_WATER`]: a client that stops
//! reading fills that little, then its outbox keeps the pending tick, so
//! its room skips ticks and closes it when it stays stuck, exactly as a
//! plain client (the slow-client rule does not depend on the transport).
//!
//! Before the WebSocket, [`HttpIo`] reads and writes the request head and
//! the plain answers through the same link; the TLS handshake happens in
//! its first reads, within the caller's handshake deadline.
//!
//! [`Connection`]: crate::conn::Connection
//! [`Connection::on_bytes`]: crate::conn::Connection::on_bytes

use crate::tls::TlsAcceptor;
use futures_lite::io::{AsyncReadExt as _, AsyncWriteExt as _};
use glommio::net::TcpStream;
use std::cell::RefCell;
use std::io::{self, BufRead as _, Write as _};
use std::sync::Arc;
use thiserror::Error;

/// Most ciphertext a connection keeps waiting for its socket; it encrypts
/// more of its outbox only below this (one TLS record's worth).
pub(crate) const TX_HIGH_WATER: usize = 16 * 1024;

/// Ciphertext buffer capacity a link keeps once drained; more is freed by
/// [`TlsLink::shrink`].
const TX_RETAIN: usize = 2048;

/// The TLS stream broke: a bad record, a failed handshake, a protocol
/// violation. The connection is dropped (rustls queued an alert, which
/// goes out if the socket takes it at once).
#[derive(Debug, Error)]
#[error("TLS: {0}")]
pub(crate) struct TlsFault(pub(crate) String);

/// What a receive found besides plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// The stream goes on.
    Open,
    /// The peer sent `close_notify`: nothing more will come.
    Closed,
}

/// One connection's TLS session and its ciphertext waiting for the socket.
pub(crate) struct TlsLink {
    tls: rustls::ServerConnection,
    tx: Vec<u8>,
    tx_start: usize,
}

impl std::fmt::Debug for TlsLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLink")
            .field("handshaking", &self.tls.is_handshaking())
            .field("tx", &(self.tx.len() - self.tx_start))
            .finish_non_exhaustive()
    }
}

impl TlsLink {
    /// A server session with `config` (the certificate served now).
    ///
    /// # Errors
    /// When rustls cannot start a session with it.
    pub(crate) fn new(config: Arc<rustls::ServerConfig>) -> Result<Self, TlsFault> {
        let tls = rustls::ServerConnection::new(config).map_err(|e| TlsFault(e.to_string()))?;
        Ok(Self { tls, tx: Vec::new(), tx_start: 0 })
    }

    /// Whether the handshake is still under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.tls.is_handshaking()
    }

    /// Takes ciphertext read from the socket and hands every run of
    /// plaintext it carries to `plain`, in order. Whatever rustls answers
    /// (handshake messages, alerts) is queued for the socket.
    ///
    /// # Errors
    /// [`TlsFault`] when the stream is not TLS or breaks the protocol.
    pub(crate) fn receive(&mut self, mut ciphertext: &[u8], mut plain: impl FnMut(&[u8])) -> Result<Inbound, TlsFault> {
        let mut closed = false;
        while !ciphertext.is_empty() {
            // `&[u8]` is an `io::Read` that advances past what it gave.
            let n = self.tls.read_tls(&mut ciphertext).map_err(|e| TlsFault(e.to_string()))?;
            let state = match self.tls.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    self.collect();
                    return Err(TlsFault(e.to_string()));
                }
            };
            closed |= state.peer_has_closed();
            self.drain_plaintext(&mut plain)?;
            if n == 0 {
                break;
            }
        }
        self.collect();
        Ok(if closed { Inbound::Closed } else { Inbound::Open })
    }

    fn drain_plaintext(&mut self, plain: &mut impl FnMut(&[u8])) -> Result<(), TlsFault> {
        let mut reader = self.tls.reader();
        loop {
            match reader.fill_buf() {
                Ok([]) => return Ok(()),
                Ok(bytes) => {
                    let n = bytes.len();
                    plain(bytes);
                    reader.consume(n);
                }
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::UnexpectedEof) => return Ok(()),
                Err(e) => return Err(TlsFault(e.to_string())),
            }
        }
    }

    /// Encrypts from `plaintext` (the outbox's pending bytes) as much as the
    /// ciphertext backlog allows; returns how many plaintext bytes it took
    /// (the caller consumes that many from the outbox).
    pub(crate) fn encrypt(&mut self, plaintext: &[u8]) -> usize {
        let room = TX_HIGH_WATER.saturating_sub(self.tx.len() - self.tx_start);
        if room == 0 || plaintext.is_empty() || self.tls.is_handshaking() {
            return 0;
        }
        let n = plaintext.len().min(room);
        let taken = self.tls.writer().write(&plaintext[..n]).unwrap_or(0);
        self.collect();
        taken
    }

    /// Queues `close_notify`: we send nothing more.
    pub(crate) fn close_notify(&mut self) {
        self.tls.send_close_notify();
        self.collect();
    }

    /// Moves what rustls has for the socket into the ciphertext buffer.
    fn collect(&mut self) {
        if self.tx_start == self.tx.len() {
            self.tx.clear();
            self.tx_start = 0;
        } else if self.tx_start > 64 * 1024 {
            self.tx.drain(..self.tx_start);
            self.tx_start = 0;
        }
        while self.tls.wants_write() {
            // Writing into a Vec cannot fail.
            if self.tls.write_tls(&mut self.tx).unwrap_or(0) == 0 {
                break;
            }
        }
    }

    /// The ciphertext waiting for the socket.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.tx[self.tx_start..]
    }

    /// Whether ciphertext waits for the socket.
    pub(crate) fn has_pending(&self) -> bool {
        self.tx_start < self.tx.len()
    }

    /// The socket took the first `n` bytes of ciphertext.
    pub(crate) fn consume(&mut self, n: usize) {
        self.tx_start = (self.tx_start + n).min(self.tx.len());
        if self.tx_start == self.tx.len() {
            self.tx.clear();
            self.tx_start = 0;
        }
    }

    /// Frees a drained ciphertext buffer over the retained size
    /// (housekeeping, not per message).
    pub(crate) fn shrink(&mut self) {
        if self.tx_start == self.tx.len() && self.tx.capacity() > TX_RETAIN {
            self.tx = Vec::new();
            self.tx_start = 0;
        }
    }
}

/// A shard's view of the server's [`TlsAcceptor`]: the configuration it
/// last took, refreshed when a reload bumped the generation (one atomic
/// load per accepted connection, a lock once per reload).
#[derive(Debug)]
pub(crate) struct ShardTls {
    acceptor: Arc<TlsAcceptor>,
    cached: RefCell<(u64, Arc<rustls::ServerConfig>)>,
}

impl ShardTls {
    /// A view of `acceptor`.
    pub(crate) fn new(acceptor: Arc<TlsAcceptor>) -> Self {
        let cached = RefCell::new((acceptor.generation(), acceptor.config()));
        Self { acceptor, cached }
    }

    /// The configuration new connections start with.
    pub(crate) fn config(&self) -> Arc<rustls::ServerConfig> {
        let generation = self.acceptor.generation();
        let mut cached = self.cached.borrow_mut();
        if cached.0 != generation {
            *cached = (generation, self.acceptor.config());
        }
        cached.1.clone()
    }
}

/// A socket before its WebSocket: the request head and plain answers,
/// through TLS or not.
#[derive(Debug)]
pub(crate) enum HttpIo {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(TcpStream, Box<TlsLink>),
}

impl HttpIo {
    /// The socket.
    pub(crate) fn stream(&mut self) -> &mut TcpStream {
        match self {
            Self::Plain(s) | Self::Tls(s, _) => s,
        }
    }

    /// Reads what arrives next and appends its plaintext to `out`; 0: the
    /// peer closed. Through TLS this drives the handshake (its answers are
    /// sent as they come).
    ///
    /// # Errors
    /// The socket's error, or [`io::ErrorKind::InvalidData`] for a TLS
    /// fault (not TLS at all, a failed handshake).
    pub(crate) async fn read_some(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Self::Plain(stream) => {
                let len = out.len();
                out.resize(len + 1024, 0);
                let n = stream.read(&mut out[len..]).await;
                out.truncate(len + *n.as_ref().unwrap_or(&0));
                n
            }
            Self::Tls(stream, link) => {
                let mut chunk = vec![0u8; 4096];
                loop {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Ok(0);
                    }
                    let before = out.len();
                    let received = link.receive(&chunk[..n], |p| out.extend_from_slice(p));
                    // Handshake answers (or the alert of a failure).
                    let flushed = flush_link(stream, link).await;
                    let inbound = received.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    flushed?;
                    let got = out.len() - before;
                    if got > 0 {
                        return Ok(got);
                    }
                    if inbound == Inbound::Closed {
                        return Ok(0);
                    }
                }
            }
        }
    }

    /// Writes all of `bytes` and flushes.
    ///
    /// # Errors
    /// The socket's error.
    pub(crate) async fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(stream) => {
                stream.write_all(bytes).await?;
                stream.flush().await
            }
            Self::Tls(stream, link) => {
                while !bytes.is_empty() {
                    let n = link.encrypt(bytes);
                    bytes = &bytes[n..];
                    flush_link(stream, link).await?;
                    if n == 0 && link.is_handshaking() {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS handshake not complete"));
                    }
                }
                Ok(())
            }
        }
    }

    /// Ends our side: `close_notify` through TLS, then the socket's write
    /// side.
    ///
    /// # Errors
    /// The socket's error.
    pub(crate) async fn close(&mut self) -> io::Result<()> {
        if let Self::Tls(stream, link) = self {
            link.close_notify();
            flush_link(stream, link).await?;
        }
        self.stream().close().await
    }

    /// The socket and its TLS link, for the WebSocket's life.
    pub(crate) fn into_parts(self) -> (TcpStream, Option<Box<TlsLink>>) {
        match self {
            Self::Plain(s) => (s, None),
            Self::Tls(s, link) => (s, Some(link)),
        }
    }
}

/// Writes the link's pending ciphertext to the socket.
///
/// # Errors
/// The socket's error.
pub(crate) async fn flush_link(stream: &mut TcpStream, link: &mut TlsLink) -> io::Result<()> {
    while link.has_pending() {
        let n = stream.write(link.pending()).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        link.consume(n);
    }
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{load, TlsSource};
    use rustls::pki_types::ServerName;

    /// A client that trusts anything (the test checks the server's side).
    #[derive(Debug)]
    struct AnyCert;

    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
        }
    }

    fn client() -> rustls::ClientConnection {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert))
            .with_no_client_auth();
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap()
    }

    /// Moves everything pending between a client and a link, in memory;
    /// returns the plaintext the server side received.
    fn pump(client: &mut rustls::ClientConnection, link: &mut TlsLink) -> Vec<u8> {
        let mut got = Vec::new();
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).unwrap();
            }
            link.receive(&wire, |p| got.extend_from_slice(p)).unwrap();
            let mut back = link.pending();
            let len = back.len();
            while !back.is_empty() {
                client.read_tls(&mut back).unwrap();
                client.process_new_packets().unwrap();
            }
            link.consume(len);
        }
        got
    }

    #[test]
    fn plaintext_crosses_both_ways_and_the_backlog_bounds_encryption() {
        let config = load(&TlsSource::SelfSigned).unwrap().config;
        let mut link = TlsLink::new(config).unwrap();
        let mut client = client();
        client.writer().write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(pump(&mut client, &mut link), b"GET / HTTP/1.1\r\n\r\n");
        assert!(!link.is_handshaking());

        // Nothing is encrypted while the backlog is at its bound.
        let big = vec![7u8; 3 * TX_HIGH_WATER];
        let first = link.encrypt(&big);
        assert!(first > 0 && first <= TX_HIGH_WATER, "{first}");
        assert!(link.pending().len() >= TX_HIGH_WATER, "record overhead on top");
        assert_eq!(link.encrypt(&big[first..]), 0, "stuck: the outbox keeps the rest");
        let len = link.pending().len();
        link.consume(len);
        assert!(link.encrypt(&big[first..]) > 0, "drained: encryption goes on");
    }

    #[test]
    fn plain_http_is_a_fault() {
        let config = load(&TlsSource::SelfSigned).unwrap().config;
        let mut link = TlsLink::new(config).unwrap();
        assert!(link.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", |_| {}).is_err());
    }
}
