//! Shutdown signals for a binary serving tickforge (`tickforge` itself, or
//! a studio's own `main`): block SIGINT, SIGTERM and SIGHUP before the
//! shards start, so that only the waiting thread receives them, then wait
//! (SIGHUP reloads the TLS certificate; the other two shut down).
//!
//! ```no_run
//! use tickforge_server::{signals::ShutdownSignals, ServerConfig};
//!
//! let signals = ShutdownSignals::block();
//! let server = tickforge_server::start(ServerConfig::default()).expect("server starts");
//! signals.wait_serving(&server);
//! server.shutdown();
//! server.wait().expect("every shard drained");
//! ```

use crate::ServerHandle;

/// SIGINT, SIGTERM and SIGHUP, blocked in the calling thread and every
/// thread it starts afterwards.
#[derive(Clone, Copy)]
pub struct ShutdownSignals(libc::sigset_t);

impl std::fmt::Debug for ShutdownSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownSignals(SIGINT, SIGTERM, SIGHUP)")
    }
}

impl ShutdownSignals {
    /// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and the shard
    /// threads it starts after this call), so that
    /// [`ShutdownSignals::wait`] gets them.
    #[must_use]
    pub fn block() -> Self {
        // SAFETY: plain signal-mask calls on a local set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::sigaddset(&mut set, libc::SIGHUP);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Self(set)
        }
    }

    /// Waits for the next of the three signals; returns which.
    pub fn wait(&self) -> i32 {
        let mut sig: libc::c_int = 0;
        // SAFETY: `self.0` is a valid, initialized signal set blocked in
        // this thread by `block`.
        unsafe { libc::sigwait(&self.0, &mut sig) };
        sig
    }

    /// Waits for SIGINT or SIGTERM while `server` runs, reloading its TLS
    /// certificate on each SIGHUP (open connections keep theirs; a reload
    /// that fails is logged and the certificate served so far stays);
    /// returns the shutdown signal.
    pub fn wait_serving(&self, server: &ServerHandle) -> i32 {
        loop {
            match self.wait() {
                libc::SIGHUP if server.is_tls() => {
                    if let Err(e) = server.reload_tls() {
                        tracing::error!("TLS reload failed, the certificate served so far stays: {e}");
                    }
                }
                libc::SIGHUP => tracing::info!("SIGHUP: nothing to reload (no TLS)"),
                sig => return sig,
            }
        }
    }
}
