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

/// Reads `c`'s ticks until it applied `tick`; its state then.
fn state_at<S: Socket>(
    c: &mut Client<S>,
    tick: tickforge_protocol::ids::Tick,
) -> tickforge_protocol::snapshot::Snapshot {
    while c.session.latest_tick() < Some(tick) {
        c.ack();
        c.next_tick();
    }
    assert_eq!(c.session.latest_tick(), Some(tick), "a tick was skipped");
    c.session.state().unwrap().clone()
}

fn joined(c: Confirm) -> tickforge_protocol::message::Joined {
    match c {
        Confirm::Joined(j) => j,
        other => panic!("expected joined, got {other:?}"),
    }
}

#[test]
fn a_player_dropped_mid_game_resumes_its_seat_with_the_state_exact() {
    for format in [Format::Bin, Format::Json] {
        let server = TestServer::start();
        let mut other = connect(&server, Format::Json);
        let mut player = connect(&server, format);
        let room = other.join_or_create("arena").room_id;
        let first = player.join_or_create("arena");
        assert_eq!(first.room_id, room);
        assert_eq!(first.resume_token.len(), 22);
        player.input(tickforge_protocol::message::InputData { move_x: 90, move_y: 20, buttons: 1 });
        player.next_tick();
        let resume = player.session.resume_request().expect("a resume token");
        drop(player);
        let gone = other.wait_indication("player_disconnected", |i| match i {
            Indication::PlayerDisconnected { player_id } => Some(*player_id),
            _ => None,
        });
        assert_eq!(gone, first.player_id);
        // A new connection takes the seat back.
        let mut back = connect(&server, format);
        let again = joined(back.call(resume.clone()));
        assert_eq!(
            (again.room_id.clone(), again.player_id, again.entity_id),
            (room.clone(), first.player_id, first.entity_id)
        );
        assert_ne!(again.resume_token, first.resume_token, "a new token with every joined");
        let header = back.next_tick();
        assert_eq!(header.baseline, None, "a full state first");
        let back_state = back.session.state().unwrap().clone();
        assert_eq!(state_at(&mut other, header.tick), back_state, "the resumed client's state is the room's");
        let who = other.wait_indication("player_reconnected", |i| match i {
            Indication::PlayerReconnected { player_id } => Some(*player_id),
            _ => None,
        });
        assert_eq!(who, first.player_id);
        // Deltas from its acks, and its input sequence restarted at 1.
        back.ack();
        let seq = back.input(tickforge_protocol::message::InputData { move_x: -50, move_y: 0, buttons: 0 });
        assert_eq!(seq, 1);
        loop {
            back.ack();
            let h = back.next_tick();
            if h.input_seq.0 == seq {
                assert!(h.baseline.is_some(), "deltas after the full state");
                break;
            }
        }
        let t = back.session.latest_tick().unwrap();
        assert_eq!(&state_at(&mut other, t), back.session.state().unwrap());
        // The used token is spent: a second resume with it is not_found.
        let mut late = connect(&server, format);
        let id = late.request(resume);
        let (code, reason) = late.answer(id).unwrap_err();
        assert_eq!(code, tickforge_protocol::message::RejectCode::NotFound, "{reason}");
        assert_eq!(metric(&server.metrics(), "tickforge_resumes_total"), 1);
    }
}

#[test]
fn expired_reused_and_forged_tokens_are_not_found() {
    let server = TestServer::with(|c| c.reconnect_grace = Duration::from_millis(300));
    let mut other = connect(&server, Format::Json);
    let room = other.join_or_create("arena").room_id;
    let mut player = connect(&server, Format::Json);
    player.join_or_create("arena");
    let resume = player.session.resume_request().unwrap();
    drop(player);
    other.wait_indication("player_left", |i| matches!(i, Indication::PlayerLeft { .. }).then_some(()));
    let mut c = connect(&server, Format::Json);
    let not_found = |c: &mut Client, body: Request| {
        let id = c.request(body);
        let (code, reason) = c.answer(id).unwrap_err();
        assert_eq!(code, tickforge_protocol::message::RejectCode::NotFound, "{reason}");
        reason
    };
    // Expired (the grace passed).
    let reason = not_found(&mut c, resume);
    assert!(reason.contains("resume token"), "{reason}");
    // Forged: well formed, never issued; and garbage; and an unknown room.
    not_found(&mut c, Request::Resume { room_id: room.clone(), resume_token: "AAAAAAAAAAAAAAAAAAAAAA".into() });
    not_found(&mut c, Request::Resume { room_id: room.clone(), resume_token: "x".into() });
    not_found(
        &mut c,
        Request::Resume { room_id: tickforge_protocol::ids::RoomId("r-0-999".into()), resume_token: "x".into() },
    );
    // The connection stays usable.
    assert!(matches!(c.call(Request::Ping { client_time_us: 3 }), Confirm::Pong { .. }));
    // In a room already: already_in_room, whatever the token.
    c.join_or_create("arena");
    let id = c.request(Request::Resume { room_id: room, resume_token: "x".into() });
    assert_eq!(c.answer(id).unwrap_err().0, tickforge_protocol::message::RejectCode::AlreadyInRoom);
}

