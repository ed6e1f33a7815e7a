//! tickforge-benches: the criterion micro-benchmarks (`benches/`), the
//! end-to-end runner and the server figures (`src/bin/`). The library holds
//! what those binaries share.

use std::sync::Arc;

/// A TLS client configuration for a benchmark's own `--tls-self-signed`
/// server, the loadgen's `--insecure` one: any certificate is taken (never
/// use it elsewhere).
#[must_use]
pub fn trust_all_tls_client() -> Arc<rustls::ClientConfig> {
    tickforge_loadgen::insecure_client_config()
}
