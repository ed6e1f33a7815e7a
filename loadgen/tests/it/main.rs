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
// wss:// runs against the real server on a TLS port.
mod wss;
// Redirects followed across three real servers in a cluster on a real Redis.
mod cluster;
// The server tests' real redis-server, started on a free port.
#[path = "../../../server/tests/it/redis.rs"]
#[allow(dead_code, reason = "shared with the server's tests, which also restart it and query it")]
mod redis;

/// Whole runs take this lock: their cores pin to the first CPU of the
/// test's affinity mask, and two runs at once would share it, which the
/// timing tests would measure. A file lock, because test runners (nextest)
/// run each test in a process of its own.
pub(crate) struct OneRun(std::fs::File);

impl Drop for OneRun {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: our own open file.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Takes the run lock (blocking until no other test process holds it).
pub(crate) fn one_run() -> OneRun {
    use std::os::fd::AsRawFd;
    let path = std::env::temp_dir().join("tickforge-loadgen-tests.lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).unwrap();
    // SAFETY: our own open file; blocks until the lock is free.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    OneRun(file)
}
