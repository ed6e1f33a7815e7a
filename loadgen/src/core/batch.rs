//! The steady state: the clients due at a wake-up read in one batch of
//! `RECVMSG`s (each with its kernel receive timestamp), then their input
//! frames written in one batch of `SEND`s, both `MSG_DONTWAIT`, so each
//! batch completes within its one `io_uring_enter`.

use super::{parts, user_data, wall_now_ns, Core, K_RECV, K_SEND, RING_ENTRIES};
use crate::client::{End, Phase, Rx};
use io_uring::{opcode, types};
use std::io;

/// Bytes one batched read takes at most; a read that fills it is repeated.
const RX_SLOT: usize = 4096;

/// The batch reads' buffers: one slot per read in flight, each with its
/// `msghdr` and room for the timestamp's control message. Built once; the
/// pointers inside stay valid because nothing here is ever resized.
pub(super) struct RxArena {
    bufs: Vec<u8>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::msghdr>,
    ctl: Vec<[u64; 8]>,
}

impl RxArena {
    pub(super) fn new(slots: usize) -> Self {
        let mut a = Self {
            bufs: vec![0; slots * RX_SLOT],
            // SAFETY: all-zero iovec and msghdr are valid (null pointers, zero lengths).
            iov: vec![unsafe { std::mem::zeroed() }; slots],
            hdrs: vec![unsafe { std::mem::zeroed() }; slots],
            ctl: vec![[0; 8]; slots],
        };
        let base = a.bufs.as_mut_ptr();
        for i in 0..slots {
            // SAFETY: within `bufs`.
            a.iov[i] = libc::iovec { iov_base: unsafe { base.add(i * RX_SLOT) }.cast(), iov_len: RX_SLOT };
        }
        a
    }

    /// The slot's header, reset for a new read.
    fn prepare(&mut self, slot: usize) -> *mut libc::msghdr {
        self.ctl[slot] = [0; 8];
        let h = &mut self.hdrs[slot];
        h.msg_name = std::ptr::null_mut();
        h.msg_namelen = 0;
        h.msg_iov = &raw mut self.iov[slot];
        h.msg_iovlen = 1;
        h.msg_control = self.ctl[slot].as_mut_ptr().cast();
        h.msg_controllen = size_of::<[u64; 8]>();
        h.msg_flags = 0;
        h
    }

    fn data(&self, slot: usize, len: usize) -> &[u8] {
        &self.bufs[slot * RX_SLOT..slot * RX_SLOT + len]
    }
}

/// The kernel receive timestamp in a `recvmsg`'s control data (wall ns).
pub(super) fn stamp_of(hdr: &libc::msghdr) -> Option<u64> {
    // SAFETY: the header describes our own control buffer; CMSG_* stay within it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
        while !cmsg.is_null() {
            let c = &*cmsg;
            if c.cmsg_level == libc::SOL_SOCKET
                && c.cmsg_type == libc::SCM_TIMESTAMPNS
                && c.cmsg_len as usize >= libc::CMSG_LEN(size_of::<libc::timespec>() as u32) as usize
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                return Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            }
            cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
        }
    }
    None
}

impl Core {
    /// Reaps `want` completions of the batch just pushed into `self.cqes`
    /// (the prompt path's go to `later`).
    fn reap_batch(&mut self, want: usize) -> io::Result<()> {
        self.cqes.clear();
        let mut got = 0;
        let mut all = std::mem::take(&mut self.all);
        while got < want {
            self.ring.submit_and_wait(want - got)?;
            self.ring.reap(&mut all);
            for (ud, res) in all.drain(..) {
                let kind = parts(ud).1;
                if kind == K_RECV || kind == K_SEND {
                    self.cqes.push((ud, res));
                    got += 1;
                } else {
                    self.later.push((ud, res));
                }
            }
        }
        self.all = all;
        Ok(())
    }

