//! The figures land on delays the fake server injects: the loadgen's
//! latency figures are checked against known answers, within tolerances
//! wide enough for a busy host but far narrower than the biases they rule
//! out (a tick timed when read instead of when it arrived is a good part
//! of a period late; an input timed from when it was sent instead of from
//! its slot, or padded with synthetic samples, breaks the counts).

use crate::fake::{Behaviour, FakeServer};
use std::time::Duration;
use tickforge_loadgen::{LoadConfig, Report};
use tickforge_protocol::Format;

const MS: u64 = 1000;

/// Attempts at a run the loadgen was not starved in (a host busy with
/// other work delays it: it then says so, and its figures include its lag).
const ATTEMPTS: usize = 3;

/// A run of `clients` against `server` that the loadgen kept up with: the
/// figures checked here are the fake's delays, not the loadgen's own lag.
/// After [`ATTEMPTS`] starved runs the test fails, saying the host was too
/// busy.
fn run_on(server: &FakeServer, clients: usize, format: Format) -> Report {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let report = run_once(server, clients, format);
        // Starved: late for its own input slots (a tenth of the period, the
        // report's own rule). Shared timestamps are what some tests provoke.
        let lag_p99 = report.loadgen_lag_us.p99;
        if lag_p99 <= 3_333 {
            return report;
        }
        eprintln!("the loadgen was starved (lag p99 {lag_p99} us); running again");
        server.clear_records();
        last = Some(report);
    }
    let report = last.expect("at least one attempt");
    panic!("the host was too busy to time anything: the loadgen was starved in {ATTEMPTS} runs:\n{}", report.table());
}

fn run_once(server: &FakeServer, clients: usize, format: Format) -> Report {
    let _one = crate::one_run();
    let mut cfg = LoadConfig::default();
    cfg.url = server.url();
    cfg.clients = clients;
    cfg.format = format;
    cfg.connect_rate = 200.0;
    cfg.warmup = Duration::from_millis(500);
    cfg.duration = Duration::from_secs(2);
    let report = tickforge_loadgen::run(cfg).unwrap();
    eprintln!("{}", report.table());
    assert_eq!(report.errors_total, 0, "{}", report.table());
    report
}

/// How late the fake's tick writes went out (p50, p90), µs.
fn write_lateness(server: &FakeServer) -> (u64, u64) {
    let mut late: Vec<u64> = server.writes.lock().unwrap().iter().map(|d| d.as_micros() as u64).collect();
    late.sort_unstable();
    let at = |q: f64| late.get(((late.len() as f64 * q) as usize).min(late.len().saturating_sub(1))).copied();
    (at(0.5).unwrap_or(0), at(0.9).unwrap_or(0))
}

/// Every tick sent 7 ms after its `server_time_us`, each input reflected
/// in a tick sent 20 ms after it arrived.
#[test]
fn tick_and_input_latency_land_on_the_injected_delays() {
    for format in [Format::Bin, Format::Json] {
        let behaviour = Behaviour {
            tick_delay: Some(Duration::from_millis(7)),
            echo_hold: Some(Duration::from_millis(20)),
            ..Behaviour::default()
        };
        let server = FakeServer::start(behaviour);
        let r = run_on(&server, 16, format);
        let (tick, input) = (&r.tick_latency_us, &r.input_latency_us);
        // Ticks: 7 ms, plus how late the fake's write went out (a busy
        // host delays its thread), plus loopback delivery. Timed when read
        // instead, they would be ~17 ms: the reads sit half a period away.
        let (late_p50, late_p90) = write_lateness(&server);
        assert!(tick.count > 500, "{format:?}: {}", r.table());
        assert!(tick.min >= 7 * MS, "{format:?}: tick min {} us", tick.min);
        assert!(tick.p50 <= 8 * MS + late_p50, "{format:?}: tick p50 {} us, writes {late_p50} us late", tick.p50);
        assert!(tick.p90 <= 9 * MS + late_p90, "{format:?}: tick p90 {} us, writes {late_p90} us late", tick.p90);
        assert_eq!(r.ticks_unstamped, 0);
        // Inputs: the hold the fake kept (20 ms, more when its thread ran
        // late), plus the loadgen's lag and two loopback trips.
        let mut held: Vec<u64> = server.holds.lock().unwrap().iter().map(|d| d.as_micros() as u64).collect();
        held.sort_unstable();
        let held_p50 = held[held.len() / 2];
        assert!(input.min >= 20 * MS, "{format:?}: input min {} us", input.min);
        let slack = r.loadgen_lag_us.p50 + 2 * MS;
        assert!(input.p50 <= held_p50 + slack, "{format:?}: input p50 {} us, held {held_p50} us", input.p50);
        // One sample per answered slot, none added: 16 clients x 30 Hz x 2 s.
        assert_eq!(input.count, r.input_slots - r.inputs_unanswered, "{}", r.table());
        assert!(r.input_slots <= 16 * 60 + 16 && r.input_slots >= 16 * 55, "{} slots", r.input_slots);
        assert_eq!(r.inputs_unanswered, 0, "every input is echoed within the drain");
    }
}

