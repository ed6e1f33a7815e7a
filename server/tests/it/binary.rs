use crate::util::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use tickforge_protocol::message::Indication;
use tickforge_protocol::Format;

const BIN: &str = env!("CARGO_BIN_EXE_tickforge");

#[test]
fn a_bad_flag_is_one_line_naming_it_and_exit_2() {
    for (args, flag) in [
        (&["--shards", "abc"][..], "--shards"),
        (&["--tick-hz", "5"][..], "--tick-hz"),
        (&["--max-message-size", "lots"][..], "--max-message-size"),
        (&["--send-backlog", "4g"][..], "--send-backlog"),
        (&["--send-backlog", "4096m"][..], "--send-backlog"),
        (&["--shards", "4", "--max-connections", "5000"][..], "--max-connections"),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(flag), "{err}");
    }
}

#[test]
fn sigterm_drains_and_exits_0() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--shards", "2", "--no-pin"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    let mut c = connect_to(addr, "/ws", Some(Format::Bin)).unwrap();
    c.join_or_create("arena");
    c.next_tick();
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    c.wait_indication("room_closing", |i| matches!(i, Indication::RoomClosing { .. }).then_some(()));
    assert_eq!(c.wait_close().0, 1001);
    drop(c);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let rest: Vec<_> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}
