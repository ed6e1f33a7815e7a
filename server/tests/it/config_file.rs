//! `tickforge --config FILE`: a TOML file of flags, the command line
//! winning; every bad key or value is one line naming the file and the key,
//! exit 2.

use crate::util::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tickforge");

/// A TOML file in the temp directory, removed on drop.
struct Toml(PathBuf);

impl Toml {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("tickforge-it-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        Self(path)
    }
}

impl Drop for Toml {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_bad_key_or_value_in_the_file_names_the_key_and_exits_2() {
    for (name, text, expected) in [
        ("unknown", "listen = \"127.0.0.1:0\"\nshardz = 2\n", "unknown key `shardz`"),
        ("type", "shards = \"many\"\n", "key `shards`: invalid value 'many'"),
        ("range", "tick-hz = 5\n", "key `tick-hz`: 5 is not in 10..=128"),
        ("switch", "no-pin = 1\n", "key `no-pin`: expected true or false, found integer"),
        (
            "cluster",
            "cluster = \"http://nope\"\npublic-url = \"ws://a:1\"\n",
            "key `cluster`: \"http://nope\" is not a Redis URL",
        ),
        ("syntax", "tick-hz = \n", "is not valid TOML"),
    ] {
        let file = Toml::new(name, text);
        let out = Command::new(BIN).arg("--config").arg(&file.0).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("tickforge: "), "{err}");
        assert!(err.contains(expected), "{name}: {err}");
        if name != "syntax" {
            assert_eq!(err.trim_end().lines().count(), 1, "{err}");
            assert!(err.contains(&file.0.display().to_string()), "names the file: {err}");
        }
    }
    let out = Command::new(BIN).args(["--config", "/nonexistent.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot read /nonexistent.toml"));
}

#[test]
fn a_server_runs_from_a_file_with_flags_winning() {
    let file =
        Toml::new("good", "listen = \"127.0.0.1:0\"\nshards = 1\nno-pin = true\ntick-hz = 20\ntoken = \"from-file\"\n");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&file.0)
        .args(["--token", "from-flag"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines.next().expect("the server logs its address").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split('/').next().unwrap().parse().unwrap();
        }
    };
    // The flag's token is the one in force, and rooms tick at the file's 20 Hz.
    let mut c =
        connect_to(addr, "/ws?token=from-flag", Some(tickforge_protocol::Format::Json)).expect("the flag's token");
    let joined = c.join_or_create("arena");
    let refused = connect_to(addr, "/ws?token=from-file", Some(tickforge_protocol::Format::Json));
    assert!(refused.is_err(), "the file's token was overridden");
    assert_eq!(joined.tick_hz, 20);
    drop(c);
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
}
