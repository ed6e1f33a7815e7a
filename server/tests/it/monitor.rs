//! The operator's monitor over real sockets: `GET /monitor`,
//! `GET /monitor.json` (shards, rooms with their players, tick figures and
//! bytes out, the last minute's closes and rejects, the history), and the
//! admin actions: 403 on a server without `--admin-token`; with one, 401
//! without the token or with another, 404 for what does not exist, 405 for
//! another method, and with it a room closed (`room_closing`) and a player
//! disconnected (1008), each through the room's next tick.

use crate::util::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use tickforge_protocol::codec::Format;
use tickforge_protocol::message::{Indication, Request};

const TOKEN: &str = "0p3rator-t0ken";

fn json(server: &TestServer) -> Value {
    let answer = http(server.addr, "GET", "/monitor.json", "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type").as_deref(), Some("application/json"));
    serde_json::from_str(&answer.body).expect("monitor.json is JSON")
}

/// Polls `/monitor.json` until `pred` holds.
fn until(server: &TestServer, what: &str, mut pred: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = json(server);
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what} did not show in /monitor.json within {WAIT:?}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn room<'a>(v: &'a Value, id: &str) -> Option<&'a Value> {
    v["rooms"].as_array()?.iter().find(|r| r["room_id"] == id)
}

fn post(server: &TestServer, path: &str, token: Option<&str>) -> HttpAnswer {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    http(server.addr, "POST", path, &format!("{auth}Content-Length: 0\r\n"))
}

#[test]
fn the_monitor_shows_shards_rooms_and_figures() {
    let server = TestServer::with(|c| c.shards = 2);
    let page = http(server.addr, "GET", "/monitor", "");
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.contains("/monitor.js"));
    assert_eq!(http(server.addr, "HEAD", "/monitor.json", "").status, 200);
    assert_eq!(http(server.addr, "POST", "/monitor.json", "Content-Length: 0\r\n").status, 405);

    let empty = json(&server);
    assert_eq!(empty["shards"].as_array().map(Vec::len), Some(2));
    assert_eq!(empty["rooms"], serde_json::json!([]));
    assert_eq!(empty["server"]["admin"], false);

    let mut a = connect(&server, Format::Bin);
    let joined = a.join_or_create("arena");
    let mut b = connect(&server, Format::Json);
    b.call(Request::JoinRoom { room_id: joined.room_id.clone(), reservation: None });
    // A reject, counted in the last minute.
    let mut c = connect(&server, Format::Json);
    c.call_rej(Request::JoinRoom { room_id: tickforge_protocol::ids::RoomId("r-9-9".into()), reservation: None });
    for _ in 0..5 {
        a.next_tick();
        a.ack();
        b.next_tick();
        b.ack();
    }
    let id = joined.room_id.0.clone();
    // Rates and percentiles need two samples (one every 2 s).
    let v = until(&server, "the room with its bytes and tick figures", |v| {
        room(v, &id).is_some_and(|r| {
            r["players"] == 2 && r["bytes_out_per_s"].as_f64().unwrap_or(0.0) > 0.0 && r["tick_p99_us"].is_u64()
        })
    });
    let r = room(&v, &id).unwrap();
    assert_eq!(r["game"], "arena");
    assert_eq!(r["max_players"], 8);
    assert_eq!(r["tick_hz"], 30);
    assert!(r["tick"].as_u64().unwrap() > 5);
    assert_eq!(r["player_ids"].as_array().map(Vec::len), Some(2));
    assert!(r["tick_p50_us"].as_u64().unwrap() <= r["tick_p99_us"].as_u64().unwrap());
    let players: i64 = v["shards"].as_array().unwrap().iter().map(|s| s["players"].as_i64().unwrap()).sum();
    assert_eq!(players, 2);
    let connections: i64 = v["shards"].as_array().unwrap().iter().map(|s| s["connections"].as_i64().unwrap()).sum();
    assert!(connections >= 3, "{connections}");
    assert!(v["shards"][0]["cpu_busy"].as_f64().is_some());
    assert_eq!(v["totals"]["players"], 2);
    let not_found = v["last_minute"]["rejects"].as_array().unwrap().iter().find(|r| r["code"] == "not_found").unwrap();
    assert_eq!(not_found["count"], 1);
    let samples = v["history"]["samples"].as_array().unwrap();
    assert!(samples.len() >= 2);
    assert!(samples.iter().any(|s| s["players"] == 2));
}

#[test]
fn admin_actions_are_refused_without_an_admin_token() {
    let server = TestServer::start();
    let mut a = connect(&server, Format::Bin);
    let joined = a.join_or_create("arena");
    let path = format!("/monitor/rooms/{}/close", joined.room_id.0);
    let off = post(&server, &path, Some(TOKEN));
    assert_eq!(off.status, 403);
    assert!(off.body.contains("--admin-token"), "{}", off.body);
    a.next_tick();
}

