use crate::util::*;
use tickforge_protocol::message::{Confirm, Request};
use tickforge_protocol::Format;

/// The shard a connection is served by, from its session id (`s-SHARD-N`).
fn shard_of(c: &mut Client) -> String {
    match c.call(Request::Hello { token: None, client: None }) {
        Confirm::Welcome { session_id, .. } => session_id.0.split('-').nth(1).unwrap().to_string(),
        other => panic!("{other:?}"),
    }
}

/// The shard a room lives on, from its id (`r-SHARD-N`).
fn shard_of_room(id: &str) -> String {
    id.split('-').nth(1).unwrap().to_string()
}

#[test]
fn joining_a_room_on_another_shard_hands_the_connection_over() {
    let server = TestServer::with(|c| c.shards = 2);
    let mut owner = connect(&server, Format::Bin);
    let room = owner.join_or_create("arena").room_id;
    let home = shard_of_room(&room.0);
    // Find connections the kernel put on the other shard (SO_REUSEPORT spreads them).
    let mut moved = 0;
    for format in [Format::Bin, Format::Json] {
        let mut guest = None;
        for _ in 0..64 {
            let mut c = connect(&server, format);
            if shard_of(&mut c) != home {
                guest = Some(c);
                break;
            }
        }
        let Some(mut guest) = guest else { panic!("64 connections all landed on shard {home}") };
        // Pipeline a ping right behind the join: it must be answered too (after the move).
        let join = guest.request(Request::JoinRoom { room_id: room.clone(), reservation: None });
        let ping = guest.request(Request::Ping { client_time_us: 9 });
        match guest.answer(join) {
            Ok(Confirm::Joined(j)) => assert_eq!(j.room_id, room),
            other => panic!("{other:?}"),
        }
        assert!(matches!(guest.answer(ping), Ok(Confirm::Pong { client_time_us: 9, .. })));
        // Now served where the room is: ticks, inputs, and the same shard in hello.
        guest.next_tick();
        let seq = guest.input(tickforge_protocol::message::InputData { move_x: 5, move_y: 0, buttons: 0 });
        loop {
            if guest.next_tick().input_seq.0 >= seq {
                break;
            }
        }
        // The session (and its id) moved along.
        assert_ne!(shard_of(&mut guest), home);
        moved += 1;
    }
    assert_eq!(moved, 2);
    let m = server.metrics();
    assert_eq!(metric(&m, "tickforge_handoffs_out_total"), 2);
    assert_eq!(metric(&m, "tickforge_handoffs_in_total"), 2);
}

#[test]
fn rooms_of_every_shard_are_listed_and_join_or_create_fills_them() {
    let server = TestServer::with(|c| c.shards = 2);
    let mut a = connect(&server, Format::Json);
    let room = a.join_or_create("arena").room_id;
    // Wait until the directory has it, then every connection, on whichever
    // shard, lists it and join_or_create puts players into it.
    for _ in 0..8 {
        let mut c = connect(&server, Format::Json);
        match c.call(Request::ListRooms { game: None, filter: None }) {
            Confirm::RoomList { rooms } => assert!(rooms.iter().any(|r| r.room_id == room), "{rooms:?}"),
            other => panic!("{other:?}"),
        }
        let j = c.join_or_create("arena");
        assert_eq!(j.room_id, room);
        c.call(Request::LeaveRoom);
    }
}

/// Regression: a hand-off used to carry a connection onto a shard already
/// at its connection limit (served without a permit). Now a join of a room
/// on a full shard is refused where the client stands.
#[test]
fn a_join_is_not_handed_to_a_shard_at_its_connection_limit() {
    let server = TestServer::with(|c| {
        c.shards = 2;
        c.limits.connections_per_shard = 3;
    });
    let mut owner = connect(&server, Format::Bin);
    let room = owner.join_or_create("arena").room_id;
    let home = shard_of_room(&room.0);
    // Fill the room's shard to its limit and find a connection elsewhere
    // (handshakes beyond a full shard's limit are answered 503: skipped).
    let mut kept = vec![];
    let mut guest = None;
    for _ in 0..64 {
        let Ok(mut c) = connect_to(server.addr, "/ws", Some(Format::Bin)) else { continue };
        if shard_of(&mut c) == home {
            kept.push(c);
        } else if guest.is_none() {
            guest = Some(c);
        }
        if kept.len() == 2 && guest.is_some() {
            break;
        }
    }
    assert_eq!(kept.len(), 2, "the room's shard holds the owner and two more");
    let mut guest = guest.expect("a connection on the other shard");
    let id = guest.request(Request::JoinRoom { room_id: room.clone(), reservation: None });
    match guest.answer(id) {
        Err((code, reason)) => {
            assert_eq!(code, tickforge_protocol::message::RejectCode::Overloaded);
            assert!(reason.contains("connection limit"), "{reason}");
        }
        other => panic!("expected rej overloaded, got {other:?}"),
    }
    // Still usable where it stands, and nothing was handed off.
    assert!(matches!(guest.call(Request::Ping { client_time_us: 1 }), Confirm::Pong { .. }));
    assert_eq!(metric(&server.metrics(), "tickforge_handoffs_out_total"), 0);
}

/// `join_or_create` with options finds the room made with equal options on
/// another shard (through the directory), and passes over one made with
/// other options there; filters see the metadata of every shard's rooms.
#[test]
fn join_or_create_matches_options_across_shards() {
    use tickforge_protocol::value::{Value, ValueMap};
    let server = TestServer::with(|c| c.shards = 2);
    let opts = |v: &str| -> Option<ValueMap> { Some([("variant", Value::from(v))].into_iter().collect()) };
    let mut owner = connect(&server, Format::Json);
    let id = owner.request(Request::JoinOrCreate { game: "lines".into(), options: opts("connect4") });
    let Ok(Confirm::Joined(room)) = owner.answer(id) else { panic!("joined") };
    let home = shard_of_room(&room.room_id.0);
    let mut guest = None;
    for _ in 0..64 {
        let mut c = connect(&server, Format::Bin);
        if shard_of(&mut c) != home {
            guest = Some(c);
            break;
        }
    }
    let Some(mut guest) = guest else { panic!("64 connections all landed on shard {home}") };
    let filter = Some([("variant", Value::from("connect4"))].into_iter().collect());
    let Confirm::RoomList { rooms } = guest.call(Request::ListRooms { game: None, filter }) else { panic!("list") };
    assert_eq!(rooms.iter().map(|r| &r.room_id).collect::<Vec<_>>(), [&room.room_id], "listed from the other shard");
    // Other options: a new room, on the guest's own shard.
    let mut third = None;
    for _ in 0..64 {
        let mut c = connect(&server, Format::Bin);
        if shard_of(&mut c) != home {
            third = Some(c);
            break;
        }
    }
    let mut third = third.expect("a third connection on the other shard");
    let id = third.request(Request::JoinOrCreate { game: "lines".into(), options: opts("gomoku") });
    let Ok(Confirm::Joined(other)) = third.answer(id) else { panic!("joined") };
    assert_ne!(other.room_id, room.room_id);
    assert_ne!(shard_of_room(&other.room_id.0), home);
    // Equal options: handed over to the owner's room.
    let id = guest.request(Request::JoinOrCreate { game: "lines".into(), options: opts("connect4") });
    match guest.answer(id) {
        Ok(Confirm::Joined(j)) => assert_eq!(j.room_id, room.room_id),
        other => panic!("{other:?}"),
    }
}
