//! TLS settings and certificates: where the certificate comes from
//! ([`TlsSource`]), loading and checking it ([`load`]: a PEM chain and its
//! key, the key matching the certificate, the certificate not expired),
//! a self-signed one for development, and the reloadable rustls
//! configuration every shard reads ([`TlsAcceptor`]).
//!
//! The bytes of a TLS connection are the runtime's business
//! (`runtime::tls`): this module only makes the rustls `ServerConfig` that
//! each new connection's `ServerConnection` is built from. A reload (SIGHUP,
//! [`crate::ServerHandle::reload_tls`]) swaps the configuration for new
//! connections; connections already open keep theirs and are not dropped.

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// The ALPN protocol the port speaks: HTTP/1.1 (its WebSocket upgrade
/// included).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Where the server's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsSource {
    /// `--tls-cert FILE --tls-key FILE`: a PEM certificate chain (leaf
    /// first) and its PEM private key (PKCS#8, PKCS#1 or SEC1). Read again
    /// on reload.
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
    /// `--tls-self-signed`: a certificate for `localhost` and `127.0.0.1`
    /// made at start-up (development only: no client trusts it unless told
    /// to); its SHA-256 fingerprint is logged.
    SelfSigned,
}

/// Why a certificate could not be loaded. Each names the file and says
/// what is wrong with it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("--{flag} {}: cannot read it: {error}", path.display())]
    Read {
        /// The flag naming the file (`tls-cert`, `tls-key`).
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The certificate file holds no PEM certificate, or a broken one.
    #[error("--tls-cert {}: {problem}", path.display())]
    BadCert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The key file holds no PEM private key, or a broken one.
    #[error("--tls-key {}: {problem}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The private key is not the certificate's.
    #[error("--tls-key {} does not match the certificate in --tls-cert {}", key.display(), cert.display())]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The certificate is past its end of validity.
    #[error("--tls-cert {}: the certificate expired on {not_after} (UTC)", path.display())]
    Expired {
        /// The file.
        path: PathBuf,
        /// Its `notAfter`, as text.
        not_after: String,
    },
    /// The certificate is not valid yet.
    #[error("--tls-cert {}: the certificate is not valid before {not_before} (UTC)", path.display())]
    NotYetValid {
        /// The file.
        path: PathBuf,
        /// Its `notBefore`, as text.
        not_before: String,
    },
    /// rustls refused the certificate and key (an unsupported key type).
    #[error("TLS configuration refused: {0}")]
    Rustls(String),
    /// The self-signed certificate could not be made.
    #[error("cannot make a self-signed certificate: {0}")]
    SelfSigned(String),
    /// A reload was asked of a server that does not speak TLS.
    #[error("this server does not speak TLS (no --tls-cert or --tls-self-signed): nothing to reload")]
    NotTls,
}

/// A loaded certificate: the rustls configuration new connections use, and
/// what to log about it.
#[derive(Clone, Debug)]
pub struct LoadedCert {
    /// The configuration.
    pub config: Arc<rustls::ServerConfig>,
    /// The SHA-256 fingerprint of the leaf certificate (colon-separated
    /// upper-case hex, as `openssl x509 -fingerprint -sha256` prints it).
    pub fingerprint: String,
    /// The leaf's `notAfter` as text.
    pub not_after: String,
}

/// Loads (or makes) the certificate and builds the rustls configuration:
/// TLS 1.2 and 1.3, ALPN `http/1.1`.
///
/// # Errors
/// [`TlsError`] naming the file and the problem: unreadable, not PEM, no
/// certificate or key in it, a key that does not match, an expired (or not
/// yet valid) certificate.
pub fn load(source: &TlsSource) -> Result<LoadedCert, TlsError> {
    let (chain, key, cert_path, key_path) = match source {
        TlsSource::Files { cert, key } => {
            let (chain, private) = read_files(cert, key)?;
            (chain, private, cert.clone(), key.clone())
        }
        TlsSource::SelfSigned => {
            let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(|e| TlsError::SelfSigned(e.to_string()))?;
            let chain = vec![made.cert.der().clone()];
            let key =
                PrivateKeyDer::try_from(made.key_pair.serialize_der()).map_err(|e| TlsError::SelfSigned(e.into()))?;
            (chain, key, PathBuf::from("(self-signed)"), PathBuf::from("(self-signed)"))
        }
    };
    let not_after = check_validity(&cert_path, &chain[0])?;
    let fingerprint = fingerprint(&chain[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth();
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch { cert: cert_path.clone(), key: key_path.clone() },
        other => TlsError::Rustls(other.to_string()),
    })?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(LoadedCert { config: Arc::new(config), fingerprint, not_after })
}

