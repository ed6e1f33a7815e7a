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
    // The OS error once, not "refused (os error 111): refused (os error 111)".
    assert_eq!(err.matches("(os error 111)").count(), 1, "{err}");
}

#[test]
fn the_help_says_a_bare_duration_is_seconds() {
    let out = loadgen(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in ["--warmup", "--duration", "--connect-timeout", "--handshake-timeout", "--spin"] {
        assert!(help.contains(&format!("{flag} <DURATION>")), "{flag}: {help}");
    }
    assert!(help.contains("a bare number is seconds (--duration 10 is 10s)"), "{help}");
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

#[test]
fn gates_pick_the_exit_status_and_reports_are_written() {
    let _one = crate::one_run();
    let server = FakeServer::start(Behaviour::default());
    let dir = std::env::temp_dir().join(format!("tickforge-loadgen-gates-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    let base = ["--clients", "8", "--duration", "1s", "--warmup", "200ms", "--quiet"];
    let url = server.url();
    let mut args = vec!["--url", url.as_str()];
    args.extend(base);
    // A p99 gate nothing can meet: exit 1, the table still printed.
    let out = loadgen(&[&args[..], &["--max-p99-ms", "0.0001"]].concat());
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("latency (ms)"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gate failed"));
    // Gates that are met: exit 0, and every report file written.
    let (json, hgrm, plot) = (path("r.json"), path("r.hgrm"), path("r.svg"));
    let extra = ["--max-p99-ms", "10000", "--max-errors", "0", "--json", &json, "--hgrm", &hgrm, "--plot", &plot];
    let out = loadgen(&[&args[..], &extra[..]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["errors_total"], 0);
    assert_eq!(report["params"]["clients"], 8);
    assert!(report["machine"]["kernel"].is_string());
    for key in ["p50", "p90", "p99", "p99_9", "p99_99", "max"] {
        assert!(report["tick_latency_us"][key].as_u64().is_some(), "{key}");
    }
    assert!(std::fs::read_to_string(&hgrm).unwrap().contains("Percentile"));
    assert!(std::fs::read_to_string(path("r-input.hgrm")).unwrap().contains("Total count"));
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unwritable_stdout_is_an_error_and_the_json_report_is_still_written() {
    let _one = crate::one_run();
    let server = FakeServer::start(Behaviour::default());
    let json = std::env::temp_dir().join(format!("tickforge-loadgen-full-{}.json", std::process::id()));
    let url = server.url();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tickforge-loadgen"))
        .args(["--url", url.as_str(), "--clients", "2", "--duration", "1s", "--warmup", "0s", "--quiet"])
        .args(["--json", json.to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("printing the report table to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["params"]["clients"], 2);
    std::fs::remove_file(json).unwrap();
}
