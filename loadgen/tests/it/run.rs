//! Whole runs of the library against the fake server.

use crate::fake::{Behaviour, FakeServer};
use std::time::Duration;
use tickforge_loadgen::LoadConfig;
use tickforge_protocol::Format;

fn config(url: String, clients: usize, format: Format) -> LoadConfig {
    let mut cfg = LoadConfig::default();
    cfg.url = url;
    cfg.clients = clients;
    cfg.format = format;
    cfg.connect_rate = 200.0;
    cfg.warmup = Duration::from_millis(300);
    cfg.duration = Duration::from_secs(1);
    // Every tick, so that a slow host still yields samples.
    cfg.full_state_every = 1;
    cfg
}

#[test]
fn rooms_fill_exactly_and_every_tick_applies() {
    for format in [Format::Bin, Format::Json] {
        let _one = crate::one_run();
        let server = FakeServer::start(Behaviour::default());
        let report = tickforge_loadgen::run(config(server.url(), 20, format)).unwrap();
        eprintln!("{}", report.table());
        assert_eq!(report.errors_total, 0, "{format:?}: {}", report.table());
        assert_eq!(report.clients.joined, 20);
        assert_eq!(report.clients.completed, 20);
        assert!(report.state_messages > 0);
        assert!(report.input_latency_us.count > 0);
        assert!(report.full_state_samples > 0);
        assert!(report.delta_ratio > 0.0 && report.delta_ratio < 1.0, "{}", report.table());
        let mut seats: Vec<(u32, u32)> = server.rooms.lock().unwrap().values().copied().collect();
        seats.sort_unstable();
        // 20 clients at 8 per room: two full rooms and one of 4, each with 8 seats.
        assert_eq!(seats.len(), 3);
        assert!(seats.iter().all(|&(max, _)| max == 8));
    }
}

#[test]
fn dropped_ticks_are_counted_as_missed() {
    let _one = crate::one_run();
    let server = FakeServer::start(Behaviour { drop_every: Some(10), ..Behaviour::default() });
    let report = tickforge_loadgen::run(config(server.url(), 4, Format::Bin)).unwrap();
    assert!(report.missed_ticks > 0, "{}", report.table());
    assert_eq!(report.errors.delta, 0);
}

#[test]
fn source_addresses_are_bound() {
    let _one = crate::one_run();
    let server = FakeServer::start(Behaviour::default());
    let mut cfg = config(server.url(), 8, Format::Bin);
    cfg.source_ips = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
    let report = tickforge_loadgen::run(cfg).unwrap();
    assert_eq!(report.errors_total, 0, "{}", report.table());
    assert_eq!(report.clients.joined, 8);
}