    /// One `RECVMSG` per client in `reads`, in batches; again for those
    /// whose read filled its slot.
    pub(super) fn read_batch(&mut self, now: u64) -> io::Result<()> {
        let mut todo = std::mem::take(&mut self.todo);
        todo.clear();
        todo.extend_from_slice(&self.reads);
        let slots = self.rx.iov.len();
        while !todo.is_empty() {
            self.retry.clear();
            for chunk in todo.chunks(slots) {
                self.room_for(self.ring_capacity())?;
                let mut pushed = 0;
                for (slot, &local) in chunk.iter().enumerate() {
                    let c = &self.clients[local as usize];
                    if !c.registered || c.end.is_some() {
                        continue;
                    }
                    let hdr = self.rx.prepare(slot);
                    let e = opcode::RecvMsg::new(types::Fixed(local), hdr)
                        .flags(libc::MSG_DONTWAIT as u32)
                        .build()
                        .user_data(user_data(local, K_RECV, slot, c.gen));
                    // SAFETY: the slot's header, iovec, buffer and control
                    // bytes stay put until this batch is reaped below.
                    unsafe { self.ring.push(&e) };
                    pushed += 1;
                }
                self.reap_batch(pushed)?;
                let cqes = std::mem::take(&mut self.cqes);
                for &(ud, res) in &cqes {
                    let (local, _, slot, gen) = parts(ud);
                    let c = &mut self.clients[local];
                    if c.gen != gen {
                        continue;
                    }
                    if res > 0 {
                        let n = res as usize;
                        let stamp = stamp_of(&self.rx.hdrs[slot]);
                        let rx = Rx { wall_ns: stamp.unwrap_or_else(wall_now_ns), stamped: stamp.is_some() };
                        c.on_wire(self.rx.data(slot, n), rx, now, &mut self.ctx);
                        if n == RX_SLOT {
                            self.retry.push(local as u32);
                        }
                    } else if res == 0 {
                        c.end.get_or_insert(End::Closed("eof".into()));
                    } else if res != -libc::EAGAIN {
                        c.end.get_or_insert(End::Closed("io".into()));
                    }
                }
                self.cqes = cqes;
            }
            std::mem::swap(&mut todo, &mut self.retry);
        }
        self.todo = todo;
        for i in 0..self.reads.len() {
            let local = self.reads[i];
            if let Some(end) = self.clients[local as usize].end.take() {
                self.ended(local, end)?;
            }
        }
        Ok(())
    }

    fn ring_capacity(&self) -> usize {
        RING_ENTRIES as usize
    }

    /// The inputs due, and whatever else waits to be sent (pongs, the rest
    /// of a short send), one `SEND` per client in batches.
    pub(super) fn send_batch(&mut self) -> io::Result<()> {
        // The inputs' lag is taken as their frames are written, just
        // before they go (the reads before took their time).
        let now = self.plan.ns(std::time::Instant::now());
        self.sends.clear();
        for i in 0..self.reads.len() {
            let local = self.reads[i];
            let c = &mut self.clients[local as usize];
            if !c.phase.is_reading() {
                continue;
            }
            if c.phase == Phase::Playing {
                c.write_input(now, &mut self.ctx);
            }
            if !c.outgoing().is_empty() {
                self.sends.push(local);
            }
        }
        let sends = std::mem::take(&mut self.sends);
        for chunk in sends.chunks(self.ring_capacity()) {
            self.room_for(self.ring_capacity())?;
            for &local in chunk {
                let c = &mut self.clients[local as usize];
                let gen = c.gen;
                let out = c.outgoing();
                let e = opcode::Send::new(types::Fixed(local), out.as_ptr(), out.len() as u32)
                    .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(user_data(local, K_SEND, 0, gen));
                // SAFETY: `tx` (and the TLS `out`) is not touched until the
                // batch is reaped below.
                unsafe { self.ring.push(&e) };
            }
            self.reap_batch(chunk.len())?;
            let cqes = std::mem::take(&mut self.cqes);
            for &(ud, res) in &cqes {
                let (local, _, _, gen) = parts(ud);
                let c = &mut self.clients[local];
                if c.gen != gen {
                    continue;
                }
                if res >= 0 {
                    c.tx_blocked = c.sent(res as usize);
                } else if res == -libc::EAGAIN {
                    c.tx_blocked = true;
                } else {
                    c.end.get_or_insert(End::Closed("io".into()));
                }
            }
            self.cqes = cqes;
            for &local in chunk {
                if let Some(end) = self.clients[local as usize].end.take() {
                    self.ended(local, end)?;
                }
            }
        }
        self.sends = sends;
        Ok(())
    }
}
