//! The shard's own io_uring ring for the tick pass: one batch of `RECV`s
//! and one batch of `SEND`s for every player of the rooms a pass ticks,
//! each batch submitted with one `io_uring_enter`.
//!
//! Both are issued with `MSG_DONTWAIT`, so the kernel completes each one
//! inline while it handles the submission (data or `EAGAIN`, never a poll
//! armed): a batch's completions are all there when `submit_and_wait`
//! returns, and nothing is left in flight between passes. The ring is set
//! up `SINGLE_ISSUER | DEFER_TASKRUN` (only this shard's thread uses it,
//! and nothing on it ever completes asynchronously from another CPU); on a
//! kernel without those flags it falls back to a plain ring.
//!
//! glommio's own rings are left to what they do well (accepting, timers,
//! the prompt I/O of connections outside a room): glommio 0.9 sets them up
//! with no flags, so a poll armed there costs a cross-CPU notification per
//! message, which the tick path must not pay.

use io_uring::{opcode, types, IoUring};
use std::cell::Ref;
use std::io;
use std::os::fd::RawFd;

/// Receive slot per socket per round, bytes. A client sends one input
/// (tens of bytes) per tick; a socket whose slot fills is read again.
pub(crate) const RECV_SLOT: usize = 2048;

/// Most rounds of receives per pass for one socket (its slot filled each
/// time): bounds one pass's work for a client that floods.
const MAX_RECV_ROUNDS: usize = 8;

/// Submission queue entries; bigger batches go in several submissions.
const ENTRIES: u32 = 1024;

/// What one socket's receive gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Nothing waiting.
    Nothing,
    /// The peer closed its side (EOF).
    Eof,
    /// The socket failed.
    Failed,
}

/// The shard's ring and its receive buffer.
pub(crate) struct Ring {
    ring: IoUring,
    setup: &'static str,
    rx: Vec<u8>,
    /// Reused from pass to pass: the sockets of a receive round, those to
    /// read again, and a batch's results.
    todo: Vec<usize>,
    again: Vec<usize>,
    results: Vec<i32>,
    /// Syscalls and submissions made, for the metrics.
    enters: u64,
    submitted: u64,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring").field("setup", &self.setup).finish_non_exhaustive()
    }
}

impl Ring {
    /// A ring for this thread.
    ///
    /// # Errors
    /// When io_uring cannot be set up at all.
    pub(crate) fn new() -> io::Result<Self> {
        let flagged =
            IoUring::builder().setup_single_issuer().setup_defer_taskrun().setup_cqsize(ENTRIES * 2).build(ENTRIES);
        let (ring, setup) = match flagged {
            Ok(ring) => (ring, "SINGLE_ISSUER|DEFER_TASKRUN"),
            Err(_) => (IoUring::builder().setup_cqsize(ENTRIES * 2).build(ENTRIES)?, "plain"),
        };
        Ok(Self {
            ring,
            setup,
            rx: Vec::new(),
            todo: Vec::new(),
            again: Vec::new(),
            results: Vec::new(),
            enters: 0,
            submitted: 0,
        })
    }

