//! The loadgen against three real servers forming a cluster on a real
//! Redis: `--url` names one node, `join_or_create` spreads the clients over
//! all three through redirects, which the loadgen follows.

use crate::redis::Redis;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use tickforge_loadgen::LoadConfig;
use tickforge_server::cluster::{ClusterConfig, Health};
use tickforge_server::{ServerConfig, ServerHandle};

/// Node `name` on a free port of 127.0.0.1, in the cluster of `redis`.
fn node(redis: &Redis, name: &str) -> ServerHandle {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut config = ServerConfig::default();
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.shards = 1;
    config.pin = false;
    let mut cluster = ClusterConfig::new(redis.url(), format!("ws://127.0.0.1:{port}/ws"));
    cluster.node_id = name.into();
    cluster.heartbeat_interval = Duration::from_millis(200);
    cluster.heartbeat_ttl = Duration::from_secs(2);
    cluster.refresh_interval = Duration::from_millis(200);
    cluster.flush_interval = Duration::from_millis(50);
    config.cluster = Some(cluster);
    tickforge_server::start(config).expect("node starts")
}

/// Players in the node's rooms, from its metrics.
fn players(node: &ServerHandle) -> u64 {
    let text = node.metrics().render();
    text.lines()
        .find_map(|l| l.strip_prefix("tickforge_players{shard=\"0\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no players gauge in\n{text}"))
}

#[test]
fn clients_sent_to_one_node_are_redirected_over_three_and_play() {
    let _one = crate::one_run();
    let Some(redis) = Redis::start("clients_sent_to_one_node_are_redirected_over_three") else { return };
    let nodes = [node(&redis, "a"), node(&redis, "b"), node(&redis, "c")];
    let t0 = Instant::now();
    while !nodes
        .iter()
        .all(|n| n.cluster().unwrap().health() == Health::Ok && n.cluster().unwrap().view().nodes().count() == 3)
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "the nodes did not see each other");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut cfg = LoadConfig::default();
    cfg.url = format!("ws://{}/ws", nodes[0].local_addr());
    cfg.clients = 48;
    cfg.join_or_create = true;
    cfg.players_per_room = 1;
    cfg.connect_rate = 100.0;
    cfg.warmup = Duration::from_millis(500);
    cfg.duration = Duration::from_secs(2);
    let report = tickforge_loadgen::run(cfg).unwrap();
    eprintln!("{}", report.table());
    assert_eq!(report.errors_total, 0, "{}", report.table());
    assert_eq!(report.clients.joined, 48);
    assert_eq!(report.clients.completed, 48);
    assert!(report.clients.redirected > 0, "{}", report.table());
    assert_eq!(report.join_redirected_latency_us.count, report.clients.redirected);
    assert!(report.state_messages > 0);
    // Spread: every node holds players, and the loadgen joined them all.
    let counts: Vec<u64> = nodes.iter().map(players).collect();
    eprintln!("players per node: {counts:?}");
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    assert_eq!(counts.iter().sum::<u64>(), 48);
    assert_eq!(counts[1] + counts[2], report.clients.redirected, "the redirected clients play on B and C");
}
