//! A real `redis-server` for the cluster tests: started on a free loopback
//! port (no persistence), stopped and restarted on demand, killed on drop.
//!
//! Which server: `TICKFORGE_REDIS_SERVER` (a path), else `redis-server` on
//! `PATH` (`scripts/redis.sh install` puts it there; `scripts/test.sh` runs
//! it). Without one a test fails with a message saying how to get it,
//! unless `TICKFORGE_SKIP_REDIS_TESTS=1` (never honoured in CI), where it
//! says it skipped.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// One redis-server process of this test.
pub(crate) struct Redis {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TICKFORGE_REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("redis-server")).find(|p| p.is_file())
}

impl Redis {
    /// Starts a server, or returns `None` after saying the test is skipped
    /// (only with `TICKFORGE_SKIP_REDIS_TESTS=1` outside CI).
    ///
    /// # Panics
    /// Without a redis-server (saying how to install one), or when it does
    /// not start.
    pub(crate) fn start(test: &str) -> Option<Self> {
        let Some(binary) = find_binary() else {
            let in_ci = std::env::var_os("CI").is_some();
            if !in_ci && std::env::var("TICKFORGE_SKIP_REDIS_TESTS").as_deref() == Ok("1") {
                eprintln!("SKIPPED {test}: no redis-server (TICKFORGE_SKIP_REDIS_TESTS=1)");
                return None;
            }
            panic!(
                "{test} needs a real Redis: no redis-server on PATH (nor TICKFORGE_REDIS_SERVER). \
                 Run scripts/redis.sh install (scripts/test.sh does), or set \
                 TICKFORGE_SKIP_REDIS_TESTS=1 to skip the cluster tests outside CI."
            );
        };
        let mut redis = Self { binary, port: 0, child: None };
        for _ in 0..5 {
            redis.port = free_port();
            if redis.spawn() {
                return Some(redis);
            }
        }
        panic!("redis-server did not start on a free port (tried 5)");
    }

    /// Spawns on `self.port`; true once it accepts connections.
    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]).args([
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]);
        quiet_child_of_this_test(&mut cmd);
        let mut child = cmd.spawn().expect("redis-server spawns");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return true;
            }
            if child.try_wait().ok().flatten().is_some() {
                return false; // exited: the port was taken
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// `redis://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL: it takes its data with it, like a crash).
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server did not restart on port {}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A blocking client connection for checks.
    pub(crate) fn client(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection_with_timeout(Duration::from_secs(2)).unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Makes `cmd` a quiet child that dies with the test thread that spawns it
/// (even on a crash of the test): no stdio, `PR_SET_PDEATHSIG`.
pub(crate) fn quiet_child_of_this_test(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    use std::process::Stdio;
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: prctl in the child before exec is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}
