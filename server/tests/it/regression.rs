//! Findings of the fuzzers and the fault scripts, one test each, named by
//! what was wrong; RELIABILITY.md ("Findings") lists them with the input
//! that found them.

use crate::util::*;
use tickforge_protocol::message::{Confirm, InputData, Request};
use tickforge_protocol::Format;

/// Finding 1 (fuzz target `http_answer`): `HEAD` on an unknown path, or on
/// `/ws`, was answered with a body (the 404 or 405 text), which a client
/// on a kept-alive connection would read as the start of the next answer.
#[test]
fn head_answers_have_no_body_whatever_their_status() {
    let server = TestServer::start();
    let a = server.addr;
    for (path, status) in [("/metrics/", 404), ("/nope", 404), ("/ws", 405), ("/healthz", 200)] {
        let answer = http(a, "HEAD", path, "");
        assert_eq!(answer.status, status, "HEAD {path}");
        assert_eq!(answer.body, "", "HEAD {path} has no body");
        let get = http(a, "GET", path, "");
        if status != 405 {
            assert_eq!(answer.header("content-length"), get.header("content-length"), "HEAD {path}: GET's length");
        }
    }
}

/// Finding 2 (fuzz target `connection`): a client that leaves and joins
/// again without waiting for the answers writes its next input with an ack
/// of the old membership's newest tick. The new seat took that ack as its
/// baseline, and the client, which dropped its old states on `left`, could
/// not apply the next tick (a delta against a tick it does not hold). Acks
/// older than a seat's first tick are now ignored.
#[test]
fn an_ack_of_an_earlier_membership_is_not_a_baseline() {
    let server = TestServer::start();
    for format in [Format::Json, Format::Bin] {
        let mut c = connect(&server, format);
        let joined = c.join_or_create("arena");
        for _ in 0..3 {
            c.next_tick();
            c.ack();
        }
        // Leave, join again and send an input in one burst: the input acks
        // the newest tick of the first membership.
        let leave = c.request(Request::LeaveRoom);
        let join = c.request(Request::JoinRoom { room_id: joined.room_id.clone(), reservation: None });
        c.input(InputData { move_x: 1, move_y: 0, buttons: 0 });
        assert!(matches!(c.answer(leave), Ok(Confirm::Left { .. })));
        assert!(matches!(c.answer(join), Ok(Confirm::Joined(_))));
        // Every tick of the new membership applies (`next_event` panics on
        // a message the session cannot use).
        let first = c.next_tick();
        assert_eq!(first.baseline, None, "the new seat's first tick is a full state");
        for _ in 0..5 {
            c.next_tick();
            c.ack();
        }
        c.request(Request::LeaveRoom);
    }
}