/// The handshake is timed from the connect to the 101: a 15 ms answer is
/// 15 ms, not rounded up to a poll interval or a slot. The fake's own view
/// (from its accept to its 101 written; more when its thread ran late)
/// bounds it, give or take the time its accept thread took to run.
#[test]
fn the_handshake_lands_on_the_injected_delay() {
    let server =
        FakeServer::start(Behaviour { handshake_delay: Some(Duration::from_millis(15)), ..Behaviour::default() });
    let r = run_on(&server, 8, Format::Bin);
    let h = &r.handshake_latency_us;
    assert_eq!(h.count, 8);
    let mut fake: Vec<u64> = server.handshakes.lock().unwrap().iter().map(|d| d.as_micros() as u64).collect();
    fake.sort_unstable();
    // The probe's handshake is the fake's first; the clients' are the rest.
    assert_eq!(fake.len(), 9);
    assert!(h.min >= 15 * MS, "handshake min {} us", h.min);
    assert!(h.p50 <= fake[4] + 5 * MS, "handshake p50 {} us, the fake's {} us", h.p50, fake[4]);
}

/// Two ticks written together are read together: counted, with their
/// bound, and still timed near the injected 7 ms (both were taken then).
#[test]
fn ticks_sent_together_share_a_stamp_and_say_so() {
    let behaviour =
        Behaviour { tick_delay: Some(Duration::from_millis(7)), pair_every: Some(6), ..Behaviour::default() };
    let server = FakeServer::start(behaviour);
    let r = run_on(&server, 4, Format::Bin);
    let (_, late_p90) = write_lateness(&server);
    assert!(r.ticks_shared_stamp > 0, "{}", r.table());
    assert!(r.ticks_shared_stamp <= r.state_messages / 5, "{}", r.table());
    assert!(r.shared_stamp_bound_us.count == r.ticks_shared_stamp);
    let p90 = r.tick_latency_us.p90;
    assert!(p90 <= 9 * MS + late_p90, "tick p90 {p90} us, the fake's writes {late_p90} us late");
}

/// Decoding clients check every delta; the others read headers only.
#[test]
fn only_decoding_clients_apply_deltas_and_they_count_failures() {
    for (decode_every, decoders) in [(1, 16), (4, 4), (16, 1)] {
        let _one = crate::one_run();
        let server = FakeServer::start(Behaviour { corrupt_every: Some(10), ..Behaviour::default() });
        let mut cfg = LoadConfig::default();
        cfg.url = server.url();
        cfg.clients = 16;
        cfg.connect_rate = 200.0;
        cfg.warmup = Duration::from_millis(300);
        cfg.duration = Duration::from_secs(1);
        cfg.decode_every = decode_every;
        let r = tickforge_loadgen::run(cfg).unwrap();
        assert_eq!(r.decoding_clients, decoders, "{}", r.table());
        // A broken delta every 10th tick, on each decoding client (the
        // ticks after it fail too until the fake sends a full state).
        assert!(r.errors.delta >= decoders, "--decode-every {decode_every}: {}", r.table());
        assert_eq!(r.errors.protocol, 0, "{}", r.table());
        assert!(r.clients.completed == 16, "{}", r.table());
        // A tick that failed to apply was timed all the same: as many
        // state messages as ticks sent, no gaps.
        assert_eq!(r.missed_ticks, 0, "{}", r.table());
    }
}
