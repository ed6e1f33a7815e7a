use crate::util::*;
use std::time::Duration;
use tickforge_protocol::message::{Indication, Request};
use tickforge_protocol::Format;

#[test]
fn a_stuck_client_is_closed_while_the_others_get_every_tick() {
    let server = TestServer::with(|c| {
        c.limits.slow_client = Duration::from_millis(500);
        c.limits.send_stall = Duration::from_millis(500);
        // Freed at once: `player_left`, not a held seat.
        c.reconnect_grace = Duration::ZERO;
    });
    let mut good = connect(&server, Format::Json);
    let mut stuck = connect(&server, Format::Json);
    crate::bad_input::shrink_receive_buffer(&stuck);
    let room = good.join_or_create("arena").room_id;
    assert_eq!(stuck.join_or_create("arena").room_id, room);
    stuck.next_tick();
    stuck.ack();
    // `stuck` stops reading; `good` keeps acking and must see every tick.
    let mut last = good.next_tick().tick;
    let mut count = 0;
    while metric(&server.metrics(), "tickforge_closes_total{reason=\"too_slow\",code=\"1008\"}") == 0 {
        good.ack();
        let t = good.next_tick().tick;
        assert_eq!(t.0, last.0 + 1, "good client missed a tick");
        last = t;
        count += 1;
        assert!(count < 30 * 60, "the stuck client was never closed");
    }
    // And still afterwards.
    for _ in 0..10 {
        good.ack();
        let t = good.next_tick().tick;
        assert_eq!(t.0, last.0 + 1);
        last = t;
    }
    let left = good.wait_indication("player_left", |i| match i {
        Indication::PlayerLeft { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(left, "too_slow");
    // The stuck client, reading again, finds the 1008 close after its backlog.
    let (code, reason) = stuck.wait_close();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("too slow"), "{reason}");
}

#[test]
fn an_idle_connection_is_pinged_and_a_silent_one_closed() {
    let server = TestServer::with(|c| {
        c.ping_interval = Duration::from_millis(150);
        c.ping_timeout = Duration::from_millis(1500);
    });
    // tungstenite answers pings while we read: this one stays open.
    let mut alive = connect(&server, Format::Json);
    let mut saw_ping = false;
    for _ in 0..4 {
        if let Some(tungstenite::Message::Ping(_)) = alive.read() {
            saw_ping = true;
        }
    }
    assert!(saw_ping);
    assert!(alive.closed.is_none());
    // A client that never reads (so never answers) is closed 1008.
    let mut silent = connect(&server, Format::Json);
    // (Reading would answer the pings: stay away well past ping + timeout.)
    std::thread::sleep(Duration::from_millis(3000));
    let (code, reason) = silent.wait_close();
    assert_eq!(code, 1008, "{reason}");
    assert!(reason.contains("pong"), "{reason}");
}

#[test]
fn graceful_shutdown_sends_room_closing_then_1001() {
    let server = TestServer::start();
    let mut a = connect(&server, Format::Bin);
    let mut b = connect(&server, Format::Json);
    let mut idle = connect(&server, Format::Json);
    a.join_or_create("arena");
    b.join_or_create("arena");
    a.next_tick();
    idle.call(Request::Ping { client_time_us: 1 });
    let addr = server.addr;
    server.shutdown();
    // While connections drain, /healthz and new handshakes answer 503.
    let mut saw_503 = false;
    for _ in 0..100 {
        let h = http(addr, "GET", "/healthz", "");
        if h.status == 503 {
            saw_503 = true;
            assert_eq!(http(addr, "GET", "/ws", UPGRADE).status, 503);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(saw_503, "/healthz never answered 503 while draining");
    for c in [&mut a, &mut b] {
        let reason = c.wait_indication("room_closing", |i| match i {
            Indication::RoomClosing { reason } => Some(reason.clone()),
            _ => None,
        });
        assert!(reason.contains("shutting down"), "{reason}");
        let (code, reason) = c.wait_close();
        assert_eq!(code, 1001, "{reason}");
        assert!(!reason.is_empty());
    }
    assert_eq!(idle.wait_close().0, 1001);
    server.wait();
}

#[test]
fn an_empty_room_is_disposed_of_after_the_grace_period() {
    let server = TestServer::with(|c| c.empty_room_grace = Duration::from_millis(200));
    let mut a = connect(&server, Format::Json);
    let room = a.join_or_create("arena").room_id;
    a.call(Request::LeaveRoom);
    let mut gone = false;
    for _ in 0..200 {
        let rooms = http(server.addr, "GET", "/rooms", "");
        if !rooms.body.contains(&room.0) {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone, "the empty room was never disposed of");
    assert_eq!(metric(&server.metrics(), "tickforge_rooms{shard=\"0\"}"), 0);
}
