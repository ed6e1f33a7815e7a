//! The loadgen's integration tests, one binary (habit 14).

// A small WebSocket server speaking the contract's room subset, for runs
// before and beside the real server.
mod fake;
// The binary's bad-input paths: exit status 2 and one line, never a hang.
mod cli;
// Whole runs of the library against the fake server.
mod run;
// The latency figures against delays the fake server injects.
mod timing;

/// Whole runs take this lock: their cores pin to the first CPU of the
/// test's affinity mask, and two runs at once would share it, which the
/// timing tests would measure.
pub(crate) static ONE_RUN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`ONE_RUN`] (a failed test's poison is no reason to fail others).
pub(crate) fn one_run() -> std::sync::MutexGuard<'static, ()> {
    ONE_RUN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
