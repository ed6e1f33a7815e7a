//! One core's io_uring: set up for one thread (`SINGLE_ISSUER`,
//! `DEFER_TASKRUN`: completions are only processed when this thread asks,
//! so the kernel never interrupts it for them), batches of operations
//! submitted with one `io_uring_enter`, and a wait bounded by the next
//! scheduled slot. Counts its own enters and submissions for the report.

use io_uring::{squeue, types, IoUring};
use std::io;
use std::time::Duration;

/// A core's ring.
pub(crate) struct Ring {
    ring: IoUring,
    /// Whether `SINGLE_ISSUER | DEFER_TASKRUN` was accepted (else a plain ring).
    pub(crate) deferred: bool,
    /// `io_uring_enter` calls made.
    pub(crate) enters: u64,
    /// Submission queue entries pushed.
    pub(crate) sqes: u64,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("deferred", &self.deferred).field("enters", &self.enters).finish()
    }
}

impl Ring {
    /// A ring of `entries` submission slots (completion queue 4x: polls of
    /// clients in their handshake complete between batches), with a table
    /// of `files` registered sockets (see [`Ring::register`]).
    pub(crate) fn new(entries: u32, files: u32) -> io::Result<Self> {
        let built =
            IoUring::builder().setup_single_issuer().setup_defer_taskrun().setup_cqsize(entries * 4).build(entries);
        let (ring, deferred) = match built {
            Ok(ring) => (ring, true),
            // Kernels before 6.1 lack DEFER_TASKRUN: a plain ring works the same, a little dearer.
            Err(_) => (IoUring::builder().setup_cqsize(entries * 4).build(entries)?, false),
        };
        ring.submitter().register_files_sparse(files.max(1))?;
        Ok(Self { ring, deferred, enters: 0, sqes: 0 })
    }

    /// Puts `fd` in slot `slot` of the registered files (`-1` empties it),
    /// so that operations on it name it as `types::Fixed(slot)` and the
    /// kernel skips looking the descriptor up (and counting references to
    /// it: this process has several threads) on every operation.
    pub(crate) fn register(&mut self, slot: u32, fd: i32) -> io::Result<()> {
        self.ring.submitter().register_files_update(slot, &[fd]).map(drop)
    }

    /// Free submission slots.
    pub(crate) fn space(&mut self) -> usize {
        let sq = self.ring.submission();
        sq.capacity() - sq.len()
    }

    /// Queues one operation; the caller made room (see [`Ring::space`]).
    ///
    /// # Safety
    /// Every buffer the entry points to stays valid and unmoved until its
    /// completion is reaped.
    pub(crate) unsafe fn push(&mut self, entry: &squeue::Entry) {
        self.sqes += 1;
        // SAFETY: forwarded to the caller; a full queue is a caller bug.
        unsafe { self.ring.submission().push(entry).expect("the caller keeps room in the submission queue") };
    }

    /// Submits what is queued and waits for at least `want` completions.
    pub(crate) fn submit_and_wait(&mut self, want: usize) -> io::Result<()> {
        self.enters += 1;
        match self.ring.submit_and_wait(want) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Submits what is queued and waits for one completion or `timeout`.
    pub(crate) fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        self.enters += 1;
        let ts = types::Timespec::from(timeout);
        let args = types::SubmitArgs::new().timespec(&ts);
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes the completions that are ready: `(user_data, result)`.
    pub(crate) fn reap(&mut self, out: &mut Vec<(u64, i32)>) {
        out.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
    }
}
