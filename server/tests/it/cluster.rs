//! The cluster module against a real Redis: several nodes in this process
//! (and one `tickforge` process) see each other's rooms, dead nodes leave,
//! seats are reserved by their owner through Redis, and Redis going away
//! and coming back neither hangs nor breaks a node.

use crate::redis::Redis;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tickforge_protocol::ids::RoomId;
use tickforge_server::cluster::{
    serve_requests, Cluster, ClusterConfig, Health, JsonMap, Refusal, RefuseCode, RequestError, Reservation,
    ReservationBook, ReservationError, RoomRecord, SeatOwner, ShardInbox,
};

/// Fast settings: heartbeats every 100 ms, gone after 1 s.
fn config(redis: &str, name: &str) -> ClusterConfig {
    let mut c = ClusterConfig::new(redis, format!("ws://{name}.test:7700/ws"));
    c.node_id = name.into();
    c.heartbeat_interval = Duration::from_millis(100);
    c.heartbeat_ttl = Duration::from_secs(1);
    c.refresh_interval = Duration::from_millis(100);
    c.flush_interval = Duration::from_millis(20);
    c.request_timeout = Duration::from_secs(2);
    c.io_timeout = Duration::from_millis(500);
    c
}

fn start(redis: &str, name: &str) -> (Cluster, Vec<ShardInbox>) {
    let (cluster, inboxes) = Cluster::start(config(redis, name), 1).expect("cluster starts");
    cluster.set_capacity(100);
    (cluster, inboxes)
}

/// Polls `f` until it holds, failing after `within`.
fn wait_for(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < within, "timed out after {within:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
    t0.elapsed()
}

fn room(cluster: &Cluster, n: u32, players: u32) -> RoomRecord {
    let mut r = RoomRecord::new(RoomId(format!("r-{}-0-{n}", cluster.node_tag())), "arena", 4, 30);
    r.players = players;
    r
}

fn listed(cluster: &Cluster) -> Vec<(String, String, u32)> {
    cluster
        .view()
        .list(None, None)
        .iter()
        .map(|r| (r.node.node_id.clone(), r.room.room_id.0.clone(), r.room.players))
        .collect()
}

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn three_nodes_see_each_others_rooms() {
    let Some(redis) = Redis::start("three_nodes_see_each_others_rooms") else { return };
    let (a, _ia) = start(&redis.url(), "a");
    let (b, _ib) = start(&redis.url(), "b");
    let (c, _ic) = start(&redis.url(), "c");
    wait_for("every node healthy", WAIT, || [&a, &b, &c].iter().all(|n| n.health() == Health::Ok));

    let ra = room(&a, 1, 1);
    let mut rb = room(&b, 1, 3);
    rb.metadata.insert("map".into(), serde_json::json!("dust"));
    a.publish_room(0, ra.clone());
    b.publish_room(0, rb.clone());
    let mut private = room(&c, 9, 0);
    private.private = true;
    c.publish_room(0, private.clone());
    for node in [&a, &b, &c] {
        wait_for("both public rooms listed everywhere", WAIT, || listed(node).len() == 2);
        let view = node.view();
        assert_eq!(view.nodes().count(), 3);
        let row = view.room(&ra.room_id).expect("a's room");
        assert_eq!((row.node.node_id.as_str(), row.node.url.as_str()), ("a", "ws://a.test:7700/ws"));
        assert_eq!(view.room(&private.room_id).unwrap().node.node_id, "c", "private: found by id, not listed");
        // The fullest open room of the cluster is b's, wherever we ask.
        assert_eq!(view.fullest_open("arena", None).unwrap().room.room_id, rb.room_id);
        let dust = serde_json::json!({"map": "dust"}).as_object().unwrap().clone();
        assert_eq!(view.list(Some("arena"), Some(&dust)).len(), 1);
    }

    // A change of player count reaches the others (batched, not per join).
    let mut full = rb.clone();
    full.players = 4;
    b.publish_room(0, full);
    wait_for("b's room full at c", WAIT, || c.view().room(&rb.room_id).is_some_and(|r| r.room.players == 4));
    assert_eq!(c.view().fullest_open("arena", None).unwrap().room.room_id, ra.room_id, "a full room is skipped");
    // Load: c is the least loaded (no players).
    wait_for("loads published", WAIT, || a.view().node("b").is_some_and(|n| n.players == 4));
    assert_eq!(a.view().least_loaded().unwrap().node_id, "c");

    // Removed rooms leave every list.
    a.remove_room(&ra.room_id);
    wait_for("a's room gone at b", WAIT, || b.view().room(&ra.room_id).is_none());

    // A clean shutdown leaves at once (not after the TTL).
    c.shutdown();
    let gone = wait_for("c gone at a", WAIT, || a.view().node("c").is_none());
    assert!(gone < Duration::from_secs(1), "a clean leave should not wait for the TTL: {gone:?}");
    let stats = a.stats();
    assert!(stats.commands > 0 && stats.live_nodes == 2, "{stats:?}");
}