#[test]
fn admin_actions_close_rooms_and_disconnect_players_with_the_token() {
    let server = TestServer::with(|c| c.admin_token = Some(TOKEN.into()));
    assert_eq!(json(&server)["server"]["admin"], true);
    let mut a = connect(&server, Format::Bin);
    let joined = a.join_or_create("arena");
    let mut b = connect(&server, Format::Json);
    let b_joined = match b.call(Request::JoinRoom { room_id: joined.room_id.clone(), reservation: None }) {
        tickforge_protocol::message::Confirm::Joined(j) => j,
        other => panic!("{other:?}"),
    };
    let id = joined.room_id.0.clone();
    until(&server, "both players", |v| room(v, &id).is_some_and(|r| r["players"] == 2));
    let close = format!("/monitor/rooms/{id}/close");
    let kick = format!("/monitor/rooms/{id}/players/{}/disconnect", b_joined.player_id.0);

    let none = post(&server, &close, None);
    assert_eq!(none.status, 401);
    assert!(none.header("www-authenticate").unwrap().starts_with("Bearer"));
    assert!(none.body.contains("Authorization: Bearer"), "{}", none.body);
    assert_eq!(post(&server, &close, Some("not-the-token")).status, 401);
    assert_eq!(http(server.addr, "GET", &close, "").status, 405);
    assert_eq!(post(&server, "/monitor/rooms/r-9-9/close", Some(TOKEN)).status, 404);
    assert_eq!(post(&server, &format!("/monitor/rooms/{id}/players/999/disconnect"), Some(TOKEN)).status, 404);
    assert_eq!(post(&server, &format!("/monitor/rooms/{id}/explode"), Some(TOKEN)).status, 404);
    // Nothing happened: both still play.
    a.next_tick();
    b.next_tick();

    let done = post(&server, &kick, Some(TOKEN));
    assert_eq!(done.status, 202, "{}", done.body);
    let answer: Value = serde_json::from_str(&done.body).unwrap();
    assert_eq!(answer["state"], "requested");
    assert_eq!(b.wait_close(), (1008, "disconnected by an operator".to_owned()));
    let left = a.wait_indication("player_left", |i| match i {
        Indication::PlayerLeft { player_id, reason } => Some((*player_id, reason.clone())),
        _ => None,
    });
    assert_eq!(left, (b_joined.player_id, "disconnected by an operator".to_owned()));
    // The seat went with the connection (no reconnect grace holds it): its
    // resume token is void.
    let mut back = connect(&server, Format::Json);
    let resume = Request::Resume { room_id: joined.room_id.clone(), resume_token: b_joined.resume_token.clone() };
    assert_eq!(back.call_rej(resume), tickforge_protocol::message::RejectCode::NotFound);
    let v = until(&server, "one player left", |v| room(v, &id).is_some_and(|r| r["players"] == 1));
    let kicked = v["last_minute"]["closes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason"] == "disconnected_by_operator")
        .unwrap();
    assert_eq!((kicked["code"].as_u64(), kicked["count"].as_u64()), (Some(1008), Some(1)));

    // A seat the reconnect grace holds (its connection dropped) is freed at
    // once too.
    let c_joined = match back.call(Request::JoinRoom { room_id: joined.room_id.clone(), reservation: None }) {
        tickforge_protocol::message::Confirm::Joined(j) => j,
        other => panic!("{other:?}"),
    };
    drop(back);
    a.wait_indication("player_disconnected", |i| match i {
        Indication::PlayerDisconnected { player_id } if *player_id == c_joined.player_id => Some(()),
        _ => None,
    });
    let held = format!("/monitor/rooms/{id}/players/{}/disconnect", c_joined.player_id.0);
    assert_eq!(post(&server, &held, Some(TOKEN)).status, 202);
    let left = a.wait_indication("player_left", |i| match i {
        Indication::PlayerLeft { player_id, reason } => Some((*player_id, reason.clone())),
        _ => None,
    });
    assert_eq!(left, (c_joined.player_id, "disconnected by an operator".to_owned()));
    until(&server, "one player again", |v| room(v, &id).is_some_and(|r| r["players"] == 1));

    assert_eq!(post(&server, &close, Some(TOKEN)).status, 202);
    let reason = a.wait_indication("room_closing", |i| match i {
        Indication::RoomClosing { reason } => Some(reason.clone()),
        _ => None,
    });
    assert_eq!(reason, "closed by an operator");
    until(&server, "the room gone", |v| room(v, &id).is_none());
    assert_eq!(post(&server, &close, Some(TOKEN)).status, 404, "a closed room is gone");
}