#[test]
fn a_resume_takes_the_seat_from_a_half_open_connection() {
    let server = TestServer::start();
    let mut other = connect(&server, Format::Json);
    other.join_or_create("arena");
    let mut old = connect(&server, Format::Bin);
    let first = old.join_or_create("arena");
    old.next_tick();
    // The old connection stays open (as a half-open socket would); the
    // client resumes from a new one.
    let mut new = connect(&server, Format::Bin);
    let again = joined(new.call(old.session.resume_request().unwrap()));
    assert_eq!((again.player_id, again.entity_id), (first.player_id, first.entity_id));
    let (code, reason) = old.wait_close();
    assert_eq!((code, reason.as_str()), (1008, "resumed elsewhere"));
    new.next_tick();
    // The seat is the new connection's: the old one's end does not touch it.
    drop(old);
    for _ in 0..5 {
        new.ack();
        new.next_tick();
    }
    assert_eq!(players_listed(&mut other, &first.room_id.0), 2);
    let m = server.metrics();
    assert_eq!(metric(&m, "tickforge_takeovers_total"), 1);
    assert_eq!(metric(&m, "tickforge_closes_total{reason=\"resumed_elsewhere\",code=\"1008\"}"), 1);
    assert_eq!(metric(&m, "tickforge_seats_held_total"), 0);
}

#[test]
fn a_seat_resumes_from_a_connection_on_the_other_shard() {
    let server = TestServer::with(|c| c.shards = 2);
    let shard_of = |c: &mut Client| match c.call(Request::Hello { token: None, client: None }) {
        Confirm::Welcome { session_id, .. } => session_id.0.split('-').nth(1).unwrap().to_string(),
        other => panic!("{other:?}"),
    };
    let mut player = connect(&server, Format::Bin);
    let first = player.join_or_create("arena");
    let home = first.room_id.0.split('-').nth(1).unwrap().to_string();
    player.next_tick();
    let resume = player.session.resume_request().unwrap();
    drop(player);
    let mut back = None;
    for _ in 0..64 {
        let mut c = connect(&server, Format::Bin);
        if shard_of(&mut c) != home {
            back = Some(c);
            break;
        }
    }
    let mut back = back.expect("a connection on the other shard");
    let again = joined(back.call(resume));
    assert_eq!((again.player_id, again.entity_id), (first.player_id, first.entity_id));
    assert_eq!(back.next_tick().baseline, None);
    assert_eq!(metric(&server.metrics(), "tickforge_handoffs_in_total"), 1);
}

#[test]
fn identities_name_players_in_welcome_and_player_joined() {
    let server = TestServer::with(|c| c.auth = Some(crate::identity::secret()));
    let secret = crate::identity::secret();
    let exp = crate::identity::now() + 600;
    let mut a = connect(&server, Format::Json);
    let welcome =
        a.call(Request::Hello { token: Some(tickforge_server::auth::mint(&secret, "u-1", exp, None)), client: None });
    assert!(matches!(welcome, Confirm::Welcome { user_id: Some(ref u), .. } if u == "u-1"), "{welcome:?}");
    a.join_or_create("arena");
    let mut b = connect(&server, Format::Bin);
    b.call(Request::Hello {
        token: Some(tickforge_server::auth::mint(&secret, "u-2", exp, Some("Ada"))),
        client: None,
    });
    b.join_or_create("arena");
    let (user, name) = a.wait_indication("player_joined", |i| match i {
        Indication::PlayerJoined { user_id, name, .. } => Some((user_id.clone(), name.clone())),
        _ => None,
    });
    assert_eq!((user.as_deref(), name.as_deref()), (Some("u-2"), Some("Ada")));
}
