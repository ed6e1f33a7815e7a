//! Three real `tickforge` processes and a real Redis: rooms listed by every
//! node, joins redirected with seat reservations, `join_or_create` across
//! nodes, a SIGKILLed node and a lost Redis.

use crate::redis::Redis;
use crate::util::{connect_to, http, Client, WAIT};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use tickforge_protocol::codec::Format;
use tickforge_protocol::ids::RoomId;
use tickforge_protocol::message::{Confirm, Joined, RejectCode, Request};

/// One `tickforge` process in the cluster, killed on drop.
struct Node {
    addr: SocketAddr,
    child: Child,
}

impl Node {
    /// Starts node `name` (one shard) on a free port with fast directory
    /// timings and returns once it reaches Redis.
    fn start(redis: &Redis, name: &str) -> Self {
        Self::with(redis, name, &["--cluster-heartbeat", "200ms", "--cluster-ttl", "2s", "--cluster-refresh", "200ms"])
    }

    /// As [`Node::start`], with `extra` flags instead of the fast timings.
    fn with(redis: &Redis, name: &str, extra: &[&str]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tickforge"));
        cmd.args(["--listen", &addr.to_string(), "--shards", "1", "--no-pin", "--cluster", &redis.url()])
            .args(["--public-url", &format!("ws://{addr}/ws"), "--node-id", name])
            .args(["--cluster-flush", "50ms"])
            .args(extra);
        crate::redis::quiet_child_of_this_test(&mut cmd);
        let child = cmd.spawn().expect("tickforge starts");
        let node = Self { addr, child };
        wait_for(&format!("{name} healthy"), WAIT, || node.healthz() == "ok");
        node
    }

    /// The `/healthz` body, trimmed ("" while it does not answer).
    fn healthz(&self) -> String {
        match std::net::TcpStream::connect(self.addr) {
            Ok(_) => http(self.addr, "GET", "/healthz", "").body.trim().to_owned(),
            Err(_) => String::new(),
        }
    }

    /// `ws://` address of this node, as the redirects name it.
    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The room ids `/rooms` lists, with their players.
    fn rooms(&self) -> Vec<(String, u64)> {
        let answer = http(self.addr, "GET", "/rooms", "");
        assert_eq!(answer.status, 200, "{answer:?}");
        let v: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        v["rooms"]
            .as_array()
            .expect("a rooms array")
            .iter()
            .map(|r| (r["room_id"].as_str().unwrap().to_owned(), r["players"].as_u64().unwrap()))
            .collect()
    }

    fn lists(&self, room: &RoomId) -> bool {
        self.rooms().iter().any(|(id, _)| *id == room.0)
    }

