//! Memory per idle WebSocket connection: the server's RSS growth over N idle
//! connections (default 10,000), divided by N; with `--tls`, over TLS
//! (`wss://`, the server on `--tls-self-signed`).
//!
//! `cargo build --release -p tickforge-server -p tickforge-benches`
//! `target/release/idle_memory [--tls] [connections] [path/to/tickforge]`
//!
//! Starts `tickforge --shards 1` on a free loopback port, opens 100
//! connections to warm up the allocator, reads VmRSS from /proc, opens the
//! rest (each a completed WebSocket handshake, then silent), waits for the
//! server to settle, reads VmRSS again, and stops the server with SIGTERM.

use anyhow::{bail, Context};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Resident set size of `pid` in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS line")?;
    Ok(line.split_whitespace().nth(1).context("malformed VmRSS")?.parse()?)
}

fn wait_healthy(port: u16, tls: Option<&Arc<rustls::ClientConfig>>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let mut reply = String::new();
            match tls {
                None => {
                    let _ = s.write_all(request);
                    let _ = s.read_to_string(&mut reply);
                }
                Some(config) => {
                    let name = rustls::pki_types::ServerName::try_from("localhost")?;
                    let mut s = rustls::StreamOwned::new(rustls::ClientConnection::new(config.clone(), name)?, s);
                    let _ = s.write_all(request);
                    let _ = s.read_to_string(&mut reply);
                }
            }
            if reply.starts_with("HTTP/1.1 200") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("server on port {port} did not become healthy")
}

/// An idle client connection, plain or TLS: held open, never read.
#[allow(dead_code)]
enum Idle {
    Plain(Box<tungstenite::WebSocket<TcpStream>>),
    Tls(Box<tungstenite::WebSocket<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>>),
}

fn connect(port: u16, tls: Option<&Arc<rustls::ClientConfig>>) -> anyhow::Result<Idle> {
    let socket = TcpStream::connect(("127.0.0.1", port))?;
    Ok(match tls {
        None => Idle::Plain(Box::new(tungstenite::client(format!("ws://127.0.0.1:{port}/ws"), socket)?.0)),
        Some(config) => {
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            let stream = rustls::StreamOwned::new(rustls::ClientConnection::new(config.clone(), name)?, socket);
            Idle::Tls(Box::new(tungstenite::client(format!("wss://localhost:{port}/ws"), stream)?.0))
        }
    })
}

fn tls_client() -> Arc<rustls::ClientConfig> {
    tickforge_benches::trust_all_tls_client()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    let tls = args.next_if(|a| a == "--tls").is_some();
    let client_tls = tls.then(tls_client);
    let total: usize = args.next().map_or(Ok(10_000), |a| a.parse()).context("connections")?;
    let binary = args.next().unwrap_or_else(|| "target/release/tickforge".into());
    let warmup = 100.min(total);
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(&binary)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--shards", "1"])
        .args(["--max-connections", &(total + 1000).to_string()])
        .args(if tls { &["--tls-self-signed"][..] } else { &[] })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {binary}"))?;
    let server = Server(child);
    let pid = server.0.id();
    wait_healthy(port, client_tls.as_ref())?;

    let mut clients = Vec::with_capacity(total);
    for _ in 0..warmup {
        clients.push(connect(port, client_tls.as_ref())?);
    }
    std::thread::sleep(Duration::from_secs(1));
    let before = rss_kib(pid)?;
    let started = Instant::now();
    while clients.len() < total {
        clients.push(connect(port, client_tls.as_ref()).with_context(|| format!("connection {}", clients.len() + 1))?);
    }
    let elapsed = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kib(pid)?;
    let measured = (total - warmup) as f64;
    println!(
        "{} idle {} connections (tickforge --shards 1): RSS {before} KiB -> {after} KiB; {:.2} KiB per connection; {} handshakes in {:.1} s",
        total,
        if tls { "TLS (wss)" } else { "plain (ws)" },
        (after.saturating_sub(before)) as f64 / measured,
        total - warmup,
        elapsed.as_secs_f64()
    );
    drop(clients);
    drop(server);
    Ok(())
}
