use crate::util::*;
use std::time::Duration;
use tickforge_protocol::ids::{InputSeq, RequestId};
use tickforge_protocol::message::{ClientMsg, Confirm, Indication, InputData, RejectCode, Request};
use tickforge_protocol::session::Event;
use tickforge_protocol::Format;
use tungstenite::Message;

fn error_indication(c: &mut Client) -> (RejectCode, String) {
    c.wait_indication("error indication", |i| match i {
        Indication::Error { code, reason } => Some((*code, reason.clone())),
        _ => None,
    })
}

#[test]
fn undecodable_messages_get_rej_or_error_then_1007() {
    let server = TestServer::start();
    let mut c = connect(&server, Format::Json);
    // The id is readable: rej bad_request with it.
    c.ws.send(Message::text(r#"{"type":"req","id":77,"body":{"type":"join_room"}}"#)).unwrap();
    let (code, _) = c.answer(RequestId(77)).unwrap_err();
    assert_eq!(code, RejectCode::BadRequest);
    // An unknown request type: unsupported.
    c.ws.send(Message::text(r#"{"type":"req","id":78,"body":{"type":"fly"}}"#)).unwrap();
    assert_eq!(c.answer(RequestId(78)).unwrap_err().0, RejectCode::Unsupported);
    // No id: an error indication.
    c.ws.send(Message::text("not json")).unwrap();
    assert_eq!(error_indication(&mut c).0, RejectCode::BadRequest);
    // A good message resets the count.
    assert!(matches!(c.call(Request::Ping { client_time_us: 1 }), Confirm::Pong { .. }));
    for _ in 0..5 {
        c.ws.send(Message::text("{}")).unwrap();
    }
    let (code, reason) = c.wait_close();
    assert_eq!(code, 1007, "{reason}");
    assert!(!reason.is_empty());
}

#[test]
fn binary_garbage_and_wrong_frame_types() {
    let server = TestServer::start();
    let mut bin = connect(&server, Format::Bin);
    bin.ws.send(Message::binary(vec![0xff, 0xff, 0xff])).unwrap();
    assert_eq!(error_indication(&mut bin).0, RejectCode::BadRequest);
    bin.ws.send(Message::text("{}")).unwrap();
    let (code, reason) = bin.wait_close();
    assert_eq!(code, 1003, "{reason}");
    assert!(reason.contains("text"), "{reason}");
    let mut json = connect(&server, Format::Json);
    json.ws.send(Message::binary(vec![1, 2, 3])).unwrap();
    assert_eq!(json.wait_close().0, 1003);
    let m = server.metrics();
    assert_eq!(metric(&m, "tickforge_closes_total{reason=\"wrong_frame_type\",code=\"1003\"}"), 2);
}

#[test]
fn a_message_over_the_limit_closes_1009() {
    let server = TestServer::with(|c| c.limits.max_message_size = 1024);
    let mut c = connect(&server, Format::Json);
    // Far over: most of the frame is still unread when the server decides;
    // the close frame must still arrive (no RST discarding it).
    let big = format!(r#"{{"type":"req","id":1,"body":{{"type":"hello","client":"{}"}}}}"#, "x".repeat(4 << 20));
    // The server reads (and drops) the rest, so a client still writing its
    // message is not reset (a browser would report 1006 then).
    c.ws.send(Message::text(big)).expect("the whole message could be sent");
    let (code, reason) = c.wait_close();
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("1024"), "{reason}");
    // Just under the limit is fine.
    let mut d = connect(&server, Format::Json);
    let ok = format!(r#"{{"type":"req","id":1,"body":{{"type":"hello","client":"{}"}}}}"#, "x".repeat(900));
    d.ws.send(Message::text(ok)).unwrap();
    assert!(d.answer(RequestId(1)).is_ok());
}

#[test]
fn input_in_no_room_gets_one_error_a_second() {
    let server = TestServer::start();
    let mut c = connect(&server, Format::Bin);
    for _ in 0..20 {
        c.input(InputData::default());
    }
    let (code, _) = error_indication(&mut c);
    assert_eq!(code, RejectCode::NotInRoom);
    // The other 19 were dropped silently: the next thing we see is the pong.
    let id = c.request(Request::Ping { client_time_us: 5 });
    let event = c.next_event().unwrap();
    assert!(matches!(event, Event::Confirmed { id: i, .. } if i == id), "{event:?}");
    assert!(metric(&server.metrics(), "tickforge_inputs_dropped_total") >= 20);
}

#[test]
fn input_flooding_is_dropped_then_closed_1008() {
    let server = TestServer::with(|c| c.limits.inputs_per_sec = 10);
    let mut c = connect(&server, Format::Bin);
    c.join_or_create("arena");
    for seq in 1..=200u32 {
        c.send_msg(&ClientMsg::Input { seq: InputSeq(seq), ack: None, data: InputData::default().to_raw(Format::Bin) });
    }
    let (code, reason) = c.wait_close();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("flooding"), "{reason}");
    let m = server.metrics();
    assert!(metric(&m, "tickforge_inputs_dropped_total") >= 40);
    assert_eq!(metric(&m, "tickforge_closes_total{reason=\"flooding\",code=\"1008\"}"), 1);
}

#[test]
fn over_the_request_rate_is_rate_limited() {
    let server = TestServer::with(|c| c.limits.requests_per_sec = 3);
    let mut c = connect(&server, Format::Json);
    let ids: Vec<_> = (0..10).map(|i| c.request(Request::Ping { client_time_us: i })).collect();
    let limited = ids.iter().filter(|id| matches!(c.answer(**id), Err((RejectCode::RateLimited, _)))).count();
    assert!(limited >= 5, "{limited} of 10 rate limited");
}

#[test]
fn request_flooding_is_closed_1008() {
    let server = TestServer::with(|c| c.limits.requests_per_sec = 3);
    let mut c = connect(&server, Format::Json);
    for i in 0..100 {
        c.request(Request::Ping { client_time_us: i });
    }
    let (code, reason) = c.wait_close();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("flooding"), "{reason}");
    assert_eq!(metric(&server.metrics(), "tickforge_closes_total{reason=\"flooding\",code=\"1008\"}"), 1);
}

#[test]
fn a_token_is_required_before_other_requests() {
    let server = TestServer::with(|c| c.token = Some("s3cret".into()));
    let mut c = connect(&server, Format::Json);
    assert_eq!(c.call_rej(Request::JoinOrCreate { game: "arena".into(), options: None }), RejectCode::Unauthorized);
    assert!(matches!(c.call(Request::Hello { token: Some("s3cret".into()), client: None }), Confirm::Welcome { .. }));
    c.join_or_create("arena");
    let mut bad = connect(&server, Format::Bin);
    assert_eq!(bad.call_rej(Request::Hello { token: Some("guess".into()), client: None }), RejectCode::Unauthorized);
    let (code, reason) = bad.wait_close();
    assert_eq!(code, 1008, "{reason}");
    // A wrong ?token= in the handshake is 403.
    let refused = http(server.addr, "GET", "/ws?token=guess", UPGRADE);
    assert_eq!(refused.status, 403);
}

#[test]
fn the_control_queue_bound_closes_a_client_that_does_not_read() {
    let server = TestServer::with(|c| {
        c.limits.control_queue = 8;
        c.limits.requests_per_sec = 100_000;
        c.limits.send_stall = Duration::from_secs(60);
    });
    let mut c = connect(&server, Format::Json);
    shrink_receive_buffer(&c);
    // Many answers, never read: the socket fills, then the queue, then 1008.
    for i in 0..100_000u64 {
        let id = c.request(Request::Ping { client_time_us: i });
        let _ = id;
        if i % 100 == 99 && metric(&server.metrics(), "tickforge_closes_total{reason=\"too_slow\",code=\"1008\"}") > 0 {
            break;
        }
    }
    let (code, reason) = c.wait_close();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("too slow"), "{reason}");
}

/// Makes the client's socket receive buffer small, so a client that stops
/// reading stalls the server's writes soon.
pub(crate) fn shrink_receive_buffer<S: Socket>(c: &Client<S>) {
    use std::os::fd::AsRawFd;
    let fd = c.ws.get_ref().tcp().as_raw_fd();
    let size: libc::c_int = 4096;
    // SAFETY: setsockopt on an open socket with a valid int option.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const size).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[test]
fn a_websocket_protocol_violation_closes_1002() {
    use std::io::{Read, Write};
    let server = TestServer::start();
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(format!("GET /ws HTTP/1.1\r\nHost: x\r\n{UPGRADE}\r\n").as_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed during the handshake");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101 "));
    // An unmasked client frame (RFC 6455 5.1: the server must fail the connection).
    s.write_all(b"\x81\x05hello").unwrap();
    let mut frame = Vec::new();
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => frame.extend_from_slice(&buf[..n]),
        }
    }
    assert_eq!(frame.first(), Some(&0x88), "a close frame: {frame:?}");
    let code = u16::from_be_bytes([frame[2], frame[3]]);
    assert_eq!(code, 1002);
    assert!(frame.len() > 4, "the close carries a reason");
    assert_eq!(metric(&server.metrics(), "tickforge_closes_total{reason=\"protocol_error\",code=\"1002\"}"), 1);
}

