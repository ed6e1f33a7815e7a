use crate::util::*;

#[test]
fn plain_routes_answer_per_the_contract() {
    let server = TestServer::start();
    let a = server.addr;
    let ok = http(a, "GET", "/healthz", "");
    assert_eq!((ok.status, ok.body.as_str()), (200, "ok\n"));
    let page = http(a, "GET", "/", "");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.to_ascii_lowercase().starts_with("<!doctype html>"));
    assert_eq!(http(a, "GET", "/?room=r-0-1", "").status, 200, "the page is served whatever the query");
    let head = http(a, "HEAD", "/", "");
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "", "HEAD has no body");
    assert_eq!(head.header("content-length"), page.header("content-length"));
    let rooms = http(a, "GET", "/rooms", "");
    assert_eq!(rooms.status, 200);
    assert_eq!(rooms.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(rooms.body, r#"{"rooms":[]}"#);
    let metrics = http(a, "GET", "/metrics", "");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("# TYPE tickforge_tick_duration_seconds histogram"));
    assert!(metrics.body.contains("tickforge_closes_total{reason=\"too_slow\",code=\"1008\"}"));
}

#[test]
fn errors_have_a_status_and_a_reason() {
    let server = TestServer::start();
    let a = server.addr;
    let missing = http(a, "GET", "/nope", "");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/nope"));
    let wrong_method = http(a, "POST", "/rooms", "Content-Length: 0\r\n");
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.header("allow").as_deref(), Some("GET, HEAD"));
    assert!(!wrong_method.body.is_empty());
    assert_eq!(http(a, "DELETE", "/healthz", "").status, 405);
    // A body the server never wanted does not turn its answer into a reset.
    let body = "b".repeat(200_000);
    let post = http_raw(
        a,
        format!("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes(),
    );
    assert_eq!(post.status, 405);
    let malformed = http_raw(a, b"NOT HTTP AT ALL\x01\x02\r\n\r\n");
    assert_eq!(malformed.status, 400);
    assert!(!malformed.body.is_empty());
    let no_upgrade = http(a, "GET", "/ws", "");
    assert_eq!(no_upgrade.status, 426);
    assert_eq!(no_upgrade.header("upgrade").as_deref(), Some("websocket"));
    assert!(no_upgrade.body.contains("WebSocket"));
}

#[test]
fn handshake_refusals() {
    let origins = vec!["http://good.example".to_string()];
    let server = TestServer::with(|c| c.allowed_origins = origins);
    let a = server.addr;
    let version = http(a, "GET", "/ws", &UPGRADE.replace(": 13", ": 8"));
    assert_eq!(version.status, 426);
    assert_eq!(version.header("sec-websocket-version").as_deref(), Some("13"));
    let bad_key = http(a, "GET", "/ws", &UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "x"));
    assert_eq!(bad_key.status, 400);
    let unknown = http(a, "GET", "/ws", &format!("{UPGRADE}Sec-WebSocket-Protocol: mqtt, chat\r\n"));
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body.contains("tickforge.v1.bin") && unknown.body.contains("tickforge.v1.json"),
        "{}",
        unknown.body
    );
    let evil = http(a, "GET", "/ws", &format!("{UPGRADE}Origin: http://evil.example\r\n"));
    assert_eq!(evil.status, 403);
    assert!(evil.body.contains("evil.example"));
    let good = http(a, "GET", "/ws", &format!("{UPGRADE}Origin: http://good.example\r\n"));
    assert_eq!(good.status, 101);
    let wrong_method = http(a, "POST", "/ws", UPGRADE);
    assert_eq!(wrong_method.status, 405);
    assert_eq!(http(a, "GET", "/echo", UPGRADE).status, 404, "/echo only with --echo");
}

#[test]
fn subprotocol_choice_follows_the_client_order() {
    let server = TestServer::start();
    let a = server.addr;
    let both =
        http(a, "GET", "/ws", &format!("{UPGRADE}Sec-WebSocket-Protocol: x, tickforge.v1.json, tickforge.v1.bin\r\n"));
    assert_eq!(both.status, 101);
    assert_eq!(both.header("sec-websocket-protocol").as_deref(), Some("tickforge.v1.json"));
    assert_eq!(both.header("sec-websocket-accept").as_deref(), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    let none = http(a, "GET", "/ws", UPGRADE);
    assert_eq!(none.status, 101);
    assert_eq!(none.header("sec-websocket-protocol"), None);
}

#[test]
fn over_the_connection_limit_handshakes_get_503() {
    let server = TestServer::with(|c| c.limits.connections_per_shard = 2);
    let _a = connect(&server, tickforge_protocol::Format::Json);
    let _b = connect(&server, tickforge_protocol::Format::Json);
    let full = http(server.addr, "GET", "/ws", UPGRADE);
    assert_eq!(full.status, 503);
    assert!(full.body.contains("full"), "{}", full.body);
}

#[test]
fn a_slow_handshake_is_cut_off() {
    use std::io::{Read, Write};
    let server = TestServer::with(|c| c.limits.handshake_timeout = std::time::Duration::from_millis(200));
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut buf = Vec::new();
    // The server drops the connection without an answer.
    assert_eq!(s.read_to_end(&mut buf).map(|_| buf.len()).unwrap_or(0), 0);
}

#[test]
fn every_tick_is_timed_and_its_lag_after_its_due_time_counted() {
    let server = TestServer::start();
    let mut client = connect(&server, tickforge_protocol::Format::Bin);
    client.join_or_create("arena");
    for _ in 0..5 {
        client.next_tick();
    }
    // Served by the one shard's own thread, between two of its passes: the
    // figures of a pass are all in, or none.
    let text = http(server.addr, "GET", "/metrics", "").body;
    assert!(text.contains("# TYPE tickforge_tick_lag_seconds histogram"), "{text}");
    // One lag per tick run.
    let ticks = metric(&text, "tickforge_ticks_total");
    assert!(ticks >= 5, "{text}");
    assert_eq!(metric(&text, "tickforge_tick_lag_seconds_count"), ticks, "{text}");
    assert_eq!(metric(&text, "tickforge_tick_duration_seconds_count"), ticks, "{text}");
    assert_eq!(metric(&text, "tickforge_tick_lag_seconds_bucket{le=\"+Inf\"}"), ticks, "{text}");
}
