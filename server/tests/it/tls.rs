//! TLS on the port: wss games and https routes with a real rustls client,
//! TLS 1.2 and 1.3, Python's `ssl` and `openssl s_client` from a script,
//! plain HTTP and slow handshakes dropped within the handshake timeout,
//! the slow-client rule and the hand-off over TLS, bad certificate files,
//! a reload on SIGHUP that keeps open connections.

use crate::util::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickforge_protocol::message::{Confirm, Indication, InputData, Request};
use tickforge_protocol::Format;
use tickforge_server::tls::TlsSource;

/// A test certificate authority and the files of certificates it signs.
pub(crate) struct Pki {
    pub(crate) dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
}

/// A certificate's validity, in days from now.
pub(crate) const VALID: (i64, i64) = (-1, 30);

impl Pki {
    pub(crate) fn new() -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("tickforge-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "tickforge test CA");
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Self { dir, ca, ca_key }
    }

    /// Writes `NAME.crt` and `NAME.key`: a certificate for localhost and
    /// 127.0.0.1 valid over `days` (from, to) relative to now.
    pub(crate) fn leaf(&self, name: &str, days: (i64, i64)) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let (cert_path, key_path) = (self.dir.join(format!("{name}.crt")), self.dir.join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A client that trusts this CA only, offering TLS `versions`.
    pub(crate) fn client(&self, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const BOTH: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A server on a TLS port with a certificate of `pki`.
fn tls_server(pki: &Pki, f: impl FnOnce(&mut tickforge_server::ServerConfig)) -> TestServer {
    let (cert, key) = pki.leaf("server", VALID);
    TestServer::with(|c| {
        c.tls = Some(TlsSource::Files { cert, key });
        f(c);
    })
}

/// One HTTPS request; the answer's head and body, and the TLS session's
/// version and ALPN protocol.
fn https(addr: SocketAddr, tls: &Arc<rustls::ClientConfig>, request: &str) -> (String, String, String) {
    let mut s = tls_stream(addr, tls);
    s.write_all(request.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    // The server ends with close_notify, so this reads to a clean end.
    s.read_to_end(&mut bytes).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let version = format!("{:?}", s.conn.protocol_version().unwrap());
    let alpn = String::from_utf8(s.conn.alpn_protocol().unwrap_or_default().to_vec()).unwrap();
    assert_eq!(alpn, "http/1.1");
    (head.to_owned(), body.to_owned(), version)
}

/// Reads until the server drops the socket; returns when it did.
fn wait_dropped(mut s: TcpStream) -> Duration {
    let start = Instant::now();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut sink = [0u8; 1024];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return start.elapsed(),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("not dropped within {WAIT:?}: {e}"),
        }
    }
}

/// Waits until the server counts no open connection.
fn wait_no_connections(server: &TestServer) {
    let deadline = Instant::now() + WAIT;
    while metric(&server.metrics(), "tickforge_connections{shard=\"0\"}") != 0 {
        assert!(Instant::now() < deadline, "a connection slot is still held");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_game_over_wss_and_https_routes_with_tls_13_and_12() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    for (versions, name) in [(&[&rustls::version::TLS13][..], "TLSv1_3"), (&[&rustls::version::TLS12][..], "TLSv1_2")] {
        let tls = pki.client(versions);
        let (head, body, version) = https(server.addr, &tls, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert_eq!(body, "ok\n");
        assert_eq!(version, name);
        let (head, body, _) = https(server.addr, &tls, "GET /rooms HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK") && body.starts_with("{\"rooms\":"), "{head}{body}");
        // A refusal is a plain status over TLS too.
        let (head, _, _) = https(server.addr, &tls, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    }
    // Both subprotocols over wss, in one room: inputs in, the state exact.
    let tls = pki.client(BOTH);
    let mut bin = connect_tls(server.addr, &tls, "/ws", Some(Format::Bin)).unwrap();
    let mut json = connect_tls(server.addr, &tls, "/ws", Some(Format::Json)).unwrap();
    let room = bin.join_or_create("arena").room_id;
    assert_eq!(json.join_or_create("arena").room_id, room);
    let seq = bin.input(InputData { move_x: 100, move_y: 0, buttons: 1 });
    loop {
        bin.ack();
        json.ack();
        let header = bin.next_tick();
        json.next_tick();
        if header.input_seq.0 >= seq {
            break;
        }
    }
    // Both rebuilt the same state from their own deltas.
    let tick = bin.session.latest_tick().unwrap();
    while json.session.latest_tick() < Some(tick) {
        json.next_tick();
    }
    assert!(bin.session.state().is_some_and(|s| !s.entities.is_empty()));
    assert!(matches!(bin.call(Request::Ping { client_time_us: 5 }), Confirm::Pong { client_time_us: 5, .. }));
    let m = server.metrics();
    assert!(metric(&m, "tickforge_tls_handshakes_total") >= 8, "{m}");
    assert_eq!(metric(&m, "tickforge_tls_handshake_failures_total"), 0);
}

#[test]
fn a_client_that_does_not_trust_the_certificate_gets_no_answer() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let other = Pki::new();
    let mut s = tls_stream(server.addr, &other.client(BOTH));
    let err = s.write_all(b"GET /healthz HTTP/1.1\r\n\r\n").and_then(|()| s.flush()).unwrap_err();
    assert!(err.to_string().contains("invalid peer certificate"), "{err}");
    wait_no_connections(&server);
    assert_eq!(metric(&server.metrics(), "tickforge_tls_handshake_failures_total"), 1);
}

#[test]
fn plain_http_to_a_tls_port_is_dropped_at_once() {
    let pki = Pki::new();
    let timeout = Duration::from_secs(3);
    let server = tls_server(&pki, |c| c.limits.handshake_timeout = timeout);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let took = wait_dropped(s);
    assert!(took < timeout, "dropped after {took:?}");
    wait_no_connections(&server);
    assert_eq!(metric(&server.metrics(), "tickforge_tls_handshake_failures_total"), 1);
    assert_eq!(metric(&server.metrics(), "tickforge_http_responses_total{status=\"400\"}"), 0, "no plain answer");
}

#[test]
fn a_tls_slowloris_is_dropped_at_the_handshake_timeout() {
    let pki = Pki::new();
    let timeout = Duration::from_millis(800);
    let server = tls_server(&pki, |c| c.limits.handshake_timeout = timeout);
    // Half a ClientHello, then nothing.
    let tls = pki.client(BOTH);
    let mut hello = Vec::new();
    let mut client =
        rustls::ClientConnection::new(tls.clone(), rustls::pki_types::ServerName::try_from("localhost").unwrap())
            .unwrap();
    client.write_tls(&mut hello).unwrap();
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&hello[..hello.len() / 2]).unwrap();
    let took = wait_dropped(s);
    assert!(took >= timeout - Duration::from_millis(50), "dropped early, after {took:?}");
    // A handshake done, then half a head and nothing more: the same
    // deadline drops it (the handshake counted, not a failure).
    let mut s = tls_stream(server.addr, &tls);
    s.write_all(b"GET /healthz HT").unwrap();
    s.flush().unwrap();
    assert!(!s.conn.is_handshaking());
    wait_dropped(s.sock);
    wait_no_connections(&server);
    assert_eq!(metric(&server.metrics(), "tickforge_tls_handshake_failures_total"), 1);
}

#[test]
fn a_stuck_tls_client_is_closed_as_too_slow_while_the_others_get_every_tick() {
    let pki = Pki::new();
    let server = tls_server(&pki, |c| {
        c.limits.slow_client = Duration::from_millis(500);
        c.limits.send_stall = Duration::from_millis(500);
        // Freed at once: `player_left`, not a held seat.
        c.reconnect_grace = Duration::ZERO;
    });
    let tls = pki.client(BOTH);
    let mut good = connect_tls(server.addr, &tls, "/ws", Some(Format::Json)).unwrap();
    let mut stuck = connect_tls(server.addr, &tls, "/ws", Some(Format::Json)).unwrap();
    crate::bad_input::shrink_receive_buffer(&stuck);
    let room = good.join_or_create("arena").room_id;
    assert_eq!(stuck.join_or_create("arena").room_id, room);
    stuck.next_tick();
    stuck.ack();
    let mut last = good.next_tick().tick;
    let mut count = 0;
    while metric(&server.metrics(), "tickforge_closes_total{reason=\"too_slow\",code=\"1008\"}") == 0 {
        good.ack();
        let t = good.next_tick().tick;
        assert_eq!(t.0, last.0 + 1, "good client missed a tick");
        last = t;
        count += 1;
        assert!(count < 30 * 60, "the stuck TLS client was never closed");
    }
    let left = good.wait_indication("player_left", |i| match i {
        Indication::PlayerLeft { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(left, "too_slow");
}

#[test]
fn a_wss_connection_moves_to_the_rooms_shard_with_its_tls_session() {
    let pki = Pki::new();
    let server = tls_server(&pki, |c| c.shards = 2);
    let tls = pki.client(BOTH);
    let shard_of = |c: &mut Client<TlsStream>| match c.call(Request::Hello { token: None, client: None }) {
        Confirm::Welcome { session_id, .. } => session_id.0.split('-').nth(1).unwrap().to_string(),
        other => panic!("{other:?}"),
    };
    let mut owner = connect_tls(server.addr, &tls, "/ws", Some(Format::Bin)).unwrap();
    let room = owner.join_or_create("arena").room_id;
    let home = room.0.split('-').nth(1).unwrap().to_string();
    let mut guest = None;
    for _ in 0..64 {
        let mut c = connect_tls(server.addr, &tls, "/ws", Some(Format::Json)).unwrap();
        if shard_of(&mut c) != home {
            guest = Some(c);
            break;
        }
    }
    let mut guest = guest.expect("a connection on the other shard");
    let join = guest.request(Request::JoinRoom { room_id: room.clone(), reservation: None });
    let ping = guest.request(Request::Ping { client_time_us: 9 });
    assert!(matches!(guest.answer(join), Ok(Confirm::Joined(_))));
    assert!(matches!(guest.answer(ping), Ok(Confirm::Pong { client_time_us: 9, .. })));
    let seq = guest.input(InputData { move_x: 5, move_y: 0, buttons: 0 });
    while guest.next_tick().input_seq.0 < seq {}
    // The session (and its id, naming the shard it started on) moved along.
    assert_ne!(shard_of(&mut guest), home);
    assert_eq!(metric(&server.metrics(), "tickforge_handoffs_in_total"), 1);
}

#[test]
fn bad_certificate_files_are_refused_naming_the_problem() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("good", VALID);
    let (expired, expired_key) = pki.leaf("old", (-30, -1));
    let (future, future_key) = pki.leaf("future", (2, 30));
    let (_, other_key) = pki.leaf("other", VALID);
    let garbage = pki.dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").unwrap();
    let missing = pki.dir.join("missing.pem");
    let start = |cert: &PathBuf, key: &PathBuf| {
        let mut c = tickforge_server::ServerConfig::default();
        c.listen = "127.0.0.1:0".parse().unwrap();
        c.shards = 1;
        c.tls = Some(TlsSource::Files { cert: cert.clone(), key: key.clone() });
        tickforge_server::start(c).map(drop).unwrap_err().to_string()
    };
    let cases = [
        (start(&missing, &key), vec!["--tls-cert", "missing.pem", "cannot read it"]),
        (start(&cert, &missing), vec!["--tls-key", "missing.pem", "cannot read it"]),
        (start(&garbage, &key), vec!["--tls-cert", "garbage.pem", "no certificate in it"]),
        (start(&cert, &garbage), vec!["--tls-key", "garbage.pem", "no private key in it"]),
        (start(&cert, &other_key), vec!["other.key", "does not match the certificate", "good.crt"]),
        (start(&expired, &expired_key), vec!["old.crt", "expired on"]),
        (start(&future, &future_key), vec!["future.crt", "not valid before"]),
    ];
    for (err, words) in cases {
        for w in words {
            assert!(err.contains(w), "{err:?} lacks {w:?}");
        }
    }
    // The binary says it in one line and exits 2.
    let bin = env!("CARGO_BIN_EXE_tickforge");
    let out = Command::new(bin)
        .args(["--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&expired)
        .arg("--tls-key")
        .arg(&expired_key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("expired on"), "{err}");
    let out = Command::new(bin).args(["--tls-cert", "x.pem"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("--tls-key"));
}

/// The leaf certificate a fresh TLS connection is served.
fn served_cert(addr: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> Vec<u8> {
    let mut s = tls_stream(addr, tls);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut sink = Vec::new();
    s.read_to_end(&mut sink).unwrap();
    s.conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let pki = Pki::new();
    let (cert, key) = pki.leaf("live", VALID);
    let first = std::fs::read_to_string(&cert).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickforge"))
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin", "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("listening on https://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    let tls = pki.client(BOTH);
    let before = served_cert(addr, &tls);
    let mut open = connect_tls(addr, &tls, "/ws", Some(Format::Bin)).unwrap();
    open.join_or_create("arena");
    open.next_tick();
    // New files in place, then SIGHUP.
    let (new_cert, new_key) = pki.leaf("next", VALID);
    std::fs::rename(&new_cert, &cert).unwrap();
    std::fs::rename(&new_key, &key).unwrap();
    assert_ne!(std::fs::read_to_string(&cert).unwrap(), first);
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    loop {
        let line = lines.next().expect("the server logs the reload").unwrap();
        if line.contains("TLS certificate reloaded") {
            break;
        }
    }
    let after = served_cert(addr, &tls);
    assert_ne!(before, after, "new connections get the new certificate");
    // The open connection was not dropped: it still plays.
    let t = open.next_tick().tick;
    assert!(open.next_tick().tick > t);
    assert!(matches!(open.call(Request::Ping { client_time_us: 1 }), Confirm::Pong { .. }));
    // A bad file on reload: logged, and the certificate served so far stays.
    std::fs::write(&cert, "broken\n").unwrap();
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGHUP) };
    loop {
        let line = lines.next().expect("the server logs the failed reload").unwrap();
        if line.contains("TLS reload failed") {
            assert!(line.contains("no certificate in it"), "{line}");
            break;
        }
    }
    assert_eq!(served_cert(addr, &tls), after);
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(open.wait_close().0, 1001);
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn python_ssl_and_openssl_s_client_speak_to_the_port() {
    let pki = Pki::new();
    let server = tls_server(&pki, |_| {});
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/tls-probe.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.addr.to_string())
        .arg(pki.ca_file())
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["healthz"], "ok\n");
    assert_eq!(report["alpn"], "http/1.1");
    assert_eq!(report["upgrade_status"], 101);
    assert!(report["welcome"].as_str().unwrap().contains("\"welcome\""), "{report}");
    // openssl s_client: TLS 1.3, ALPN http/1.1, the chain verified.
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.addr.to_string(),
            "-servername",
            "localhost",
            "-alpn",
            "http/1.1",
            "-ign_eof",
        ])
        .arg("-CAfile")
        .arg(pki.ca_file())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    child.stdin.take().unwrap().write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
    assert!(text.contains("TLSv1.3"), "{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");
}