/// The test implementation of the owner side: rooms with seats, a
/// reservation book, and a switch to refuse creating.
#[derive(Default)]
struct Rooms {
    seats: Vec<(RoomId, u32, u32)>,
    book: Option<ReservationBook>,
    created: u32,
    tag: String,
}

#[derive(Clone)]
struct TestOwner(Arc<Mutex<Rooms>>);

impl TestOwner {
    fn new(cluster: &Cluster) -> Self {
        let rooms = Rooms { book: Some(ReservationBook::new(64)), tag: cluster.node_tag(), ..Rooms::default() };
        Self(Arc::new(Mutex::new(rooms)))
    }

    fn add(&self, room_id: &RoomId, max: u32) {
        self.0.lock().unwrap().seats.push((room_id.clone(), 0, max));
    }

    /// A client arrives with a reservation (`join_room`): at `now`.
    fn join(&self, room_id: &RoomId, token: &str, now: Instant) -> Result<(), ReservationError> {
        let mut rooms = self.0.lock().unwrap();
        rooms.book.as_mut().unwrap().redeem(room_id, token, now)?;
        rooms.seats.iter_mut().find(|s| s.0 == *room_id).unwrap().1 += 1;
        Ok(())
    }
}

impl SeatOwner for TestOwner {
    fn reserve(&self, room_id: &RoomId, ttl: Duration) -> Result<Reservation, Refusal> {
        let mut rooms = self.0.lock().unwrap();
        let now = Instant::now();
        let Some(&(_, players, max)) = rooms.seats.iter().find(|s| s.0 == *room_id) else {
            return Err(Refusal::new(RefuseCode::NotFound, format!("no room {room_id}")));
        };
        let book = rooms.book.as_mut().unwrap();
        if players + book.held(room_id, now) >= max {
            return Err(Refusal::new(RefuseCode::RoomFull, format!("room {room_id} has {max} of {max}")));
        }
        book.reserve(room_id, now, ttl)
    }

    fn create(&self, game: &str, _options: &JsonMap) -> Result<RoomId, Refusal> {
        if game != "arena" {
            return Err(Refusal::new(RefuseCode::NotFound, format!("no game {game:?}")));
        }
        let mut rooms = self.0.lock().unwrap();
        rooms.created += 1;
        let id = RoomId(format!("r-{}-0-c{}", rooms.tag, rooms.created));
        rooms.seats.push((id.clone(), 0, 2));
        Ok(id)
    }
}

/// Serves `inbox` with `owner` on a glommio executor of its own, as a shard
/// will; ends when the cluster shuts down.
fn serve_on_glommio(inbox: ShardInbox, owner: TestOwner) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        glommio::LocalExecutorBuilder::default()
            .io_memory(128 * 1024)
            .spawn(move || serve_requests(inbox, owner))
            .unwrap()
            .join()
            .unwrap();
    })
}

