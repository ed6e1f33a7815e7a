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
//! Each connection's socket is also registered in the ring's file table
//! for its life on the shard (slot = its key in the shard's slab), so an
//! operation names it by slot and the kernel skips the file lookup and
//! reference count (`fget`/`fput`, ~3 % of the server's CPU at 1,000
//! clients) that a plain fd costs every receive and send. A socket
//! without a slot (table full or refused) is named by its fd.
//!
//! glommio's own rings are left to what they do well (accepting, timers,
//! the prompt I/O of connections outside a room): glommio 0.9 sets them up
//! with no flags, so a poll armed there costs a cross-CPU notification per
//! message, which the tick path must not pay.

use io_uring::{opcode, types, IoUring};
use std::cell::Ref;
use std::io;
use std::os::fd::RawFd;
use tracing::{debug, warn};

/// Receive slot per socket per round, bytes. A client sends one input
/// (tens of bytes) per tick; a socket whose slot fills is read again. Small
/// slots keep a pass's receive area dense (128 players: 64 KiB, where
/// 2 KiB slots spread the same few bytes per player over 256 KiB).
pub(crate) const RECV_SLOT: usize = 512;

/// Most rounds of receives per pass for one socket (its slot filled each
/// time): bounds one pass's work for a client that floods, at 16 KiB.
const MAX_RECV_ROUNDS: usize = 32;

/// Submission queue entries; bigger batches go in several submissions.
const ENTRIES: u32 = 1024;

/// A socket as the ring names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Socket {
    /// Its file descriptor.
    pub(crate) fd: RawFd,
    /// Its slot in the ring's registered files, when it has one.
    pub(crate) fixed: Option<u32>,
}