/// Input data that does not fit the room's input schema is dropped with an
/// `error` indication (`bad_request`, naming the field), one a second at
/// most; the connection stays open (no 1007).
#[test]
fn input_outside_the_input_schema_gets_one_error_a_second() {
    use tickforge_protocol::input::{BinInput, JsonInput, RawInput};
    let server = TestServer::start();
    for format in [Format::Bin, Format::Json] {
        let mut c = connect(&server, format);
        c.join_or_create("arena");
        let (data, field) = match format {
            // move_x, move_y and no buttons.
            Format::Bin => (RawInput::Bin(BinInput::new(&[10, 0xfb]).unwrap()), "buttons"),
            Format::Json => {
                let members =
                    vec![("move_x".into(), 10.into()), ("move_y".into(), 300.into()), ("buttons".into(), 0.into())];
                (RawInput::Json(JsonInput::new(members).unwrap()), "move_y")
            }
        };
        for seq in 1..=20 {
            c.send_msg(&ClientMsg::Input { seq: InputSeq(seq), ack: None, data: data.clone() });
        }
        let (code, reason) = error_indication(&mut c);
        assert_eq!(code, RejectCode::BadRequest, "{format:?}");
        assert!(reason.contains(field), "{format:?}: {reason}");
        let id = c.request(Request::Ping { client_time_us: 5 });
        loop {
            match c.next_event().expect("the connection stays open") {
                Event::Confirmed { id: i, .. } if i == id => break,
                Event::Indication(Indication::Error { reason, .. }) => panic!("{format:?}: a second error: {reason}"),
                _ => {}
            }
        }
    }
    assert!(metric(&server.metrics(), "tickforge_inputs_dropped_total") >= 40);
}

/// Empty options and filters are the same as none. (Every request of the
/// contract is served now; a reservation outside a cluster is `not_found`:
/// `cluster_nodes::a_reservation_at_a_server_without_a_cluster_is_not_found`.)
#[test]
fn empty_options_and_filters_are_the_same_as_none() {
    use tickforge_protocol::value::ValueMap;
    let server = TestServer::start();
    let mut c = connect(&server, Format::Json);
    let empty = Some(ValueMap::new());
    assert!(matches!(c.call(Request::ListRooms { game: None, filter: empty.clone() }), Confirm::RoomList { .. }));
    assert!(matches!(c.call(Request::JoinOrCreate { game: "arena".into(), options: empty }), Confirm::Joined(_)));
}
