//! The prompt path: clients that are connecting, handshaking, waiting for
//! their room, joining or closing. Each waits on one poll for the one step
//! it needs and is answered with plain non-blocking calls the moment it
//! completes (so the handshake figure is not rounded to a grid step); the
//! sweep gives up on those past their deadline. A client that joins moves
//! to the batches (`batch`) and its slots go on the wheel.

use super::batch::stamp_of;
use super::{parts, user_data, wall_now_ns, Core, RoomSlot, K_CANCEL, K_POLL, LINGER, W_INPUT, W_READ};
use crate::client::{End, Phase, Rx, MID_HOLD_NS};
use crate::handshake::{Answer, Handshake};
use crate::net;
use crate::schedule::Slots;
use crate::{scenario, ws};
use io_uring::{opcode, types};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::Request;
use tickforge_protocol::ClientSession;

/// One non-blocking `recvmsg` with its timestamp (the prompt path).
fn recv_direct(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut ctl = [0u64; 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: all-zero msghdr is valid; the pointers set below outlive the call.
    let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
    h.msg_iov = &raw mut iov;
    h.msg_iovlen = 1;
    h.msg_control = ctl.as_mut_ptr().cast();
    h.msg_controllen = size_of::<[u64; 8]>();
    // SAFETY: valid fd number and header.
    let n = unsafe { libc::recvmsg(fd, &mut h, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((n as usize, stamp_of(&h)))
}

/// One non-blocking send (the prompt path); how many bytes went.
fn send_direct(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: valid buffer.
    let n = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(n as usize)
}

impl Core {
    /// Arms a one-shot poll for `events` on a prompt-path client.
    fn arm_poll(&mut self, local: u32, events: i16) -> io::Result<()> {
        self.room_for(1)?;
        let c = &mut self.clients[local as usize];
        let Some(fd) = c.fd.as_ref().map(AsRawFd::as_raw_fd) else { return Ok(()) };
        c.polling = true;
        let e =
            opcode::PollAdd::new(types::Fd(fd), events as u32).build().user_data(user_data(local, K_POLL, 0, c.gen));
        // SAFETY: a poll points to no buffer.
        unsafe { self.ring.push(&e) };
        Ok(())
    }

    /// Closes a client's socket (cancelling its poll) and marks it done.
    pub(super) fn close(&mut self, local: u32) -> io::Result<()> {
        let c = &mut self.clients[local as usize];
        if c.phase == Phase::Done {
            return Ok(());
        }
        if matches!(c.phase, Phase::Playing | Phase::Draining) {
            self.live.clients.fetch_sub(1, Ordering::Relaxed);
        }
        let (polling, gen, registered) = (c.polling, c.gen, c.registered);
        c.registered = false;
        c.phase = Phase::Done;
        c.polling = false;
        c.gen = c.gen.wrapping_add(1);
        c.fd = None;
        c.session = None;
        c.handshake = None;
        c.head = Vec::new();
        c.tx = Vec::new();
        c.tls = None;
        self.active -= 1;
        if registered {
            // The table holds the socket open until its slot is emptied
            // (should that fail, the ring's end closes it).
            let _ = self.ring.register(local, -1);
        }
        if polling {
            self.room_for(1)?;
            let e = opcode::PollRemove::new(user_data(local, K_POLL, 0, gen))
                .build()
                .user_data(user_data(local, K_CANCEL, 0, gen));
            // SAFETY: no buffer.
            unsafe { self.ring.push(&e) };
        }
        Ok(())
    }

    /// Sends our close frame and waits (bounded) for the server's.
    pub(super) fn begin_close(&mut self, local: u32, now: u64) -> io::Result<()> {
        let c = &mut self.clients[local as usize];
        if matches!(c.phase, Phase::Playing | Phase::Draining) {
            self.live.clients.fetch_sub(1, Ordering::Relaxed);
        }
        c.phase = Phase::Closing;
        c.deadline_ns = now + LINGER.as_nanos() as u64;
        let mask = self.ctx.mask();
        // After what a short send left (the tail of a whole frame), so the
        // stream stays framed; when not all of it goes, the socket is
        // closed without waiting.
        ws::write_close(1000, "load run over", mask, &mut c.tx);
        let fd = c.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        let out = c.outgoing();
        let len = out.len();
        let all_sent = matches!(send_direct(fd, out), Ok(n) if n == len);
        c.tx.clear();
        if let Some(tls) = c.tls.as_mut() {
            tls.out.clear();
        }
        if c.close_seen || !all_sent {
            return self.close(local);
        }
        self.setup.push(local);
        if self.clients[local as usize].polling {
            return Ok(());
        }
        self.arm_poll(local, libc::POLLIN)
    }

    /// A client whose connection ended on the server's side: counts it.
    pub(super) fn ended(&mut self, local: u32, end: End) -> io::Result<()> {
        let phase = self.clients[local as usize].phase;
        let index = self.clients[local as usize].index;
        match end {
            End::Closed(kind) => {
                self.ctx.error(|e| *e.unexpected_close.entry(kind).or_default() += 1);
                if phase.is_setup() {
                    self.fail_room(index)?;
                }
                self.close(local)
            }
            End::Rejected(code) => {
                self.ctx.error(|e| *e.join_failed.entry(code).or_default() += 1);
                self.fail_room(index)?;
                self.clients[local as usize].end = None;
                self.begin_close(local, self.plan.ns(Instant::now()))
            }
        }
    }

    /// A group's first client failed before its room existed: its other
    /// clients cannot join.
    fn fail_room(&mut self, index: usize) -> io::Result<()> {
        let ppr = self.plan.cfg.players_per_room;
        if index % ppr != 0 {
            return Ok(());
        }
        let group = index / ppr;
        if matches!(self.rooms.get(&group), Some(RoomSlot::Ready(_))) {
            return Ok(());
        }
        self.rooms.insert(group, RoomSlot::Failed);
        let now = self.plan.ns(Instant::now());
        for local in self.waiting.remove(&group).unwrap_or_default() {
            if self.clients[local as usize].phase == Phase::WaitRoom {
                self.ctx.error(|e| *e.join_failed.entry("no_room".into()).or_default() += 1);
                self.begin_close(local, now)?;
            }
        }
        Ok(())
    }

    /// `--reconnect-every`: drops a playing client's socket (no close frame,
    /// as a network drop would) and connects again at once; its room
    /// request will be a `resume` with the seat's newest token.
    pub(super) fn reconnect(&mut self, local: u32, now: u64) -> io::Result<()> {
        self.ctx.stats.drops += 1;
        self.live.clients.fetch_sub(1, Ordering::Relaxed);
        let c = &mut self.clients[local as usize];
        let (polling, gen, registered) = (c.polling, c.gen, c.registered);
        c.registered = false;
        c.polling = false;
        c.gen = c.gen.wrapping_add(1);
        if registered {
            // The ring's table holds the socket open until its slot is emptied.
            let _ = self.ring.register(local, -1);
        }
        if polling {
            self.room_for(1)?;
            let e = opcode::PollRemove::new(user_data(local, K_POLL, 0, gen))
                .build()
                .user_data(user_data(local, K_CANCEL, 0, gen));
            // SAFETY: no buffer.
            unsafe { self.ring.push(&e) };
        }
        let c = &mut self.clients[local as usize];
        c.fd = None;
        c.drop_connection(now);
        self.connect_client(local, now)
    }

    /// A non-blocking connect for client `local` and a poll for its end.
    fn connect_client(&mut self, local: u32, now: u64) -> io::Result<()> {
        let index = self.clients[local as usize].index;
        let cfg = &self.plan.cfg;
        let source = (!cfg.source_ips.is_empty()).then(|| cfg.source_ips[index % cfg.source_ips.len()]);
        let c = &mut self.clients[local as usize];
        c.started_ns = now;
        let addr = c.target.as_ref().map_or(self.plan.target.addr, |t| t.addr);
        match net::start_connect(addr, source) {
            Ok(fd) => {
                c.fd = Some(fd);
                c.phase = Phase::Connecting;
                c.deadline_ns = now + cfg.connect_timeout.as_nanos() as u64;
                self.setup.push(local);
                self.arm_poll(local, libc::POLLOUT)
            }
            Err(_) => {
                self.ctx.error(|e| e.connect += 1);
                c.phase = Phase::Connecting;
                self.fail_room(index)?;
                self.close(local)
            }
        }
    }

    /// Starts the clients whose ramp-up slot has come: a non-blocking
    /// connect and a poll for its end.
    pub(super) fn start_due(&mut self, now: u64) -> io::Result<()> {
        while let Some(&local) = self.starts.front() {
            let index = self.clients[local as usize].index;
            if self.plan.start_ns(index) > now {
                break;
            }
            self.starts.pop_front();
            self.connect_client(local, now)?;
        }
        Ok(())
    }

    /// Gives up on the prompt-path clients past their deadline.
    pub(super) fn sweep(&mut self, now: u64) -> io::Result<()> {
        let mut setup = std::mem::take(&mut self.setup);
        setup.retain(|&l| self.clients[l as usize].phase.is_setup());
        setup.sort_unstable();
        setup.dedup();
        for &local in &setup {
            let c = &self.clients[local as usize];
            if now < c.deadline_ns || !c.phase.is_setup() {
                continue;
            }
            let index = c.index;
            match c.phase {
                Phase::Connecting => {
                    self.ctx.error(|e| e.connect += 1);
                    self.fail_room(index)?;
                    self.close(local)?;
                }
                Phase::Handshaking => {
                    self.ctx.error(|e| e.handshake_failed += 1);
                    self.fail_room(index)?;
                    self.close(local)?;
                }
                Phase::WaitRoom | Phase::Joining => {
                    self.ctx.error(|e| *e.join_failed.entry("timeout".into()).or_default() += 1);
                    self.fail_room(index)?;
                    self.begin_close(local, now)?;
                }
                _ => self.close(local)?,
            }
        }
        setup.retain(|&l| self.clients[l as usize].phase.is_setup());
        setup.append(&mut self.setup);
        self.setup = setup;
        Ok(())
    }

    /// The prompt path: every poll completion met since the last pass.
    pub(super) fn prompt(&mut self, now: u64) -> io::Result<()> {
        while !self.later.is_empty() {
            let batch = std::mem::take(&mut self.later);
            for &(ud, res) in &batch {
                let (local, kind, _, gen) = parts(ud);
                if kind != K_POLL || self.clients[local].gen != gen || !self.clients[local].polling {
                    continue;
                }
                self.clients[local].polling = false;
                self.on_ready(local as u32, res, now)?;
            }
        }
        Ok(())
    }

    /// A prompt-path client's socket is ready (or failed, `res` < 0).
    fn on_ready(&mut self, local: u32, res: i32, now: u64) -> io::Result<()> {
        let c = &self.clients[local as usize];
        let Some(fd) = c.fd.as_ref().map(AsRawFd::as_raw_fd) else { return Ok(()) };
        let index = c.index;
        match c.phase {
            Phase::Connecting => {
                let ok = res >= 0 && net::socket_error(fd).is_ok() && net::client_options(fd).is_ok();
                if !ok {
                    self.ctx.error(|e| e.connect += 1);
                    self.fail_room(index)?;
                    return self.close(local);
                }
                let plan = Arc::clone(&self.plan);
                let redirected = self.clients[local as usize].target.clone();
                let target = redirected.as_deref().unwrap_or(&plan.target);
                let hs = Handshake::new(target, plan.cfg.format);
                let c = &mut self.clients[local as usize];
                if let Some((config, name)) = &target.tls {
                    // wss: the ClientHello now; rustls holds the upgrade
                    // request until the handshake is done.
                    match crate::tls::ClientTls::new(config, name.clone()) {
                        Ok(tls) => c.tls = Some(Box::new(tls)),
                        Err(_) => {
                            self.ctx.error(|e| e.handshake_failed += 1);
                            self.fail_room(index)?;
                            return self.close(local);
                        }
                    }
                }
                c.tx.clear();
                c.tx.extend_from_slice(&hs.request);
                let out = c.outgoing();
                let len = out.len();
                let sent = matches!(send_direct(fd, out), Ok(n) if n == len);
                c.sent(len);
                if !sent {
                    self.ctx.error(|e| e.handshake_failed += 1);
                    self.fail_room(index)?;
                    return self.close(local);
                }
                c.handshake = Some(Box::new(hs));
                c.phase = Phase::Handshaking;
                c.deadline_ns = now + self.plan.cfg.handshake_timeout.as_nanos() as u64;
                self.arm_poll(local, libc::POLLIN)
            }
            Phase::Handshaking => self.on_handshake(local, fd, now),
            Phase::Joining | Phase::Closing => {
                loop {
                    let got = recv_direct(fd, &mut self.direct);
                    let c = &mut self.clients[local as usize];
                    match got {
                        Ok((0, _)) => {
                            if c.phase == Phase::Closing {
                                return self.close(local);
                            }
                            return self.ended(local, End::Closed("eof".into()));
                        }
                        Ok((n, stamp)) => {
                            let rx = Rx { wall_ns: stamp.unwrap_or_else(wall_now_ns), stamped: stamp.is_some() };
                            c.on_wire(&self.direct[..n], rx, now, &mut self.ctx);
                            if n < self.direct.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            if c.phase == Phase::Closing {
                                return self.close(local);
                            }
                            return self.ended(local, End::Closed("io".into()));
                        }
                    }
                }
                self.after_prompt_read(local, now)
            }
            _ => Ok(()),
        }
    }

    /// What a joining or closing client's read led to.
    fn after_prompt_read(&mut self, local: u32, now: u64) -> io::Result<()> {
        let c = &mut self.clients[local as usize];
        if c.phase == Phase::Closing {
            if c.close_seen {
                return self.close(local);
            }
            return self.arm_poll(local, libc::POLLIN);
        }
        if let Some(end) = c.end.take() {
            return self.ended(local, end);
        }
        if let Some(room) = c.joined.take() {
            return self.on_joined(local, room, now);
        }
        if let Some(redirect) = c.redirect.take() {
            return self.follow_redirect(local, *redirect, now);
        }
        self.arm_poll(local, libc::POLLIN)
    }

    /// `redirect`: the seat is on another node. The socket is dropped, and
    /// a new connection to `url` joins with the reservation.
    fn follow_redirect(
        &mut self,
        local: u32,
        (url, room, token): (String, RoomId, String),
        now: u64,
    ) -> io::Result<()> {
        self.ctx.stats.redirected += 1;
        let target = match self.targets.get(&url) {
            Some(t) => Arc::clone(t),
            None => {
                let tls = self.plan.target.tls.as_ref().map(|(config, _)| Arc::clone(config));
                let parsed = net::Target::parse_with(&url, || {
                    tls.ok_or_else(|| crate::LoadError::Config("a redirect to wss:// needs --ca or --insecure".into()))
                });
                match parsed {
                    Ok(t) => {
                        let t = Arc::new(t);
                        self.targets.insert(url, Arc::clone(&t));
                        t
                    }
                    Err(_) => {
                        self.ctx.error(|e| *e.join_failed.entry("bad_redirect".into()).or_default() += 1);
                        let index = self.clients[local as usize].index;
                        self.fail_room(index)?;
                        return self.begin_close(local, now);
                    }
                }
            }
        };
        let c = &mut self.clients[local as usize];
        // A poll of the old socket may still complete: ignore it.
        c.gen = c.gen.wrapping_add(1);
        c.fd = None;
        c.leave_for_redirect();
        c.target = Some(target);
        c.reservation = Some((room, token));
        self.connect_client(local, now)
    }

    fn on_handshake(&mut self, local: u32, fd: RawFd, now: u64) -> io::Result<()> {
        let index = self.clients[local as usize].index;
        let (n, _) = match recv_direct(fd, &mut self.direct) {
            Ok(got) => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.arm_poll(local, libc::POLLIN),
            Err(_) => (0, None),
        };
        let c = &mut self.clients[local as usize];
        if n == 0 {
            self.ctx.error(|e| e.handshake_failed += 1);
            self.fail_room(index)?;
            return self.close(local);
        }
        match c.tls.as_mut() {
            None => c.head.extend_from_slice(&self.direct[..n]),
            Some(tls) => {
                // The TLS handshake's messages, then the 101: plaintext to
                // the head, rustls's answers (and the request it held) out.
                let fed = tls.feed(&self.direct[..n], &mut c.head);
                let out = std::mem::take(&mut tls.out);
                let sent = out.is_empty() || matches!(send_direct(fd, &out), Ok(k) if k == out.len());
                if fed.is_err() || !sent {
                    self.ctx.error(|e| e.handshake_failed += 1);
                    self.fail_room(index)?;
                    return self.close(local);
                }
            }
        }
        let answer = c.handshake.as_ref().map_or(Answer::Failed("no handshake".into()), |h| h.answer(&c.head));
        match answer {
            Answer::Incomplete => self.arm_poll(local, libc::POLLIN),
            Answer::Refused { status, .. } => {
                self.ctx.error(|e| *e.handshake_refused.entry(status).or_default() += 1);
                self.fail_room(index)?;
                self.close(local)
            }
            Answer::Failed(_) => {
                self.ctx.error(|e| e.handshake_failed += 1);
                self.fail_room(index)?;
                self.close(local)
            }
            Answer::Open { head_len } => {
                let rest = c.head.split_off(head_len);
                c.head = Vec::new();
                c.handshake = None;
                // Counted once per client: not again after a redirect.
                if !c.reconnecting && c.join_sent_ns == 0 {
                    self.ctx.stats.connected += 1;
                    let _ = self.ctx.stats.handshake_latency.record((now.saturating_sub(c.started_ns) / 1000).max(1));
                }
                c.session = Some(Box::new(ClientSession::new(self.plan.cfg.format)));
                c.phase = Phase::WaitRoom;
                c.deadline_ns = now + self.plan.cfg.join_timeout.as_nanos() as u64;
                if !rest.is_empty() {
                    let rx = Rx { wall_ns: wall_now_ns(), stamped: false };
                    c.on_bytes(&rest, rx, now, &mut self.ctx);
                }
                self.request_room(local, now)
            }
        }
    }

    /// An open client asks for its room: the first of its group creates
    /// it, the others join it once it exists.
    fn request_room(&mut self, local: u32, now: u64) -> io::Result<()> {
        let plan = Arc::clone(&self.plan);
        let cfg = &plan.cfg;
        let index = self.clients[local as usize].index;
        let (group, leader) = (index / cfg.players_per_room, index % cfg.players_per_room == 0);
        let resume = self.clients[local as usize].resume.clone().filter(|_| self.clients[local as usize].reconnecting);
        let reservation = self.clients[local as usize].reservation.take();
        let body = if let Some((room_id, resume_token)) = resume {
            Request::Resume { room_id, resume_token }
        } else if let Some((room_id, token)) = reservation {
            Request::JoinRoom { room_id, reservation: Some(token) }
        } else if leader && cfg.join_or_create {
            Request::JoinOrCreate { game: cfg.game.clone(), options: None }
        } else if leader {
            Request::CreateRoom {
                game: cfg.game.clone(),
                max_players: Some(cfg.players_per_room as u32),
                tick_hz: cfg.tick_hz,
                private: false,
                options: None,
            }
        } else {
            match self.rooms.get(&group).cloned().unwrap_or(RoomSlot::Pending) {
                RoomSlot::Ready(room_id) => Request::JoinRoom { room_id, reservation: None },
                RoomSlot::Failed => {
                    self.ctx.error(|e| *e.join_failed.entry("no_room".into()).or_default() += 1);
                    return self.begin_close(local, now);
                }
                RoomSlot::Pending => {
                    self.waiting.entry(group).or_default().push(local);
                    self.setup.push(local);
                    return Ok(());
                }
            }
        };
        let c = &mut self.clients[local as usize];
        if c.join_sent_ns == 0 {
            c.join_sent_ns = now;
        }
        let Some(session) = c.session.as_mut() else { return self.close(local) };
        let mut payload = std::mem::take(&mut self.ctx.scratch);
        session.request(body, &mut payload);
        c.tx.clear();
        self.ctx.frame_payload(&payload, &mut c.tx);
        self.ctx.scratch = payload;
        let fd = c.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        match send_direct(fd, c.outgoing()) {
            Ok(n) => {
                c.sent(n);
            }
            Err(_) => {
                self.fail_room(index)?;
                return self.ended(local, End::Closed("io".into()));
            }
        }
        c.phase = Phase::Joining;
        c.deadline_ns = now + cfg.join_timeout.as_nanos() as u64;
        self.setup.push(local);
        self.arm_poll(local, libc::POLLIN)
    }

    /// `joined`: the client plays from its first input slot on.
    fn on_joined(&mut self, local: u32, room: RoomId, now: u64) -> io::Result<()> {
        let ppr = self.plan.cfg.players_per_room;
        let c = &mut self.clients[local as usize];
        let fd = c.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd);
        if self.ring.register(local, fd).is_err() {
            return self.ended(local, End::Closed("io".into()));
        }
        c.registered = true;
        self.live.clients.fetch_add(1, Ordering::Relaxed);
        if let Some(mean) = self.plan.cfg.reconnect_every {
            // Uniform in half to one and a half of the mean; none within
            // two seconds of the window's end.
            let wait = (mean.as_nanos() as f64 * (0.5 + self.ctx.uniform())) as u64;
            let at = now + wait.max(1);
            c.next_drop_ns = if at + 2_000_000_000 < self.ctx.window.1 { at } else { 0 };
        }
        if c.reconnecting {
            // A resume: the same seat, room and slots; what fell due while
            // disconnected is skipped.
            c.reconnecting = false;
            c.resumed = true;
            self.ctx.stats.resumes += 1;
            self.ctx.stats.slots_skipped_by_drops += c.skip_missed_slots(now);
            c.phase = Phase::Playing;
            if !c.input_queued {
                c.input_queued = true;
                self.wheel.insert(c.slots.due(c.sent_seq + 1), (local << 1) | W_INPUT);
            }
            c.last_arrival_ns = now;
            c.mid_until_ns = now + MID_HOLD_NS;
            if !c.read_queued {
                c.read_due_ns = c.next_read(now);
                c.read_queued = true;
                self.wheel.insert(c.read_due_ns, (local << 1) | W_READ);
            }
            return Ok(());
        }
        self.ctx.stats.joined += 1;
        let took_us = (now.saturating_sub(c.join_sent_ns) / 1000).max(1);
        let joins = if c.target.is_some() {
            &mut self.ctx.stats.join_latency_redirected
        } else {
            &mut self.ctx.stats.join_latency
        };
        let _ = joins.record(took_us);
        let (index, group) = (c.index, c.index / ppr);
        if c.decoder {
            self.ctx.stats.decoders += 1;
        }
        c.phase = Phase::Playing;
        let offset = (scenario::phase(index) * self.grid.steps_per_period as f64) as u64;
        c.slots = Slots { first_ns: self.grid.first_slot(now, offset), period_ns: self.grid.period_ns() };
        c.input_queued = true;
        self.wheel.insert(c.slots.first_ns, (local << 1) | W_INPUT);
        // Reads half a tick period from the ticks besides, while it learns
        // where they land (from now, until the first tick read).
        c.last_arrival_ns = now;
        c.mid_until_ns = now + MID_HOLD_NS;
        c.read_due_ns = c.next_read(now);
        c.read_queued = true;
        self.wheel.insert(c.read_due_ns, (local << 1) | W_READ);
        if index % ppr == 0 {
            self.rooms.insert(group, RoomSlot::Ready(room));
            for follower in self.waiting.remove(&group).unwrap_or_default() {
                if self.clients[follower as usize].phase == Phase::WaitRoom {
                    self.request_room(follower, now)?;
                }
            }
        }
        Ok(())
    }
}
