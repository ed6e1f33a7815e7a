//! Shutdown signals for a binary serving tickforge (`tickforge` itself, or
//! a studio's own `main`): block SIGINT and SIGTERM before the shards
//! start, so that only the waiting thread receives them, then wait.
//!
//! ```no_run
//! use tickforge_server::{signals::ShutdownSignals, ServerConfig};
//!
//! let signals = ShutdownSignals::block();
//! let server = tickforge_server::start(ServerConfig::default()).expect("server starts");
//! signals.wait();
//! server.shutdown();
//! server.wait().expect("every shard drained");
//! ```

/// SIGINT and SIGTERM, blocked in the calling thread and every thread it
/// starts afterwards.
#[derive(Clone, Copy)]
pub struct ShutdownSignals(libc::sigset_t);

impl std::fmt::Debug for ShutdownSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShutdownSignals(SIGINT, SIGTERM)")
    }
}

impl ShutdownSignals {
    /// Blocks SIGINT and SIGTERM in this thread (and the shard threads it
    /// starts after this call), so that [`ShutdownSignals::wait`] gets them.
    #[must_use]
    pub fn block() -> Self {
        // SAFETY: plain signal-mask calls on a local set.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Self(set)
        }
    }

    /// Waits for SIGINT or SIGTERM; returns which.
    pub fn wait(&self) -> i32 {
        let mut sig: libc::c_int = 0;
        // SAFETY: `self.0` is a valid, initialized signal set blocked in
        // this thread by `block`.
        unsafe { libc::sigwait(&self.0, &mut sig) };
        sig
    }
}