    /// How the ring was set up (for the start-up log).
    pub(crate) fn setup(&self) -> &'static str {
        self.setup
    }

    /// `io_uring_enter` calls and submissions made so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.enters, self.submitted)
    }

    /// Submits what is queued and reaps exactly `want` completions into
    /// `self.results` (indexed by user data).
    fn submit_reap(&mut self, want: usize) -> io::Result<()> {
        self.results.clear();
        self.results.resize(want, 0);
        let mut got = 0;
        while got < want {
            self.enters += 1;
            match self.ring.submit_and_wait(want - got) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => return Err(e),
            }
            for cqe in self.ring.completion() {
                if let Some(r) = self.results.get_mut(cqe.user_data() as usize) {
                    *r = cqe.result();
                }
                got += 1;
            }
        }
        Ok(())
    }

    /// Reads what waits on each socket of `fds` without blocking, calling
    /// `on_data(i, bytes)` for the data of `fds[i]` (possibly several times,
    /// in order) and returning what else each receive said.
    ///
    /// # Errors
    /// When the ring itself fails (never for a socket's own error).
    pub(crate) fn recv_all(
        &mut self,
        fds: &[RawFd],
        mut on_data: impl FnMut(usize, &[u8]),
        outcome: &mut Vec<Received>,
    ) -> io::Result<()> {
        outcome.clear();
        outcome.resize(fds.len(), Received::Nothing);
        let mut todo = std::mem::take(&mut self.todo);
        let mut again = std::mem::take(&mut self.again);
        todo.clear();
        todo.extend(0..fds.len());
        let mut failed = Ok(());
        for _ in 0..MAX_RECV_ROUNDS {
            if todo.is_empty() {
                break;
            }
            again.clear();
            for batch in todo.chunks(ENTRIES as usize) {
                if let Err(e) = self.recv_batch(fds, batch, &mut on_data, outcome, &mut again) {
                    failed = Err(e);
                    break;
                }
            }
            if failed.is_err() {
                break;
            }
            std::mem::swap(&mut todo, &mut again);
        }
        self.todo = todo;
        self.again = again;
        failed
    }

    /// One batch of receives (at most the queue's size): `batch` holds
    /// indices into `fds`; those whose slot filled go to `again`.
    fn recv_batch(
        &mut self,
        fds: &[RawFd],
        batch: &[usize],
        on_data: &mut impl FnMut(usize, &[u8]),
        outcome: &mut [Received],
        again: &mut Vec<usize>,
    ) -> io::Result<()> {
        if self.rx.len() < batch.len() * RECV_SLOT {
            self.rx.resize(batch.len() * RECV_SLOT, 0);
        }
        let base = self.rx.as_mut_ptr();
        {
            let mut sq = self.ring.submission();
            for (slot, &i) in batch.iter().enumerate() {
                // SAFETY: each slot is a distinct RECV_SLOT-byte region of
                // `rx`, which is neither moved nor read until every
                // completion of this batch is reaped.
                let buf = unsafe { base.add(slot * RECV_SLOT) };
                let sqe = opcode::Recv::new(types::Fd(fds[i]), buf, RECV_SLOT as u32)
                    .flags(libc::MSG_DONTWAIT)
                    .build()
                    .user_data(slot as u64);
                // SAFETY: the SQE's buffer outlives the operation (above);
                // the queue has room (batch <= ENTRIES).
                unsafe { sq.push(&sqe).map_err(|_| io::Error::other("submission queue full"))? };
            }
        }
        self.submitted += batch.len() as u64;
        self.submit_reap(batch.len())?;
        for (slot, &i) in batch.iter().enumerate() {
            match self.results[slot] {
                n if n > 0 => {
                    let n = n as usize;
                    on_data(i, &self.rx[slot * RECV_SLOT..slot * RECV_SLOT + n]);
                    if n == RECV_SLOT {
                        again.push(i);
                    }
                }
                0 => outcome[i] = Received::Eof,
                n if n == -libc::EAGAIN || n == -libc::EINTR => {}
                _ => outcome[i] = Received::Failed,
            }
        }
        Ok(())
    }

    /// Sends each buffer to its socket without blocking, and writes into
    /// `sent[i]` how many bytes of `bufs[i]` the socket took (`None`: the
    /// socket failed).
    ///
    /// # Errors
    /// When the ring itself fails (never for a socket's own error).
    pub(crate) fn send_all(
        &mut self,
        bufs: &[(RawFd, Ref<'_, [u8]>)],
        sent: &mut Vec<Option<usize>>,
    ) -> io::Result<()> {
        sent.clear();
        for batch in bufs.chunks(ENTRIES as usize) {
            {
                let mut sq = self.ring.submission();
                for (slot, (fd, bytes)) in batch.iter().enumerate() {
                    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                    let sqe = opcode::Send::new(types::Fd(*fd), bytes.as_ptr(), len)
                        .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                        .build()
                        .user_data(slot as u64);
                    // SAFETY: the bytes are borrowed (`Ref`) for the whole
                    // call, so they stay put until the completion is reaped.
                    unsafe { sq.push(&sqe).map_err(|_| io::Error::other("submission queue full"))? };
                }
            }
            self.submitted += batch.len() as u64;
            self.submit_reap(batch.len())?;
            sent.extend(self.results.iter().map(|&r| match r {
                n if n >= 0 => Some(n as usize),
                n if n == -libc::EAGAIN || n == -libc::EINTR || n == -libc::ENOBUFS => Some(0),
                _ => None,
            }));
        }
        Ok(())
    }
}