#[test]
fn seats_are_reserved_by_their_owner_through_redis() {
    let Some(redis) = Redis::start("seats_are_reserved_by_their_owner_through_redis") else { return };
    let (a, mut inboxes_a) = start(&redis.url(), "a");
    let (b, _ib) = start(&redis.url(), "b");
    let owner = TestOwner::new(&a);
    let arena = room(&a, 1, 0);
    owner.add(&arena.room_id, 2);
    a.publish_room(0, arena.clone());
    let server = serve_on_glommio(inboxes_a.remove(0), owner.clone());
    wait_for("a listed at b", WAIT, || b.view().room(&arena.room_id).is_some() && b.health() == Health::Ok);

    // b asks a for a seat: a's url, the room, a token.
    let seat = futures_lite::future::block_on(b.reserve_on("a", &arena.room_id)).expect("a holds a seat");
    assert_eq!((seat.url.as_str(), &seat.room_id), ("ws://a.test:7700/ws", &arena.room_id));
    // The client joins a with it: once.
    let now = Instant::now();
    assert_eq!(owner.join(&arena.room_id, &seat.reservation, now), Ok(()));
    assert_eq!(owner.join(&arena.room_id, &seat.reservation, now), Err(ReservationError::Used));
    assert_eq!(owner.join(&arena.room_id, &"ab".repeat(16), now), Err(ReservationError::Unknown));
    assert_eq!(owner.join(&arena.room_id, "forged-token", now), Err(ReservationError::Forged));
    a.reservation_redeemed(&seat.reservation);

    // The second seat is held: the room (1 player + 1 held of 2) is full.
    let held = futures_lite::future::block_on(b.reserve_on("a", &arena.room_id)).expect("the last seat");
    let full = futures_lite::future::block_on(b.reserve_on("a", &arena.room_id)).unwrap_err();
    assert!(
        matches!(&full, RequestError::Refused { node, refusal } if node == "a" && refusal.code == RefuseCode::RoomFull),
        "{full:?}"
    );
    assert_eq!(full.code(), RefuseCode::RoomFull);
    // Unused, it expires after 10 s and frees its seat (time is an argument).
    let later = Instant::now() + Duration::from_secs(10);
    assert_eq!(owner.join(&arena.room_id, &held.reservation, later), Err(ReservationError::Expired));
    {
        let mut rooms = owner.0.lock().unwrap();
        assert_eq!(rooms.book.as_mut().unwrap().held(&arena.room_id, later), 0, "the seat is free again");
    }
    // The live reservation is recorded in Redis with its TTL, by its owner.
    let mut redis_conn = redis.client();
    let ttl: i64 =
        redis::cmd("PTTL").arg(format!("tickforge:resv:{}", held.reservation)).query(&mut redis_conn).unwrap();
    assert!((1..=10_000).contains(&ttl), "reservation key TTL {ttl} ms");

    // Unknown room, unknown game, unknown node: refused, not hung.
    let unknown = futures_lite::future::block_on(b.reserve_on("a", &RoomId("r-nope".into()))).unwrap_err();
    assert_eq!(unknown.code(), RefuseCode::NotFound, "{unknown:?}");
    let no_game = futures_lite::future::block_on(b.create_on("a", "chess", &JsonMap::new())).unwrap_err();
    assert_eq!(no_game.code(), RefuseCode::NotFound, "{no_game:?}");
    let no_node = futures_lite::future::block_on(b.reserve_on("zz", &arena.room_id)).unwrap_err();
    assert_eq!(no_node, RequestError::UnknownNode("zz".into()));

    // b asks a to create a room: a seat in a new room of a.
    let created = futures_lite::future::block_on(b.create_on("a", "arena", &JsonMap::new())).expect("a creates");
    assert!(created.room_id.0.starts_with(&format!("r-{}-", a.node_tag())), "{created:?}");
    assert_eq!(owner.join(&created.room_id, &created.reservation, Instant::now()), Ok(()));
    // a asks itself (no Redis round trip): same answer shape.
    let own = futures_lite::future::block_on(a.create_on("a", "arena", &JsonMap::new())).expect("local create");
    assert_eq!(own.url, "ws://a.test:7700/ws");

    let stats = b.stats();
    assert!(stats.requests_ok >= 3 && stats.requests_refused >= 3, "{stats:?}");
    drop((a, b));
    server.join().unwrap();
}

#[test]
fn a_request_to_a_node_that_does_not_answer_times_out() {
    let Some(redis) = Redis::start("a_request_to_a_node_that_does_not_answer_times_out") else { return };
    let (a, _inbox_kept_but_never_served) = start(&redis.url(), "a");
    let mut cfg = config(&redis.url(), "b");
    cfg.request_timeout = Duration::from_millis(300);
    let (b, _ib) = Cluster::start(cfg, 1).unwrap();
    let r = room(&a, 1, 0);
    a.publish_room(0, r.clone());
    wait_for("a listed at b", WAIT, || b.view().room(&r.room_id).is_some() && b.health() == Health::Ok);
    let t0 = Instant::now();
    let err = futures_lite::future::block_on(b.reserve_on("a", &r.room_id)).unwrap_err();
    let waited = t0.elapsed();
    assert!(matches!(err, RequestError::Timeout { ref node, .. } if node == "a"), "{err:?}");
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2), "bounded wait: {waited:?}");
    assert_eq!(b.stats().requests_timed_out, 1);
}

