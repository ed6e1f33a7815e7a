//! Held seats, resume tokens, takeovers and spectators, on a virtual
//! clock; and the property that random drop/resume sequences never leave a
//! seat held twice or lost.

use super::*;
use crate::game::arena::Arena;
use crate::outbox::OutboxItem;
use proptest::prelude::*;
use std::collections::HashMap;
use tickforge_protocol::codec;

const GRACE_US: u64 = 1_000_000;
const TICK_US: u64 = 33_333;

fn room(max_players: u32, max_spectators: u32) -> Room {
    let mut config = RoomConfig::new(30, max_players);
    config.reconnect_grace_us = GRACE_US;
    config.max_spectators = max_spectators;
    Room::new(RoomId("r-0-9".into()), Arc::new(Arena::default()), config, 7).expect("arena takes no options")
}

/// Every message queued in `outbox`, decoded; ticks as their header only.
fn drain(outbox: &Outbox) -> Vec<ServerMsg> {
    let mut out = Vec::new();
    while let Some(item) = outbox.try_next() {
        let (OutboxItem::Control(b) | OutboxItem::Tick(b)) = item;
        if let Ok(msg) = codec::decode_server(outbox.format(), &b) {
            out.push(msg);
        }
    }
    out
}

fn baselines(msgs: &[ServerMsg]) -> Vec<Option<Tick>> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Tick(t) => Some(t.baseline),
            _ => None,
        })
        .collect()
}

#[test]
fn a_dropped_seat_is_held_with_neutral_input_then_resumed_with_a_full_state() {
    let mut room = room(4, 4);
    let a = Outbox::new(Format::Bin, 64);
    let joined = room.join(a.clone(), None).unwrap();
    let token = joined.resume_token.clone();
    let (me, entity) = (joined.player_id, joined.entity_id);
    room.input(me, InputSeq(40), None, tickforge_protocol::message::InputData { move_x: 100, move_y: 0, buttons: 0 });
    room.tick(1_000_000);
    room.ack(me, Tick(1));
    assert!(room.disconnect(SeatKey::Player { player: me, epoch: 0 }, LeaveReason::Disconnected, true));
    assert_eq!((room.player_count(), room.held_count()), (1, 1));
    assert_eq!(room.outboxes().count(), 0, "a held seat has no connection to drive");
    // Neutral input while held.
    assert_eq!(room.players[0].input, room.game.input_schema().neutral());
    room.tick(1_000_000 + TICK_US);
    // Resume on a new connection: same player and entity, a new token.
    let b = Outbox::new(Format::Json, 64);
    assert!(room.resume("0000", b.clone()).is_err(), "an unknown token");
    let (again, token2, key) = room.resume(&token, b.clone()).unwrap();
    assert_eq!((again.player_id, again.entity_id), (me, entity));
    assert_ne!(token2, token);
    assert_eq!(token2.len(), 22);
    assert_eq!(key, SeatKey::Player { player: me, epoch: 1 });
    assert_eq!(room.resume(&token, Outbox::new(Format::Bin, 4)).unwrap_err().0, RejectCode::NotFound, "single use");
    // The next tick is a full state; the input sequence restarted.
    room.input(me, InputSeq(1), None, tickforge_protocol::message::InputData { move_x: -5, move_y: 0, buttons: 0 });
    room.tick(1_000_000 + 2 * TICK_US);
    let msgs = drain(&b);
    assert_eq!(baselines(&msgs), vec![None]);
    assert!(matches!(&msgs[0], ServerMsg::Tick(t) if t.input_seq == InputSeq(1)));
    // The old epoch no longer touches the seat.
    assert!(!room.disconnect(SeatKey::Player { player: me, epoch: 0 }, LeaveReason::Disconnected, true));
    assert!(room.holds(key));
}

#[test]
fn the_grace_frees_the_seat_and_tells_the_others() {
    let mut room = room(4, 4);
    let dropped = room.join(Outbox::new(Format::Json, 64), None).unwrap();
    let token = dropped.resume_token.clone();
    let other = Outbox::new(Format::Json, 64);
    room.join(other.clone(), None).unwrap();
    drain(&other);
    room.disconnect(SeatKey::Player { player: dropped.player_id, epoch: 0 }, LeaveReason::Disconnected, true);
    let start = 5_000_000;
    room.tick(start); // the grace starts here
    room.tick(start + GRACE_US - 1);
    assert_eq!(room.player_count(), 2, "still held just before the grace ends");
    let report = room.tick(start + GRACE_US);
    assert_eq!(report.seats_expired, 1);
    assert_eq!((room.player_count(), room.held_count()), (1, 0));
    let left = drain(&other).into_iter().find_map(|m| match m {
        ServerMsg::Ind { body: Indication::PlayerLeft { player_id, reason } } => Some((player_id, reason)),
        _ => None,
    });
    assert_eq!(left, Some((dropped.player_id, "disconnected".to_owned())));
    assert_eq!(room.resume(&token, Outbox::new(Format::Json, 4)).unwrap_err().0, RejectCode::NotFound, "expired");
    assert!(room.has_free_seat());
}