/// Builds `$op::new(target, ...)` with the socket's registered slot when it
/// has one, else its fd.
macro_rules! on_socket {
    ($socket:expr, $op:path, $($arg:expr),*) => {
        match $socket.fixed {
            Some(slot) => <$op>::new(types::Fixed(slot), $($arg),*),
            None => <$op>::new(types::Fd($socket.fd), $($arg),*),
        }
    };
}

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
    /// Slots in the registered file table (0: none registered).
    files: u32,
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
    /// A ring for this thread, with a table of `files` registered-file
    /// slots (none when the kernel refuses the table: every socket is then
    /// named by its fd).
    ///
    /// # Errors
    /// When io_uring cannot be set up at all.
    pub(crate) fn new(files: u32) -> io::Result<Self> {
        let flagged =
            IoUring::builder().setup_single_issuer().setup_defer_taskrun().setup_cqsize(ENTRIES * 2).build(ENTRIES);
        let (ring, setup) = match flagged {
            Ok(ring) => (ring, "SINGLE_ISSUER|DEFER_TASKRUN"),
            Err(_) => (IoUring::builder().setup_cqsize(ENTRIES * 2).build(ENTRIES)?, "plain"),
        };
        let files = match ring.submitter().register_files_sparse(files) {
            Ok(()) => files,
            Err(e) => {
                warn!("the tick ring's file table ({files} slots) was refused: {e}; sockets go by their fds");
                0
            }
        };
        Ok(Self {
            ring,
            setup,
            files,
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

    /// Slots in the registered file table.
    pub(crate) fn file_slots(&self) -> u32 {
        self.files
    }

    /// Registers socket `fd` in slot `slot`: how the ring names it from now
    /// on. Its fd alone when the slot is past the table or the kernel
    /// refuses.
    pub(crate) fn register(&mut self, slot: usize, fd: RawFd) -> Socket {
        let fixed = u32::try_from(slot).ok().filter(|&i| i < self.files).filter(|&i| {
            match self.ring.submitter().register_files_update(i, &[fd]) {
                Ok(1) => true,
                Ok(_) => false,
                Err(e) => {
                    debug!("socket {fd} not registered in slot {i}: {e}");
                    false
                }
            }
        });
        Socket { fd, fixed }
    }

    /// Empties `socket`'s slot, if it has one: the ring's reference to the
    /// socket goes, so closing its fd closes it. Called before the fd is
    /// closed or handed off, when no operation on it is in flight.
    pub(crate) fn unregister(&mut self, socket: Socket) {
        if let Some(i) = socket.fixed {
            if let Err(e) = self.ring.submitter().register_files_update(i, &[-1]) {
                // Not expected (the slot was filled by this ring); the
                // socket stays open until the slot is reused.
                warn!("registered slot {i} not emptied: {e}");
            }
        }
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
        fds: &[Socket],
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
        fds: &[Socket],
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
                let sqe = on_socket!(fds[i], opcode::Recv, buf, RECV_SLOT as u32)
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
        bufs: &[(Socket, Ref<'_, [u8]>)],
        sent: &mut Vec<Option<usize>>,
    ) -> io::Result<()> {
        sent.clear();
        for batch in bufs.chunks(ENTRIES as usize) {
            {
                let mut sq = self.ring.submission();
                for (slot, (socket, bytes)) in batch.iter().enumerate() {
                    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                    let sqe = on_socket!(socket, opcode::Send, bytes.as_ptr(), len)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read as _, Write as _};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd as _;
    use std::time::Duration;

    /// A connected loopback pair: (the server's end, the peer's).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        (ours, peer)
    }

    /// Waits (bounded) until `fd` has at least `n` bytes to read: loopback
    /// usually delivers within the sender's call, but a kernel may leave
    /// the delivery to its softirq thread, and the ring reads without
    /// waiting.
    fn wait_readable(fd: RawFd, n: usize) {
        for _ in 0..1000 {
            let mut queued: libc::c_int = 0;
            // SAFETY: FIONREAD writes one c_int into `queued`.
            let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut queued) };
            assert_eq!(r, 0, "FIONREAD: {}", io::Error::last_os_error());
            if usize::try_from(queued).unwrap_or(0) >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("{n} bytes never arrived on fd {fd}");
    }

    fn send(ring: &mut Ring, socket: Socket, bytes: &[u8]) -> Option<usize> {
        let cell = std::cell::RefCell::new(bytes.to_vec());
        let mut sent = Vec::new();
        let borrowed = Ref::map(cell.borrow(), Vec::as_slice);
        ring.send_all(&[(socket, borrowed)], &mut sent).unwrap();
        sent[0]
    }

    #[test]
    fn a_registered_socket_is_used_by_slot_and_closes_once_its_slot_is_emptied() {
        let mut ring = Ring::new(4).unwrap();
        assert_eq!(ring.file_slots(), 4);
        let (ours, mut peer) = pair();
        let socket = ring.register(2, ours.as_raw_fd());
        assert_eq!(socket.fixed, Some(2));
        assert_eq!(send(&mut ring, socket, b"tick"), Some(4));
        let mut got = [0u8; 4];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"tick");
        // Received by slot too, once the bytes are in the socket.
        peer.write_all(b"input").unwrap();
        wait_readable(ours.as_raw_fd(), 5);
        let (mut data, mut outcome) = (Vec::new(), Vec::new());
        ring.recv_all(&[socket], |_, bytes| data.extend_from_slice(bytes), &mut outcome).unwrap();
        assert_eq!(data, b"input");
        assert_eq!(outcome, [Received::Nothing]);
        // The slot emptied, closing the fd closes the connection (some
        // kernels release a removed file after a grace period: bounded
        // retries).
        ring.unregister(socket);
        drop(ours);
        let closed = (0..20).any(|_| matches!(peer.read(&mut got), Ok(0)));
        assert!(closed, "the peer sees the close");
    }

    /// `len` bytes of a pattern that shows any reordering or loss.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn a_read_longer_than_a_slot_arrives_whole_and_in_order_in_one_call() {
        let mut ring = Ring::new(1).unwrap();
        let (ours, mut peer) = pair();
        let socket = ring.register(0, ours.as_raw_fd());
        // Three full slots and a part: four rounds, the last one short.
        let sent = pattern(3 * RECV_SLOT + 100);
        peer.write_all(&sent).unwrap();
        wait_readable(ours.as_raw_fd(), sent.len());
        let (mut data, mut outcome) = (Vec::new(), Vec::new());
        ring.recv_all(&[socket], |_, bytes| data.extend_from_slice(bytes), &mut outcome).unwrap();
        assert_eq!(data, sent);
        assert_eq!(outcome, [Received::Nothing]);
    }

    #[test]
    fn a_flooding_socket_is_read_at_most_its_rounds_per_call_and_the_rest_waits() {
        let mut ring = Ring::new(2).unwrap();
        let (flood_ours, mut flood_peer) = pair();
        let (calm_ours, mut calm_peer) = pair();
        let flood = ring.register(0, flood_ours.as_raw_fd());
        let calm = ring.register(1, calm_ours.as_raw_fd());
        let cap = MAX_RECV_ROUNDS * RECV_SLOT;
        let sent = pattern(cap + 2 * RECV_SLOT + 7);
        flood_peer.write_all(&sent).unwrap();
        calm_peer.write_all(b"input").unwrap();
        wait_readable(flood_ours.as_raw_fd(), sent.len());
        wait_readable(calm_ours.as_raw_fd(), 5);
        let (mut data, mut calm_data, mut outcome) = (Vec::new(), Vec::new(), Vec::new());
        let mut on_data = |i: usize, bytes: &[u8]| {
            if i == 0 {
                data.extend_from_slice(bytes)
            } else {
                calm_data.extend_from_slice(bytes)
            }
        };
        ring.recv_all(&[flood, calm], &mut on_data, &mut outcome).unwrap();
        assert_eq!(data.len(), cap, "one call reads the cap, no more");
        assert_eq!(calm_data, b"input", "the other socket is read beside it");
        assert_eq!(outcome, [Received::Nothing, Received::Nothing]);
        // The rest waits in the socket for the next call, in order.
        let mut on_data = |i: usize, bytes: &[u8]| {
            assert_eq!(i, 0);
            data.extend_from_slice(bytes);
        };
        ring.recv_all(&[flood, calm], &mut on_data, &mut outcome).unwrap();
        assert_eq!(data, sent);
    }

    #[test]
    fn a_socket_left_in_its_slot_stays_open_after_its_fd_is_closed() {
        // Why `Shard::remove` empties the slot before the fd closes.
        let mut ring = Ring::new(1).unwrap();
        let (ours, mut peer) = pair();
        let socket = ring.register(0, ours.as_raw_fd());
        assert_eq!(socket.fixed, Some(0));
        drop(ours);
        let err = peer.read(&mut [0u8; 4]).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut), "{err}");
        // A ring's teardown, its files' release with it, finishes in the
        // kernel's own time: read until the close shows (bounded).
        drop(ring);
        let closed = (0..20).any(|_| matches!(peer.read(&mut [0u8; 4]), Ok(0)));
        assert!(closed, "the ring's reference went with it");
    }

    #[test]
    fn a_slot_past_the_table_names_the_socket_by_its_fd() {
        let mut ring = Ring::new(1).unwrap();
        let (ours, mut peer) = pair();
        let socket = ring.register(1, ours.as_raw_fd());
        assert_eq!(socket, Socket { fd: ours.as_raw_fd(), fixed: None });
        assert_eq!(send(&mut ring, socket, b"ok"), Some(2));
        let mut got = [0u8; 2];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ok");
        ring.unregister(socket);
        drop(ours);
        assert!((0..20).any(|_| matches!(peer.read(&mut got), Ok(0))));
    }
}
