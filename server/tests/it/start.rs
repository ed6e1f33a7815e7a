//! The `tickforge` binary at start, as separate processes: a port another
//! process listens on, an address the host does not have, and its logs on
//! a pipe and on a terminal.

use crate::util::*;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::Instant;
use tickforge_protocol::Format;

const BIN: &str = env!("CARGO_BIN_EXE_tickforge");

/// A `tickforge` child with its log on a pipe, and the address it logged.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::io::Lines<BufReader<ChildStderr>>,
    /// The log's lines up to and including the "listening" line.
    head: Vec<String>,
}

impl Server {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env_remove("NO_COLOR").env("RUST_LOG", "info").stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut head = Vec::new();
        let addr = loop {
            let line = log.next().expect("the server logs its address").unwrap();
            head.push(line.clone());
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.split('/').next().unwrap().parse().unwrap();
            }
        };
        Self { child, addr, log, head }
    }

    /// SIGTERM, and the exit status 0 of a drained server.
    fn stop(mut self) {
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(self.child.wait().unwrap().code(), Some(0));
        let rest: Vec<_> = self.log.by_ref().map_while(Result::ok).collect();
        assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    }
}

impl Drop for Server {
    /// A test that failed before `stop` leaves no server behind.
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `tickforge args` to its end, which must come within [`WAIT`] (a
/// server that started instead is killed and the test fails).
fn run_to_exit(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > WAIT {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("tickforge {args:?} did not exit: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// The one line of a failed start: exit 1, the reason, the OS error once.
fn failed_start(out: &Output) -> String {
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.matches("os error").count() <= 1, "{err}");
    err
}

#[test]
fn a_second_server_on_a_port_in_use_fails_at_start() {
    let first = Server::start(&["--listen", "127.0.0.1:0", "--shards", "2", "--no-pin"], &[]);
    let addr = first.addr.to_string();
    // A second tickforge, even of one shard, never joins the port.
    let err = failed_start(&run_to_exit(&["--listen", &addr, "--shards", "1", "--no-pin"]));
    assert!(err.contains(&format!("cannot listen on {addr}: address in use")), "{err}");
    // Nor does one listening on every address of the host.
    let any = format!("0.0.0.0:{}", first.addr.port());
    let err = failed_start(&run_to_exit(&["--listen", &any, "--shards", "1", "--no-pin"]));
    assert!(err.contains(&format!("{any}: address in use")), "{err}");

    // The first server's two shards still share the port: the kernel
    // spreads new connections over both (24 all on one: odds of 2 in 2^24).
    let clients: Vec<_> = (0..24).map(|_| connect_to(first.addr, "/ws", Some(Format::Bin)).unwrap()).collect();
    let metrics = http(first.addr, "GET", "/metrics", "").body;
    for shard in 0..2 {
        let open = metric(&metrics, &format!("tickforge_connections{{shard=\"{shard}\"}}"));
        assert!(open > 0, "shard {shard} has no connection:\n{metrics}");
    }
    drop(clients);
    first.stop();
}

#[test]
fn a_port_another_program_listens_on_is_refused() {
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = other.local_addr().unwrap().to_string();
    for shards in ["1", "2"] {
        let err = failed_start(&run_to_exit(&["--listen", &addr, "--shards", shards, "--no-pin"]));
        assert!(err.contains(&format!("cannot listen on {addr}: address in use")), "{err}");
    }
    drop(other);
    // Once it is gone, the port is tickforge's.
    Server::start(&["--listen", &addr, "--shards", "1", "--no-pin"], &[]).stop();
}

#[test]
fn an_address_the_host_lacks_is_one_os_error() {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): no host has it.
    let out = run_to_exit(&["--listen", "192.0.2.1:0", "--shards", "1", "--no-pin"]);
    let err = failed_start(&out);
    assert!(err.contains("cannot listen on 192.0.2.1:0: "), "{err}");
    assert_eq!(err.matches("(os error 99)").count(), 1, "{err}");
}

#[test]
fn logs_on_a_pipe_are_plain_text_and_count_1_shard() {
    let server = Server::start(&["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"], &[]);
    let head = server.head.join("\n");
    assert!(!head.contains('\x1b'), "escape codes on a pipe: {head:?}");
    let listening = server.head.last().unwrap();
    assert!(listening.ends_with(", 1 shard"), "{listening}");
    server.stop();
}

/// A child killed if the test fails before it exits.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A pseudo-terminal: (the side this test reads, the side the child
/// writes its stderr to).
fn pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: posix_openpt, grantpt, unlockpt and ptsname_r on a new fd
    // owned at once; `name` outlives the call that fills it.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(master >= 0, "{}", std::io::Error::last_os_error());
        let master = OwnedFd::from_raw_fd(master);
        assert_eq!(libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC), 0);
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()), 0);
        let path = std::ffi::CStr::from_ptr(name.as_ptr()).to_str().unwrap().to_owned();
        let slave = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        (master, slave.into())
    }
}

/// Starts `tickforge` with stderr on a terminal, reads its log until the
/// "listening" line (at most [`WAIT`]), stops it; returns that log.
fn log_on_a_terminal(no_color: Option<&str>) -> String {
    let (master, slave) = pty();
    let mut cmd = Command::new(BIN);
    cmd.args(["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave));
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let child = cmd.spawn().unwrap();
    drop(cmd); // the parent's copy of the terminal's child side
    let mut child = KillOnDrop(child);
    let mut master = std::fs::File::from(master);
    let mut log = Vec::new();
    let started = Instant::now();
    while !String::from_utf8_lossy(&log).contains("listening on") {
        assert!(started.elapsed() < WAIT, "no listening line: {:?}", String::from_utf8_lossy(&log));
        let mut poll = libc::pollfd { fd: master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: poll on one valid pollfd.
        if unsafe { libc::poll(&mut poll, 1, 100) } > 0 {
            let mut buf = [0; 4096];
            let n = master.read(&mut buf).expect("the server's terminal");
            log.extend_from_slice(&buf[..n]);
        }
    }
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(child.0.wait().unwrap().code(), Some(0));
    String::from_utf8_lossy(&log).into_owned()
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color() {
    let log = log_on_a_terminal(None);
    assert!(log.contains("\x1b["), "no colour on a terminal: {log:?}");
    for value in ["1", "true"] {
        let log = log_on_a_terminal(Some(value));
        assert!(!log.contains('\x1b'), "NO_COLOR={value} but escape codes: {log:?}");
    }
    // An empty NO_COLOR does not count (https://no-color.org).
    assert!(log_on_a_terminal(Some("")).contains("\x1b["));
}
