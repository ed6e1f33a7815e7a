//! `wss://`: TLS between a client's socket bytes and its WebSocket, sans-IO
//! (rustls's `ClientConnection`). The core's batches and the prompt path
//! move ciphertext; [`ClientTls::feed`] turns what a read brought into
//! plaintext for the client's reader, and [`ClientTls::seal`] turns the
//! client's plaintext `tx` into the ciphertext a send takes. A tick is
//! timed by the stamp of the read that completed its record.
//!
//! Trust: `--ca FILE` (PEM certificates the server's chain must lead to),
//! or `--insecure` (no verification at all: the binary says so loudly).

use crate::LoadError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::sync::Arc;

/// The client settings of a `wss://` run: trust `ca` (a PEM file), or
/// nothing at all with `insecure`.
///
/// # Errors
/// [`LoadError::Config`] for an unreadable or empty CA file, or when
/// neither is given.
pub(crate) fn client_config(ca: Option<&Path>, insecure: bool) -> Result<Arc<ClientConfig>, LoadError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| LoadError::Config(format!("TLS: {e}")))?;
    let mut config = match (ca, insecure) {
        (Some(path), _) => {
            let bad = |what: String| LoadError::Config(format!("--ca {}: {what}", path.display()));
            let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
                roots.add(cert).map_err(|e| bad(format!("not a usable certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad("no certificate in it (expected -----BEGIN CERTIFICATE-----)".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        (None, true) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth(),
        (None, false) => {
            return Err(LoadError::Config(
                "a wss:// URL needs --ca FILE (the certificate to trust) or --insecure (no verification)".into(),
            ))
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The `--insecure` client settings, for other tools that talk to a server
/// with a certificate they made a moment before (`--tls-self-signed`): any
/// certificate is taken. Never use it against a server you do not run.
///
/// # Panics
/// Never: ring supports the default protocol versions.
#[must_use]
pub fn insecure_client_config() -> Arc<ClientConfig> {
    client_config(None, true).expect("ring supports TLS 1.2 and 1.3")
}

/// `--insecure`: any certificate is taken (signatures are still checked
/// against the certificate presented, so the handshake is a real one).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server name a certificate is checked against: the URL's host.
///
/// # Errors
/// [`LoadError::Url`] for a host that is no DNS name nor IP address.
pub(crate) fn server_name(url: &str, host: &str) -> Result<ServerName<'static>, LoadError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| LoadError::Url { url: url.into(), reason: format!("{host} is not a TLS server name: {e}") })
}

/// One client's TLS session and the ciphertext waiting for its socket.
pub(crate) struct ClientTls {
    conn: rustls::ClientConnection,
    /// Ciphertext for the socket (a send takes from its front).
    pub(crate) out: Vec<u8>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").field("out", &self.out.len()).finish_non_exhaustive()
    }
}

impl ClientTls {
    /// A session to `name` with `config`; its ClientHello is in `out`.
    pub(crate) fn new(config: &Arc<ClientConfig>, name: ServerName<'static>) -> Result<Self, String> {
        let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
        let mut tls = Self { conn, out: Vec::new() };
        tls.collect();
        Ok(tls)
    }

    /// Ciphertext read from the socket: appends the plaintext it carries to
    /// `plain`; whatever rustls answers goes to `out`. `Ok(true)`: the
    /// server sent `close_notify`.
    pub(crate) fn feed(&mut self, mut ciphertext: &[u8], plain: &mut Vec<u8>) -> Result<bool, String> {
        let mut closed = false;
        while !ciphertext.is_empty() {
            let n = self.conn.read_tls(&mut ciphertext).map_err(|e| e.to_string())?;
            let state = self.conn.process_new_packets().map_err(|e| {
                self.collect();
                e.to_string()
            })?;
            closed |= state.peer_has_closed();
            let mut buf = [0u8; 4096];
            loop {
                match self.conn.reader().read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => plain.extend_from_slice(&buf[..n]),
                    Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::UnexpectedEof) => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            if n == 0 {
                break;
            }
        }
        self.collect();
        Ok(closed)
    }

    /// Encrypts `plain` (taken whole; rustls holds it until the handshake
    /// is done) into `out`.
    pub(crate) fn seal(&mut self, plain: &mut Vec<u8>) {
        if !plain.is_empty() {
            // Writing into rustls's buffer cannot fail (no limit is set).
            let _ = self.conn.writer().write_all(plain);
            plain.clear();
        }
        self.collect();
    }

    fn collect(&mut self) {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.out).unwrap_or(0) == 0 {
                break;
            }
        }
    }
}

/// A blocking TLS stream for the probe before a run.
pub(crate) type ProbeStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Wraps the probe's socket in TLS.
///
/// # Errors
/// When rustls cannot start a session.
pub(crate) fn probe_stream(
    config: &Arc<ClientConfig>,
    name: ServerName<'static>,
    socket: std::net::TcpStream,
) -> io::Result<ProbeStream> {
    let conn = rustls::ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
    Ok(rustls::StreamOwned::new(conn, socket))
}