fn read_files(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert_pem =
        std::fs::read(cert).map_err(|error| TlsError::Read { flag: "tls-cert", path: cert.into(), error })?;
    let key_pem = std::fs::read(key).map_err(|error| TlsError::Read { flag: "tls-key", path: key.into(), error })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCert { path: cert.into(), problem: format!("not a PEM certificate chain: {e}") })?;
    if chain.is_empty() {
        return Err(TlsError::BadCert {
            path: cert.into(),
            problem: "no certificate in it (expected -----BEGIN CERTIFICATE-----)".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::BadKey {
        path: key.into(),
        problem: match e {
            rustls::pki_types::pem::Error::NoItemsFound => {
                "no private key in it (expected -----BEGIN PRIVATE KEY-----, RSA or EC PRIVATE KEY)".into()
            }
            other => format!("not a PEM private key: {other}"),
        },
    })?;
    Ok((chain, key))
}

/// Checks the leaf's validity period against now; returns its `notAfter`.
fn check_validity(path: &Path, leaf: &CertificateDer<'_>) -> Result<String, TlsError> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| TlsError::BadCert { path: path.into(), problem: format!("not an X.509 certificate: {e}") })?;
    let now =
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let validity = cert.validity();
    let not_after = validity.not_after.to_string();
    if validity.not_after.timestamp() < now {
        return Err(TlsError::Expired { path: path.into(), not_after });
    }
    if validity.not_before.timestamp() > now {
        return Err(TlsError::NotYetValid { path: path.into(), not_before: validity.not_before.to_string() });
    }
    Ok(not_after)
}

/// SHA-256 of a certificate's DER, as `AB:CD:...`.
#[must_use]
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let mut out = String::with_capacity(95);
    for (i, b) in digest.as_ref().iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// The TLS configuration every shard accepts with, reloadable: a reload
/// bumps a generation; a shard compares it (one atomic load per accepted
/// connection) and takes the new configuration (one lock, once per
/// reload) only when it changed.
#[derive(Debug)]
pub struct TlsAcceptor {
    source: TlsSource,
    generation: AtomicU64,
    current: Mutex<Arc<rustls::ServerConfig>>,
}

impl TlsAcceptor {
    /// An acceptor serving `loaded`, reloading from `source`.
    #[must_use]
    pub fn new(source: TlsSource, loaded: &LoadedCert) -> Self {
        Self { source, generation: AtomicU64::new(1), current: Mutex::new(loaded.config.clone()) }
    }

    /// Where the certificate comes from.
    #[must_use]
    pub fn source(&self) -> &TlsSource {
        &self.source
    }

    /// Loads the certificate again (a self-signed one is made anew) and
    /// serves it to new connections; open connections keep theirs.
    ///
    /// # Errors
    /// As [`load`]; the certificate served so far stays.
    pub fn reload(&self) -> Result<LoadedCert, TlsError> {
        let loaded = load(&self.source)?;
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = loaded.config.clone();
        self.generation.fetch_add(1, Ordering::Release);
        Ok(loaded)
    }

    /// The configuration's generation (bumped by each reload).
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The configuration now served.
    #[must_use]
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_loads_with_alpn_and_a_fingerprint() {
        let loaded = load(&TlsSource::SelfSigned).unwrap();
        assert_eq!(loaded.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(loaded.fingerprint.len(), 32 * 3 - 1);
        assert!(loaded.fingerprint.chars().all(|c| c == ':' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_fingerprint_is_sha256_of_the_der() {
        // SHA-256("abc"), FIPS 180-2's example.
        let der = CertificateDer::from(b"abc".to_vec());
        assert!(fingerprint(&der).starts_with("BA:78:16:BF:8F:01:CF:EA"));
    }

    #[test]
    fn a_reload_bumps_the_generation() {
        let loaded = load(&TlsSource::SelfSigned).unwrap();
        let acceptor = TlsAcceptor::new(TlsSource::SelfSigned, &loaded);
        let before = (acceptor.generation(), acceptor.config());
        acceptor.reload().unwrap();
        assert_eq!(acceptor.generation(), before.0 + 1);
        assert!(!Arc::ptr_eq(&before.1, &acceptor.config()));
    }
}
