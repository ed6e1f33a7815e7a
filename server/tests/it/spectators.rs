//! Spectators over real sockets: `watch_room` gets the ticks (full state,
//! then deltas on its acks) without a seat; bounded; inputs have no effect;
//! counts in `room_list` and `/rooms`; `leave_room` stops watching.

use crate::util::*;
use tickforge_protocol::message::{Confirm, Indication, InputData, RejectCode, Request};
use tickforge_protocol::session::Event;
use tickforge_protocol::Format;

fn spectators_listed(c: &mut Client, room: &str) -> (u32, u32) {
    match c.call(Request::ListRooms { game: None, filter: None }) {
        Confirm::RoomList { rooms } => {
            rooms.iter().find(|r| r.room_id.0 == room).map_or((0, 0), |r| (r.players, r.spectators))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_spectator_sees_the_rooms_state_without_a_seat() {
    let server = TestServer::with(|c| c.limits.default_players_per_room = 1);
    let mut player = connect(&server, Format::Bin);
    let room = player.join_or_create("arena").room_id;
    for format in [Format::Json, Format::Bin] {
        let mut watcher = connect(&server, format);
        let watching = match watcher.call(Request::WatchRoom { room_id: room.clone() }) {
            Confirm::Watching(w) => w,
            other => panic!("{other:?}"),
        };
        assert_eq!((watching.room_id.clone(), watching.game.as_str(), watching.tick_hz), (room.clone(), "arena", 30));
        assert!(!watching.schema.fields.is_empty() && !watching.input_schema.fields.is_empty());
        // Full state first, then deltas against its acks; the same state
        // as the player's.
        assert_eq!(watcher.next_tick().baseline, None);
        let mut saw_delta = false;
        for _ in 0..10 {
            watcher.ack();
            saw_delta |= watcher.next_tick().baseline.is_some();
        }
        assert!(saw_delta, "deltas once it acks");
        let t = watcher.session.latest_tick().unwrap();
        while player.session.latest_tick() < Some(t) {
            player.ack();
            player.next_tick();
        }
        assert_eq!(player.session.latest_tick(), Some(t));
        assert_eq!(player.session.state(), watcher.session.state());
        // An input does nothing but an error indication (not_in_room).
        watcher.input(InputData { move_x: 100, move_y: 100, buttons: 1 });
        let (code, reason) = watcher.wait_for("error indication", |e| match e {
            Event::Indication(Indication::Error { code, reason }) => Some((*code, reason.clone())),
            _ => None,
        });
        assert_eq!(code, RejectCode::NotInRoom);
        assert!(reason.contains("spectator"), "{reason}");
        // Watching is being in a room: no join meanwhile.
        assert_eq!(
            watcher.call_rej(Request::JoinOrCreate { game: "arena".into(), options: None }),
            RejectCode::AlreadyInRoom
        );
        assert_eq!(spectators_listed(&mut player, &room.0), (1, 1), "a spectator takes no seat");
        let rooms = http(server.addr, "GET", "/rooms", "");
        assert!(rooms.body.contains("\"spectators\":1"), "{}", rooms.body);
        // leave_room stops watching.
        assert!(matches!(watcher.call(Request::LeaveRoom), Confirm::Left { .. }));
        assert_eq!(spectators_listed(&mut player, &room.0), (1, 0));
    }
}

#[test]
fn spectators_are_bounded_and_the_unknown_room_is_not_found() {
    let server = TestServer::with(|c| c.limits.max_spectators_per_room = 2);
    let mut player = connect(&server, Format::Json);
    let room = player.join_or_create("arena").room_id;
    let mut watchers: Vec<_> = (0..2).map(|_| connect(&server, Format::Json)).collect();
    for w in &mut watchers {
        assert!(matches!(w.call(Request::WatchRoom { room_id: room.clone() }), Confirm::Watching(_)));
    }
    let mut third = connect(&server, Format::Json);
    let id = third.request(Request::WatchRoom { room_id: room.clone() });
    let (code, reason) = third.answer(id).unwrap_err();
    assert_eq!(code, RejectCode::RoomFull);
    assert!(reason.contains("2 of 2 spectators"), "{reason}");
    assert_eq!(
        third.call_rej(Request::WatchRoom { room_id: tickforge_protocol::ids::RoomId("r-0-77".into()) }),
        RejectCode::NotFound
    );
    // A spectator's socket ending frees its place (no seat is held).
    drop(watchers.pop());
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let id = third.request(Request::WatchRoom { room_id: room.clone() });
        match third.answer(id) {
            Ok(Confirm::Watching(_)) => break,
            Err((RejectCode::RoomFull, _)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(metric(&server.metrics(), "tickforge_seats_held_total"), 0);
}

#[test]
fn a_spectator_on_the_other_shard_moves_to_the_rooms_shard() {
    let server = TestServer::with(|c| c.shards = 2);
    let shard_of = |c: &mut Client| match c.call(Request::Hello { token: None, client: None }) {
        Confirm::Welcome { session_id, .. } => session_id.0.split('-').nth(1).unwrap().to_string(),
        other => panic!("{other:?}"),
    };
    let mut player = connect(&server, Format::Bin);
    let room = player.join_or_create("arena").room_id;
    let home = room.0.split('-').nth(1).unwrap().to_string();
    let mut watcher = (0..64)
        .map(|_| connect(&server, Format::Json))
        .find_map(|mut c| (shard_of(&mut c) != home).then_some(c))
        .expect("a connection on the other shard");
    assert!(matches!(watcher.call(Request::WatchRoom { room_id: room.clone() }), Confirm::Watching(_)));
    assert_eq!(watcher.next_tick().baseline, None);
    assert_eq!(metric(&server.metrics(), "tickforge_handoffs_in_total"), 1);
}