#[test]
fn a_killed_server_leaves_the_listing_within_10_s() {
    let Some(redis) = Redis::start("a_killed_server_leaves_the_listing_within_10_s") else { return };
    // A real tickforge process with default cluster timings, SIGKILLed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickforge"))
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin", "--cluster", &redis.url()])
        .args(["--public-url", "ws://victim.test:7700/ws", "--node-id", "victim"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tickforge starts");
    let mut cfg = config(&redis.url(), "watcher");
    cfg.heartbeat_ttl = ClusterConfig::default().heartbeat_ttl;
    cfg.refresh_interval = ClusterConfig::default().refresh_interval;
    let (watcher, _i) = Cluster::start(cfg, 1).unwrap();
    wait_for("the victim listed", Duration::from_secs(10), || watcher.view().node("victim").is_some());
    child.kill().unwrap();
    let _ = child.wait();
    let gone = wait_for("the victim gone", Duration::from_secs(10), || watcher.view().node("victim").is_none());
    eprintln!("a SIGKILLed node stayed listed {gone:?} after its death");
}

#[test]
fn redis_stopped_and_started_again() {
    let Some(mut redis) = Redis::start("redis_stopped_and_started_again") else { return };
    let (a, _ia) = start(&redis.url(), "a");
    let (b, _ib) = start(&redis.url(), "b");
    let first = room(&a, 1, 2);
    a.publish_room(0, first.clone());
    wait_for("a's room at b", WAIT, || b.view().room(&first.room_id).is_some());

    redis.stop();
    let t = wait_for("a degraded", WAIT, || matches!(a.health(), Health::Degraded(_)));
    let Health::Degraded(why) = a.health() else { unreachable!() };
    assert!(why.contains("Redis"), "the reason names Redis: {why}");
    eprintln!("degraded {t:?} after Redis stopped: {why}");
    // The node keeps working with what it knows, and nothing waits on Redis.
    let t0 = Instant::now();
    let second = room(&a, 2, 1);
    a.publish_room(0, second.clone());
    let err = futures_lite::future::block_on(b.reserve_on("a", &first.room_id)).unwrap_err();
    assert!(t0.elapsed() < Duration::from_millis(100), "no call waits on a lost Redis: {:?}", t0.elapsed());
    assert!(matches!(err, RequestError::Unavailable(_)), "{err:?}");
    wait_for("a's own new room in its view", WAIT, || a.view().room(&second.room_id).is_some());
    // Without Redis no one can vouch for b: it leaves a's view a TTL later.
    wait_for("b dropped from a's view", WAIT, || a.view().node("b").is_none());
    assert!(a.stats().degraded);

    // Redis comes back empty: both rejoin and rewrite their rows.
    redis.restart();
    wait_for("both healthy again", Duration::from_secs(10), || a.health() == Health::Ok && b.health() == Health::Ok);
    wait_for("both of a's rooms at b", WAIT, || {
        let v = b.view();
        v.room(&first.room_id).is_some() && v.room(&second.room_id).is_some()
    });
    let mut conn = redis.client();
    let members: Vec<String> = redis::cmd("SMEMBERS").arg("tickforge:nodes").query(&mut conn).unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
}

#[test]
fn a_node_without_redis_serves_alone_and_says_why() {
    // A port with nothing listening: refused at once, every retry.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (a, _i) = start(&format!("redis://127.0.0.1:{port}"), "a");
    let r = room(&a, 1, 0);
    a.publish_room(0, r.clone());
    wait_for(
        "degraded with a reason",
        WAIT,
        || matches!(a.health(), Health::Degraded(w) if w.contains("cannot reach Redis")),
    );
    wait_for("its own room in its view", WAIT, || a.view().room(&r.room_id).is_some());
    let err = futures_lite::future::block_on(a.reserve_on("b", &r.room_id)).unwrap_err();
    assert!(matches!(err, RequestError::Unavailable(_)), "{err:?}");
    let t0 = Instant::now();
    a.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(3), "shutdown is bounded: {:?}", t0.elapsed());
}

#[test]
fn garbage_in_the_directory_is_skipped_and_counted() {
    let Some(redis) = Redis::start("garbage_in_the_directory_is_skipped_and_counted") else { return };
    let mut conn = redis.client();
    let _: () = redis::cmd("SADD").arg("tickforge:nodes").arg("junk").query(&mut conn).unwrap();
    let _: () = redis::cmd("SET").arg("tickforge:node:junk").arg("{not json").query(&mut conn).unwrap();
    let (a, _i) = start(&redis.url(), "a");
    wait_for("a bad record counted", WAIT, || a.stats().bad_records > 0);
    assert_eq!(a.view().nodes().count(), 1, "only a itself");
    // A garbage record is skipped, not an outage (on a busy host a Redis
    // call may time out once: the node is then healthy again at its next).
    wait_for("a healthy node", WAIT, || a.health() == Health::Ok);
}

#[test]
fn a_lost_redis_is_logged_once_and_the_return_once() {
    use std::io::BufRead as _;
    let Some(mut redis) = Redis::start("a_lost_redis_is_logged_once_and_the_return_once") else { return };
    redis.stop();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tickforge"))
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--no-pin", "--cluster", &redis.url()])
        .args(["--public-url", "ws://lonely.test:7700/ws"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tickforge starts");
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let count = |needle: &str| lines.lock().unwrap().iter().filter(|l| l.contains(needle)).count();
    wait_for("the outage logged", WAIT, || count("cluster degraded") > 0);
    // Several retries (one a second) later, still one line.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(count("cluster degraded"), 1, "{:?}", lines.lock().unwrap());
    redis.restart();
    wait_for("the return logged", Duration::from_secs(10), || count("reachable again") == 1);
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    assert_eq!(count("cluster degraded"), 1);
}