    fn client(&self) -> Client {
        connect_to(self.addr, "/ws", Some(Format::Json)).expect("handshake")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it holds, failing after `within`; returns how long it took.
fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    t0.elapsed()
}

fn joined(c: Confirm) -> Joined {
    match c {
        Confirm::Joined(j) => j,
        other => panic!("expected joined, got {other:?}"),
    }
}

/// The redirect's (url, room, reservation).
fn redirect(c: Confirm) -> (String, RoomId, String) {
    match c {
        Confirm::Redirect { url, room_id, reservation } => (url, room_id, reservation),
        other => panic!("expected a redirect, got {other:?}"),
    }
}

fn create(c: &mut Client, max_players: u32) -> Joined {
    joined(c.call(Request::CreateRoom {
        game: "arena".into(),
        max_players: Some(max_players),
        tick_hz: None,
        private: false,
        options: None,
    }))
}

fn join_with(c: &mut Client, room: &RoomId, reservation: Option<&str>) -> Result<Confirm, (RejectCode, String)> {
    let id = c.request(Request::JoinRoom { room_id: room.clone(), reservation: reservation.map(str::to_owned) });
    c.answer(id)
}

fn three(redis: &Redis) -> [Node; 3] {
    [Node::start(redis, "a"), Node::start(redis, "b"), Node::start(redis, "c")]
}

#[test]
fn a_room_on_a_is_listed_by_b_and_c_and_a_join_at_b_is_redirected_and_plays() {
    let Some(redis) = Redis::start("a_room_on_a_is_listed_by_b_and_c") else { return };
    let [a, b, c] = three(&redis);
    let mut owner = a.client();
    let room = create(&mut owner, 4).room_id;
    wait_for("A's room listed by B and C", WAIT, || b.lists(&room) && c.lists(&room));
    // list_rooms over WebSocket too, on C.
    let mut at_c = c.client();
    match at_c.call(Request::ListRooms { game: Some("arena".into()), filter: None }) {
        Confirm::RoomList { rooms } => assert!(rooms.iter().any(|r| r.room_id == room), "{rooms:?}"),
        other => panic!("{other:?}"),
    }

    // Joined at B: redirected to A with a reservation, then plays there.
    let mut player = b.client();
    let (url, to_room, reservation) =
        redirect(player.call(Request::JoinRoom { room_id: room.clone(), reservation: None }));
    assert_eq!((url.as_str(), &to_room), (a.url().as_str(), &room));
    assert_eq!(reservation.len(), 32);
    let mut player = a.client();
    let j = joined(join_with(&mut player, &room, Some(&reservation)).expect("the reservation is honoured"));
    assert_eq!(j.room_id, room);
    let t1 = player.next_tick().tick;
    let t2 = player.next_tick().tick;
    assert!(t2 > t1, "ticking: {t1} then {t2}");
    wait_for("two players listed at C", WAIT, || c.rooms().contains(&(room.0.clone(), 2)));

    // Reused, forged (not a token) and unknown (a token never issued): not_found.
    let mut other = a.client();
    for (what, token) in [("reused", reservation.as_str()), ("forged", "let-me-in"), ("unknown", &"0".repeat(32))] {
        let (code, reason) = join_with(&mut other, &room, Some(token)).expect_err(what);
        assert_eq!(code, RejectCode::NotFound, "{what}: {reason}");
        eprintln!("{what}: {reason}");
    }
    // A reservation presented at a node that does not hold the room.
    let (code, _) = join_with(&mut at_c, &room, Some(&reservation)).expect_err("not C's room");
    assert_eq!(code, RejectCode::NotFound);
    // A room no node has.
    let (code, _) = join_with(&mut at_c, &RoomId("r-nowhere-0-1".into()), None).expect_err("no such room");
    assert_eq!(code, RejectCode::NotFound);
    // The room still has free seats and takes a plain join at A.
    joined(join_with(&mut other, &room, None).expect("a free seat"));
}

#[test]
fn join_or_create_fills_rooms_across_nodes_before_creating() {
    let Some(redis) = Redis::start("join_or_create_fills_rooms_across_nodes_before_creating") else { return };
    let [a, b, c] = three(&redis);
    // Rooms of 3 seats.
    let mut first = a.client();
    let room = create(&mut first, 3).room_id;
    wait_for("A's room at B and C", WAIT, || b.lists(&room) && c.lists(&room));

    // At B and at C: both sent to A's room, which fills.
    let mut players = vec![first];
    for node in [&b, &c] {
        let mut p = node.client();
        let (url, to_room, reservation) =
            redirect(p.call(Request::JoinOrCreate { game: "arena".into(), options: None }));
        assert_eq!((url, &to_room), (a.url(), &room));
        let mut p = a.client();
        joined(join_with(&mut p, &room, Some(&reservation)).unwrap());
        players.push(p);
    }
    assert!(a.rooms().contains(&(room.0.clone(), 3)));
    wait_for("the full room at B", WAIT, || b.rooms().contains(&(room.0.clone(), 3)));

    // Full everywhere: a new room, not on A (the loaded node), and B's
    // next join_or_create goes to it.
    let mut p = b.client();
    let new_room = match p.call(Request::JoinOrCreate { game: "arena".into(), options: None }) {
        Confirm::Joined(j) => j.room_id,
        Confirm::Redirect { url, room_id, reservation } => {
            assert_eq!(url, c.url(), "a new room goes to a node with no players");
            let mut q = c.client();
            joined(join_with(&mut q, &room_id, Some(&reservation)).unwrap());
            players.push(q);
            room_id
        }
        other => panic!("{other:?}"),
    };
    assert_ne!(new_room, room);
    wait_for("the new room listed at A", WAIT, || a.lists(&new_room));
    let mut again = a.client();
    match again.call(Request::JoinOrCreate { game: "arena".into(), options: None }) {
        Confirm::Redirect { room_id, .. } => assert_eq!(room_id, new_room, "the open room, not a third"),
        other => panic!("expected a redirect to the open room, got {other:?}"),
    }
    let total: usize = [&a, &b, &c].iter().map(|n| n.rooms().len()).max().unwrap();
    assert_eq!(total, 2, "two rooms in the cluster");
}

#[test]
fn a_reservation_holds_its_seat_for_10_s_then_expires() {
    let Some(redis) = Redis::start("a_reservation_holds_its_seat_for_10_s_then_expires") else { return };
    let a = Node::start(&redis, "a");
    let b = Node::start(&redis, "b");
    let mut owner = a.client();
    let room = create(&mut owner, 2).room_id;
    wait_for("A's room at B", WAIT, || b.lists(&room));
    let mut p = b.client();
    let t0 = Instant::now();
    let (_, _, reservation) = redirect(p.call(Request::JoinRoom { room_id: room.clone(), reservation: None }));
    // One player and one reserved seat: full for everyone else.
    let mut other = a.client();
    let (code, reason) = join_with(&mut other, &room, None).expect_err("the seat is held");
    assert_eq!(code, RejectCode::RoomFull, "{reason}");
    assert!(reason.contains("reserved"), "{reason}");
    let mut third = b.client();
    let (code, _) = join_with(&mut third, &room, None).expect_err("no seat to reserve either");
    assert_eq!(code, RejectCode::RoomFull);
    // After 10 s the seat is free again and the reservation is refused.
    wait_for("the seat freed", Duration::from_secs(15), || {
        // Well under the request rate limit.
        std::thread::sleep(Duration::from_millis(250));
        join_with(&mut other, &room, None).is_ok()
    });
    let freed = t0.elapsed();
    assert!(freed >= Duration::from_secs(10), "held for 10 s: freed after {freed:?}");
    eprintln!("a reserved seat was freed {freed:?} after the redirect");
    let mut late = a.client();
    let (code, reason) = join_with(&mut late, &room, Some(&reservation)).expect_err("expired");
    assert_eq!(code, RejectCode::NotFound);
    assert!(reason.contains("expired"), "{reason}");
}

#[test]
fn a_sigkilled_node_leaves_b_s_list_within_10_s_while_b_s_players_tick() {
    let Some(redis) = Redis::start("a_sigkilled_node_leaves_b_s_list_within_10_s") else { return };
    // The default timings here: the contract's bound holds with them.
    let mut a = Node::with(&redis, "a", &[]);
    let b = Node::with(&redis, "b", &[]);
    let c = Node::with(&redis, "c", &[]);
    let mut at_a = a.client();
    let a_room = create(&mut at_a, 4).room_id;
    let mut at_b = b.client();
    let b_room = create(&mut at_b, 4).room_id;
    wait_for("A's room at B and C", WAIT, || b.lists(&a_room) && c.lists(&a_room));
    a.kill();
    let t0 = Instant::now();
    let mut last_tick = at_b.next_tick().tick;
    while b.lists(&a_room) {
        assert!(t0.elapsed() < Duration::from_secs(10), "A's room still listed at B after 10 s");
        // B's own player keeps ticking meanwhile.
        let t = at_b.next_tick().tick;
        assert!(t > last_tick);
        last_tick = t;
    }
    let gone = t0.elapsed();
    eprintln!("A's room left B's list {gone:?} after SIGKILL");
    assert!(b.lists(&b_room));
    wait_for("A's room gone from C", Duration::from_secs(10), || !c.lists(&a_room));
    // A join of A's room now finds nothing.
    let mut p = c.client();
    let (code, _) = join_with(&mut p, &a_room, None).expect_err("A is gone");
    assert_eq!(code, RejectCode::NotFound);
}

#[test]
fn redis_stopped_and_started_again_nodes_keep_serving_and_rejoin() {
    let Some(mut redis) = Redis::start("redis_stopped_and_started_again_nodes_keep_serving") else { return };
    let [a, b, c] = three(&redis);
    let mut at_a = a.client();
    let a_room = create(&mut at_a, 4).room_id;
    wait_for("A's room at B", WAIT, || b.lists(&a_room));

    redis.stop();
    wait_for("A degraded", WAIT, || a.healthz().starts_with("degraded: "));
    let health = a.healthz();
    assert!(health.contains("Redis"), "{health}");
    let metrics = http(a.addr, "GET", "/metrics", "").body;
    assert!(metrics.contains("tickforge_cluster_degraded 1\n"), "{metrics}");
    // A's player keeps ticking; new players are served by the node they reach.
    let t1 = at_a.next_tick().tick;
    let t2 = at_a.next_tick().tick;
    assert!(t2 > t1);
    let t0 = Instant::now();
    let mut at_b = b.client();
    let j = joined(at_b.call(Request::JoinOrCreate { game: "arena".into(), options: None }));
    assert!(t0.elapsed() < Duration::from_secs(3), "no wait on a lost Redis: {:?}", t0.elapsed());
    assert!(b.lists(&j.room_id), "B's own room is listed");
    // A join of A's room at C now: the redirect cannot be arranged.
    let mut at_c = c.client();
    let (code, reason) = join_with(&mut at_c, &a_room, None).expect_err("no redirect without Redis");
    assert!(matches!(code, RejectCode::Overloaded | RejectCode::NotFound), "{code:?}: {reason}");

    redis.restart();
    for n in [&a, &b, &c] {
        wait_for("healthy again", Duration::from_secs(15), || n.healthz() == "ok");
    }
    wait_for("A's and B's rooms at C", WAIT, || c.lists(&a_room) && c.lists(&j.room_id));
    let mut at_c = c.client();
    let (url, _, reservation) = redirect(at_c.call(Request::JoinRoom { room_id: a_room.clone(), reservation: None }));
    assert_eq!(url, a.url());
    let mut p = a.client();
    joined(join_with(&mut p, &a_room, Some(&reservation)).unwrap());
}

#[test]
fn a_reservation_at_a_server_without_a_cluster_is_not_found() {
    let server = crate::util::TestServer::start();
    let mut c = crate::util::connect(&server, Format::Json);
    let room = c.join_or_create("arena").room_id;
    let mut d = crate::util::connect(&server, Format::Json);
    for token in ["rsv", &"a".repeat(32)] {
        let (code, reason) = join_with(&mut d, &room, Some(token)).expect_err("no reservations here");
        assert_eq!(code, RejectCode::NotFound, "{reason}");
    }
    joined(join_with(&mut d, &room, None).expect("the seat is free"));
}

/// `POST /matchmake` with `body` (and its Content-Length).
fn matchmake(node: &Node, body: &str) -> crate::util::HttpAnswer {
    let request = format!(
        "POST /matchmake HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    crate::util::http_raw(node.addr, request.as_bytes())
}

/// A 200 answer's (url, room, reservation).
fn seat(answer: &crate::util::HttpAnswer) -> (String, RoomId, String) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.header("Content-Type").as_deref(), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
    let text = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}")).to_owned();
    (text("url"), RoomId(text("room_id")), text("reservation"))
}

