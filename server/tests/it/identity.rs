//! Signed identities (`--auth-secret`): every refusal says why, over real
//! sockets; `?token=` for browsers; the token minting script; the flags.

use crate::util::*;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};
use tickforge_protocol::message::{Confirm, RejectCode, Request};
use tickforge_protocol::Format;
use tickforge_server::auth::{mint, AuthSecret};

pub(crate) const SECRET: &str = "a test secret of 32 bytes, hush!";

pub(crate) fn secret() -> AuthSecret {
    AuthSecret::new(SECRET).unwrap()
}

pub(crate) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A token for `sub`, good for an hour.
pub(crate) fn token(sub: &str) -> String {
    mint(&secret(), sub, now() + 3600, None)
}

pub(crate) fn auth_server() -> TestServer {
    TestServer::with(|c| c.auth = Some(secret()))
}

fn b64(s: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// A token with this header and these claims, signed HS256 with `key`.
fn signed(header: &str, claims: &str, key: &[u8]) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

#[test]
fn every_refused_token_says_why_and_closes_1008() {
    let server = auth_server();
    let later = now() + 3600;
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing token"),
        (Some("not-a-jwt".into()), "malformed token"),
        (Some(mint(&secret(), "alice", now() - 10, None)), "expired token"),
        (
            Some(mint(&AuthSecret::new("some other secret, 32 bytes long").unwrap(), "alice", later, None)),
            "bad signature",
        ),
        (
            Some(signed(r#"{"alg":"HS384"}"#, &format!(r#"{{"sub":"a","exp":{later}}}"#), SECRET.as_bytes())),
            "wrong algorithm",
        ),
        (Some(signed(r#"{"alg":"none"}"#, &format!(r#"{{"sub":"a","exp":{later}}}"#), b"")), "wrong algorithm"),
        (
            Some(signed(r#"{"alg":"HS256"}"#, &format!(r#"{{"exp":{later}}}"#), SECRET.as_bytes())),
            "claim \"sub\" is missing",
        ),
    ];
    for (token, why) in cases {
        for format in [Format::Json, Format::Bin] {
            let mut c = connect(&server, format);
            let id = c.request(Request::Hello { token: token.clone(), client: None });
            let (code, reason) = c.answer(id).unwrap_err();
            assert_eq!(code, RejectCode::Unauthorized);
            assert!(reason.contains(why), "{reason:?} lacks {why:?}");
            let (code, close) = c.wait_close();
            assert_eq!(code, 1008, "{close}");
        }
    }
}

#[test]
fn a_request_before_hello_is_unauthorized_and_a_good_token_opens_the_rest() {
    let server = auth_server();
    let mut c = connect(&server, Format::Json);
    assert_eq!(c.call_rej(Request::JoinOrCreate { game: "arena".into(), options: None }), RejectCode::Unauthorized);
    assert!(matches!(c.call(Request::Hello { token: Some(token("alice")), client: None }), Confirm::Welcome { .. }));
    c.join_or_create("arena");
    c.next_tick();
}

#[test]
fn a_browser_passes_its_token_in_the_query() {
    let server = auth_server();
    // A good token: no hello needed. Percent-encoding survives.
    let mut c = connect_to(server.addr, &format!("/ws?token={}", token("carol")), Some(Format::Json)).unwrap();
    c.join_or_create("arena");
    // A bad one: 403 saying why, before any WebSocket.
    let expired = mint(&secret(), "carol", now() - 1, None);
    let answer = http(server.addr, "GET", &format!("/ws?token={expired}"), UPGRADE);
    assert_eq!(answer.status, 403);
    assert!(answer.body.contains("expired token"), "{}", answer.body);
    let answer = http(server.addr, "GET", "/ws?token=garbage", UPGRADE);
    assert_eq!(answer.status, 403);
    assert!(answer.body.contains("malformed token"), "{}", answer.body);
}

#[test]
fn the_mint_script_makes_tokens_the_server_takes() {
    let server = auth_server();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/mint-token.py");
    let out = Command::new("python3")
        .args([script, "--secret", SECRET, "--sub-prefix", "bot-", "--count", "3", "--name", "Bot"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tokens: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(tokens.len(), 3);
    for (i, t) in tokens.iter().enumerate() {
        let identity = tickforge_server::auth::verify(&secret(), t, now()).unwrap();
        assert_eq!(identity.user_id, format!("bot-{i}"));
        assert_eq!(identity.name.as_deref(), Some("Bot"));
        let mut c = connect(&server, Format::Bin);
        assert!(matches!(c.call(Request::Hello { token: Some(t.clone()), client: None }), Confirm::Welcome { .. }));
    }
    // An expired one, for tests: refused as expired.
    let out = Command::new("python3").args([script, "--secret", SECRET, "--sub", "x", "--ttl", "-5"]).output().unwrap();
    let expired = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let mut c = connect(&server, Format::Json);
    let id = c.request(Request::Hello { token: Some(expired), client: None });
    assert!(c.answer(id).unwrap_err().1.contains("expired token"));
    // A short secret is refused by the script too.
    let out = Command::new("python3").args([script, "--secret", "short", "--sub", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn auth_flags_are_checked_at_start() {
    let bin = env!("CARGO_BIN_EXE_tickforge");
    let dir = std::env::temp_dir().join(format!("tickforge-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short");
    std::fs::write(&short, "tiny\n").unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--auth-secret", "tiny"], "--auth-secret: 4 bytes is too short"),
        (&["--auth-secret-file", short.to_str().unwrap()], "is too short"),
        (&["--auth-secret-file", "/nonexistent/secret"], "cannot read it"),
        (&["--auth-secret", SECRET, "--token", "x"], "--token: cannot be used with --auth-secret"),
    ];
    for (args, want) in cases {
        let out = Command::new(bin).args(["--listen", "127.0.0.1:0"]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(want), "{err:?} lacks {want:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
