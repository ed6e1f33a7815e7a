//! Reconnection over real sockets: a dropped player's seat is held for the
//! grace, then freed; a server shutting down holds none.

use crate::util::*;
use std::time::{Duration, Instant};
use tickforge_protocol::message::{Confirm, Indication, Request};
use tickforge_protocol::Format;

/// The players `room_list` shows in `room`.
pub(crate) fn players_listed<S: Socket>(c: &mut Client<S>, room: &str) -> u32 {
    match c.call(Request::ListRooms { game: None, filter: None }) {
        Confirm::RoomList { rooms } => rooms.iter().find(|r| r.room_id.0 == room).map_or(0, |r| r.players),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_dropped_seat_is_held_for_the_grace_then_freed() {
    let server = TestServer::with(|c| c.reconnect_grace = Duration::from_millis(700));
    let mut stays = connect(&server, Format::Json);
    let mut drops = connect(&server, Format::Bin);
    let room = stays.join_or_create("arena").room_id;
    assert_eq!(drops.join_or_create("arena").room_id, room);
    drops.next_tick();
    // The socket goes away without leave_room or a close frame.
    drop(drops);
    let dropped_at = Instant::now();
    let deadline = dropped_at + WAIT;
    while metric(&server.metrics(), "tickforge_seats_held_total") == 0 {
        assert!(Instant::now() < deadline, "the seat was never held");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Held: still counted as a player, the room ticks on.
    assert_eq!(players_listed(&mut stays, &room.0), 2);
    stays.next_tick();
    // Past the grace: freed, the others told `disconnected`.
    let reason = stays.wait_indication("player_left", |i| match i {
        Indication::PlayerLeft { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason, "disconnected");
    assert!(dropped_at.elapsed() >= Duration::from_millis(700), "freed before the grace ended");
    assert_eq!(players_listed(&mut stays, &room.0), 1);
    assert_eq!(metric(&server.metrics(), "tickforge_seats_expired_total"), 1);
}

#[test]
fn leave_room_frees_the_seat_at_once() {
    let server = TestServer::start();
    let mut stays = connect(&server, Format::Json);
    let mut leaves = connect(&server, Format::Json);
    let room = stays.join_or_create("arena").room_id;
    leaves.join_or_create("arena");
    assert!(matches!(leaves.call(Request::LeaveRoom), Confirm::Left { .. }));
    let reason = stays.wait_indication("player_left", |i| match i {
        Indication::PlayerLeft { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason, "left");
    assert_eq!(players_listed(&mut stays, &room.0), 1);
    assert_eq!(metric(&server.metrics(), "tickforge_seats_held_total"), 0);
}

#[test]
fn a_server_shutting_down_holds_no_seats() {
    let server = TestServer::start();
    let mut a = connect(&server, Format::Bin);
    let mut b = connect(&server, Format::Json);
    a.join_or_create("arena");
    b.join_or_create("arena");
    a.next_tick();
    server.shutdown();
    assert_eq!(a.wait_close().0, 1001);
    assert_eq!(b.wait_close().0, 1001);
    assert_eq!(metric(&server.metrics(), "tickforge_seats_held_total"), 0);
    server.wait();
}