#[test]
fn no_hold_without_a_grace_when_asked_not_to_or_once_closed() {
    let mut room = room(4, 4);
    let p = room.join(Outbox::new(Format::Bin, 8), None).unwrap();
    assert!(!room.disconnect(
        SeatKey::Player { player: p.player_id, epoch: 0 },
        LeaveReason::Closed("shutting_down"),
        false
    ));
    assert_eq!(room.player_count(), 0);
    room.config.reconnect_grace_us = 0;
    let p = room.join(Outbox::new(Format::Bin, 8), None).unwrap();
    assert!(!room.disconnect(SeatKey::Player { player: p.player_id, epoch: 0 }, LeaveReason::Disconnected, true));
    assert_eq!(room.player_count(), 0);
}

#[test]
fn a_resume_takes_the_seat_from_a_connection_still_open() {
    let mut room = room(4, 4);
    let old = Outbox::new(Format::Bin, 8);
    let p = room.join(old.clone(), None).unwrap();
    let token = p.resume_token.clone();
    let new = Outbox::new(Format::Bin, 8);
    let (_, _, key) = room.resume(&token, new.clone()).unwrap();
    assert_eq!(old.close_reason(), Some(CloseReason::ResumedElsewhere));
    assert_eq!(CloseReason::ResumedElsewhere.code(), 1008);
    assert!(!room.holds(SeatKey::Player { player: p.player_id, epoch: 0 }));
    assert!(room.holds(key));
    assert_eq!(room.outboxes().count(), 1);
    assert!(Rc::ptr_eq(room.outboxes().next().unwrap(), &new));
}

#[test]
fn spectators_are_bounded_get_ticks_and_take_no_seat() {
    let mut room = room(1, 2);
    let player = Outbox::new(Format::Bin, 64);
    room.join(player.clone(), None).unwrap();
    let watchers: Vec<_> = (0..2).map(|_| Outbox::new(Format::Json, 64)).collect();
    let keys: Vec<_> = watchers.iter().map(|w| room.watch(w.clone()).unwrap().1).collect();
    let err = room.watch(Outbox::new(Format::Json, 4)).unwrap_err();
    assert_eq!(err, (RejectCode::RoomFull, "room r-0-9 has 2 of 2 spectators".to_owned()));
    assert_eq!((room.player_count(), room.spectator_count()), (1, 2));
    assert!(!room.has_free_seat(), "spectators do not take the one seat, the player does");
    room.tick(1);
    let first: Vec<_> = watchers.iter().map(|w| baselines(&drain(w))).collect();
    let SeatKey::Spectator { id } = keys[0] else { panic!() };
    room.ack_spectator(id, Tick(1));
    room.tick(2);
    let second: Vec<_> = watchers.iter().map(|w| baselines(&drain(w))).collect();
    assert_eq!((&first[0], &second[0]), (&vec![None], &vec![Some(Tick(1))]), "full state, then deltas on its acks");
    assert_eq!((&first[1], &second[1]), (&vec![None], &vec![None]), "never acked: full states");
    room.unwatch(keys[1]);
    assert_eq!(room.spectator_count(), 1);
    assert!(room.watch(Outbox::new(Format::Json, 4)).is_ok(), "a place freed");
}

/// One step of a random session history.
#[derive(Clone, Debug)]
enum Op {
    /// A new connection joins.
    Join,
    /// Connection `i` (of the live ones, modulo) drops without leaving.
    Drop(usize),
    /// Connection `i` leaves its room.
    Leave(usize),
    /// A new connection resumes seat `i` (of the known ones, modulo) with
    /// its newest token, or with a stale one.
    Resume(usize, bool),
    /// Time passes: `n` ticks.
    Tick(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Join),
        3 => (0usize..16).prop_map(Op::Drop),
        1 => (0usize..16).prop_map(Op::Leave),
        3 => ((0usize..16), any::<bool>()).prop_map(|(i, fresh)| Op::Resume(i, fresh)),
        2 => (1u8..40).prop_map(Op::Tick),
    ]
}

