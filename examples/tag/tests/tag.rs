//! `tag` tested two ways: its rooms tick by tick in the game harness (no
//! sockets), and its own binary over a real socket.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tickforge_example_tag::{Tag, REACH};
use tickforge_protocol::ids::EntityId;
use tickforge_protocol::message::{Confirm, Request};
use tickforge_protocol::session::Event;
use tickforge_protocol::value::{Value, ValueMap};
use tickforge_protocol::{ClientSession, Format};
use tickforge_server::game::GameHarness;

/// The runner of `id`: (x, y, it).
fn runner(h: &GameHarness, id: u32) -> (f64, f64, bool) {
    let e = h.entity(EntityId(id)).expect("a runner");
    (e.get("x").unwrap(), e.get("y").unwrap(), e.get("it") == Some(1.0))
}

#[test]
fn it_chases_tags_and_the_room_says_who_is_it() {
    let mut h = GameHarness::builder(Arc::new(Tag)).seed(7).build().unwrap();
    let (a, b) = (h.join().unwrap(), h.join().unwrap());
    assert_eq!(h.metadata().get("it"), Some(&Value::from(a.0)), "the first runner is it");
    // a runs at b, steering each tick, until b is it.
    for _ in 0..30 * 20 {
        h.tick();
        if !runner(&h, a.0).2 {
            break;
        }
        let ((ax, ay, _), (bx, by, _)) = (runner(&h, a.0), runner(&h, b.0));
        let toward = |d: f64| if d.abs() <= 1.0 { 0 } else { (d.signum() * 127.0) as i32 };
        h.input_named(a, &[("dx", toward(bx - ax)), ("dy", toward(by - ay))]).unwrap();
    }
    let ((ax, ay, a_it), (bx, by, b_it)) = (runner(&h, a.0), runner(&h, b.0));
    assert!(!a_it && b_it, "b was tagged");
    assert!((ax - bx).hypot(ay - by) <= REACH + 10.0);
    assert_eq!(h.metadata().get("it"), Some(&Value::from(b.0)));
    let tagged: Vec<_> = h.events(b).into_iter().filter(|(n, _)| n == "tagged").collect();
    assert_eq!(tagged.len(), 1);
    assert_eq!(tagged[0].1.get("who"), Some(&Value::from(b.0)));
    // When it leaves, another runner is it.
    h.leave(b);
    assert_eq!(h.metadata().get("it"), Some(&Value::from(a.0)));
}

#[test]
fn options_shouts_and_refusals() {
    let speed: ValueMap = [("speed", 900)].into_iter().collect();
    let (code, reason) = GameHarness::builder(Arc::new(Tag)).options(speed).build().unwrap_err();
    assert_eq!((code.as_str(), reason.as_str()), ("refused", "speed is 50..=400"));
    let mut h = GameHarness::new(Arc::new(Tag)).unwrap();
    let (a, b) = (h.join().unwrap(), h.join().unwrap());
    assert_eq!(h.message(a, "shout", Value::from("here!")), Ok(Value::Null));
    assert_eq!(h.message(a, "shout", Value::Int(3)).unwrap_err().1, "shout a short string");
    assert_eq!(h.message(a, "jump", Value::Null).unwrap_err().0.as_str(), "unsupported");
    h.tick();
    let shouts: Vec<_> = h.events(b).into_iter().filter(|(n, _)| n == "shout").collect();
    assert_eq!(shouts[0].1.get("text"), Some(&Value::from("here!")));
    assert!(h.events(a).iter().all(|(n, _)| n != "shout"), "not back to the shouter");
}

/// The example's own binary serves tag (and the built-in games) over a
/// real socket, and stops on SIGTERM with status 0.
#[test]
fn the_binary_serves_tag_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tag"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the tag binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("tag: listening on ").expect("the address line").to_owned();
    let addr = url.trim_start_matches("ws://").trim_end_matches("/ws").to_owned();

    let stream = TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).expect("handshake");
    let mut session = ClientSession::new(Format::Json);
    let mut out = Vec::new();
    let options: ValueMap = [("speed", 200)].into_iter().collect();
    session.request(Request::JoinOrCreate { game: "tag".into(), options: Some(options) }, &mut out);
    ws.send(tungstenite::Message::text(String::from_utf8(out).unwrap())).unwrap();
    let mut joined = None;
    let mut ticks = 0;
    while ticks < 3 {
        let msg = ws.read().expect("a message within 10 s");
        session.handle_message(msg.into_data().as_ref()).unwrap();
        while let Some(event) = session.poll_event() {
            match event {
                Event::Confirmed { body: Confirm::Joined(j), .. } => joined = Some(j),
                Event::Tick(_) => ticks += 1,
                _ => {}
            }
        }
    }
    let joined = joined.expect("joined before the ticks");
    assert_eq!(joined.game, "tag");
    assert_eq!(joined.input_schema.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["dx", "dy"]);
    let me = session.state().unwrap().get(joined.entity_id).expect("my runner");
    assert_eq!(me.values[2], 1, "the only runner is it");

    // SAFETY: a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
