//! Bad input to the binary: exit status 2, one line naming the cause.

use crate::fake::{Behaviour, FakeServer};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tickforge-loadgen")).args(args).output().unwrap()
}

fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_closed_port_is_a_connect_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    let err = one_line_error(&loadgen(&["--url", &url, "--clients", "1", "--quiet"]));
    assert!(err.contains("cannot connect") && err.contains(&port.to_string()), "{err}");
}

#[test]
fn a_refused_handshake_names_the_status() {
    for status in [503, 400] {
        let server = FakeServer::start(Behaviour { refuse: Some(status), ..Behaviour::default() });
        let err = one_line_error(&loadgen(&["--url", &server.url(), "--clients", "1", "--quiet"]));
        assert!(err.contains(&format!("HTTP {status}")), "{err}");
    }
}

#[test]
fn a_listener_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    let started = Instant::now();
    let err = one_line_error(&loadgen(&["--url", &url, "--handshake-timeout", "500ms", "--quiet"]));
    assert!(err.contains("handshake"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    drop(listener);
}

#[test]
fn bad_flags_and_urls_are_refused() {
    let err = one_line_error(&loadgen(&["--clients", "many"]));
    assert!(err.contains("--clients"), "{err}");
    let err = one_line_error(&loadgen(&["--no-such-flag"]));
    assert!(err.contains("--no-such-flag"), "{err}");
    let err = one_line_error(&loadgen(&["--clients", "0"]));
    assert!(err.contains("--clients"), "{err}");
    let err = one_line_error(&loadgen(&["--url", "http://127.0.0.1:1/ws"]));
    assert!(err.contains("ws://"), "{err}");
    let err = one_line_error(&loadgen(&["--duration", "soon"]));
    assert!(err.contains("--duration"), "{err}");
}