#[test]
fn post_matchmake_answers_a_seat_of_the_cluster_and_refuses_bad_bodies() {
    let Some(redis) = Redis::start("post_matchmake_answers_a_seat_of_the_cluster") else { return };
    let a = Node::start(&redis, "a");
    let b = Node::start(&redis, "b");
    let mut owner = a.client();
    let room = create(&mut owner, 4).room_id;
    wait_for("A's room at B", WAIT, || b.lists(&room));

    // By game, at B: the open room on A; by room, at B: that room.
    for body in [r#"{"game":"arena"}"#.to_owned(), format!(r#"{{"room_id":"{room}"}}"#)] {
        let (url, to_room, reservation) = seat(&matchmake(&b, &body));
        assert_eq!((url, &to_room), (a.url(), &room), "{body}");
        let mut p = a.client();
        joined(join_with(&mut p, &room, Some(&reservation)).expect("the reservation is honoured"));
    }
    // At A, for its own room: a seat on A.
    let (url, _, reservation) = seat(&matchmake(&a, &format!(r#"{{"room_id":"{room}"}}"#)));
    assert_eq!(url, a.url());
    let mut p = a.client();
    joined(join_with(&mut p, &room, Some(&reservation)).unwrap());

    // Bad bodies: 400 with a text body saying why.
    let bad = [
        ("not JSON", "arena"),
        ("empty object", "{}"),
        ("both", &format!(r#"{{"game":"arena","room_id":"{room}"}}"#)),
        ("unknown field", r#"{"game":"arena","mode":"x"}"#),
        ("wrong type", r#"{"game":7}"#),
    ];
    for (what, body) in bad {
        let answer = matchmake(&b, body);
        assert_eq!(answer.status, 400, "{what}: {answer:?}");
        assert!(answer.body.starts_with("bad body"), "{what}: {}", answer.body);
    }
    let raw = |request: &str| crate::util::http_raw(b.addr, request.as_bytes());
    let no_length = raw("POST /matchmake HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(no_length.status, 400);
    assert!(no_length.body.contains("Content-Length"), "{}", no_length.body);
    let big = raw("POST /matchmake HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    assert_eq!(big.status, 400);
    assert!(big.body.contains("limit"), "{}", big.body);
    let chunked = raw("POST /matchmake HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_eq!(chunked.status, 400);
    let get = http(b.addr, "GET", "/matchmake", "");
    assert_eq!(get.status, 405);
    assert_eq!(get.header("Allow").as_deref(), Some("POST"));
    // Unknown game or room: 404.
    for body in [r#"{"game":"chess"}"#, r#"{"room_id":"r-nowhere-0-1"}"#] {
        let answer = matchmake(&b, body);
        assert_eq!(answer.status, 404, "{body}: {answer:?}");
        assert!(!answer.body.trim().is_empty());
    }
}

#[test]
fn post_matchmake_without_capacity_or_cluster_is_503() {
    let Some(redis) = Redis::start("post_matchmake_without_capacity_or_cluster_is_503") else { return };
    // One node of two connections, taken by two players in a full room.
    let a = Node::with(&redis, "a", &["--max-connections", "2"]);
    // The start-up probes' connections end first.
    std::thread::sleep(Duration::from_millis(500));
    let mut owner = a.client();
    let room = create(&mut owner, 2).room_id;
    let mut second = a.client();
    joined(join_with(&mut second, &room, None).unwrap());
    wait_for("the room listed", WAIT, || a.rooms().contains(&(room.0.clone(), 2)));
    std::thread::sleep(Duration::from_millis(1500));
    let answer = matchmake(&a, r#"{"game":"arena"}"#);
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains("capacity"), "{}", answer.body);
    let answer = matchmake(&a, &format!(r#"{{"room_id":"{room}"}}"#));
    assert_eq!(answer.status, 503, "a full room: {answer:?}");

    let server = crate::util::TestServer::start();
    let answer = crate::util::http_raw(
        server.addr,
        b"POST /matchmake HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n{\"game\":\"arena\"}",
    );
    assert_eq!(answer.status, 503);
    assert!(answer.body.contains("--cluster"), "{}", answer.body);
}

#[test]
fn join_or_create_across_nodes_matches_options() {
    use tickforge_protocol::value::ValueMap;
    let Some(redis) = Redis::start("join_or_create_across_nodes_matches_options") else { return };
    let a = Node::start(&redis, "a");
    let b = Node::start(&redis, "b");
    let mode = |m: &str| -> Option<ValueMap> { Some([("mode", m)].into_iter().collect()) };
    let mut owner = a.client();
    let duel = joined(owner.call(Request::JoinOrCreate { game: "arena".into(), options: mode("duel") })).room_id;
    wait_for("A's duel room at B", WAIT, || b.lists(&duel));
    // Same options at B: sent to A's room.
    let mut p = b.client();
    let (url, room, _) = redirect(p.call(Request::JoinOrCreate { game: "arena".into(), options: mode("duel") }));
    assert_eq!((url, room), (a.url(), duel.clone()));
    // Other options (or none): not A's duel room.
    for options in [mode("ffa"), None] {
        let mut q = b.client();
        match q.call(Request::JoinOrCreate { game: "arena".into(), options }) {
            Confirm::Joined(j) => assert_ne!(j.room_id, duel),
            Confirm::Redirect { room_id, .. } => assert_ne!(room_id, duel),
            other => panic!("{other:?}"),
        }
    }
}