/// What the test knows of one seat: its newest and older tokens, and the
/// connection (index into `conns`) that should hold it.
struct Known {
    newest: String,
    stale: Vec<String>,
    holder: Option<usize>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random joins, drops, leaves, resumes (fresh and stale tokens) and
    /// ticks: after every step each seat is held by at most one connection
    /// and exactly the one the history says, no seat is lost (every seat
    /// the room counts is known, held or within its grace), and a stale
    /// token never takes a seat.
    #[test]
    fn drop_resume_histories_never_hold_a_seat_twice_or_lose_one(ops in proptest::collection::vec(op(), 1..80)) {
        let mut room = room(8, 4);
        let mut now = 1_000_000u64;
        // Live connections: (outbox, seat key).
        let mut conns: Vec<(Rc<Outbox>, Option<SeatKey>)> = Vec::new();
        let mut seats: HashMap<PlayerId, Known> = HashMap::new();
        for op in ops {
            match op {
                Op::Join => {
                    let outbox = Outbox::new(Format::Bin, 1024);
                    if let Ok(joined) = room.join(outbox.clone(), None) {
                        let token = joined.resume_token.clone();
                        conns.push((outbox, Some(SeatKey::Player { player: joined.player_id, epoch: 0 })));
                        seats.insert(joined.player_id, Known { newest: token, stale: Vec::new(), holder: Some(conns.len() - 1) });
                    }
                }
                Op::Drop(i) | Op::Leave(i) if !conns.is_empty() => {
                    let i = i % conns.len();
                    if let Some(key @ SeatKey::Player { player, .. }) = conns[i].1.take() {
                        if room.holds(key) {
                            if matches!(op, Op::Drop(_)) {
                                prop_assert!(room.disconnect(key, LeaveReason::Disconnected, true));
                                seats.get_mut(&player).unwrap().holder = None;
                            } else {
                                prop_assert!(room.leave(player, LeaveReason::Left));
                                seats.remove(&player);
                            }
                        }
                    }
                }
                Op::Resume(i, fresh) if !seats.is_empty() => {
                    let mut ids: Vec<_> = seats.keys().copied().collect();
                    ids.sort_by_key(|p| p.0);
                    let player = ids[i % ids.len()];
                    let known = seats.get_mut(&player).unwrap();
                    let token = if fresh || known.stale.is_empty() { known.newest.clone() } else { known.stale[i % known.stale.len()].clone() };
                    let outbox = Outbox::new(Format::Bin, 1024);
                    match room.resume(&token, outbox.clone()) {
                        Ok((joined, new_token, key)) => {
                            prop_assert_eq!(&token, &known.newest, "a stale token took a seat");
                            prop_assert_eq!(joined.player_id, player);
                            if let Some(old) = known.holder {
                                // Taken over: the old connection is told and loses it.
                                prop_assert_eq!(conns[old].0.close_reason(), Some(CloseReason::ResumedElsewhere));
                                conns[old].1 = None;
                            }
                            known.stale.push(std::mem::replace(&mut known.newest, new_token));
                            conns.push((outbox, Some(key)));
                            known.holder = Some(conns.len() - 1);
                        }
                        Err((code, _)) => {
                            prop_assert_eq!(code, RejectCode::NotFound);
                            prop_assert!(token != known.newest, "the newest token of a known seat was refused");
                        }
                    }
                }
                Op::Tick(n) => {
                    for _ in 0..n {
                        now += TICK_US;
                        room.tick(now);
                        // Every connection reads what it is sent.
                        for (outbox, _) in &conns {
                            let n = outbox.pending().len();
                            outbox.consume(n);
                        }
                    }
                    // Seats past their grace are gone from the room: forget them.
                    seats.retain(|p, _| room.has_player(*p));
                }
                _ => {}
            }
            // The invariants, after every step.
            prop_assert_eq!(room.player_count(), seats.len(), "a seat lost or unknown");
            let held = seats.values().filter(|k| k.holder.is_none()).count();
            prop_assert_eq!(room.held_count(), held);
            for (player, known) in &seats {
                let holders: Vec<usize> = conns.iter().enumerate()
                    .filter(|(_, (_, key))| matches!(key, Some(k @ SeatKey::Player { player: p, .. }) if p == player && room.holds(*k)))
                    .map(|(i, _)| i)
                    .collect();
                prop_assert!(holders.len() <= 1, "seat {:?} held by {:?}", player, holders);
                prop_assert_eq!(holders.first().copied(), known.holder, "seat {:?}", player);
            }
            prop_assert_eq!(room.outboxes().count(), seats.len() - held);
        }
    }
}
