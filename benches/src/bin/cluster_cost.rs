//! The cluster directory's cost and a dead node's time in the listing,
//! measured against a real Redis with the production timings
//! (`ClusterConfig::default()`: heartbeat 1 s, TTL 5 s, refresh 1 s, flush
//! 200 ms).
//!
//! ```text
//! d=$(mktemp -d); url=$(scripts/redis.sh start $d)
//! cargo run -p tickforge-benches --bin cluster_cost -- --redis $url
//! scripts/redis.sh stop $d
//! ```
//!
//! Cost: `--nodes` in-process nodes, each with `--players` players in rooms
//! of `--per-room` seats (three quarters full), and `--churn` players per second per node leaving one
//! room and joining another (two row changes each), plus one room replaced
//! every 10 s. After a warm-up, the figures over `--seconds`: commands and
//! round trips per node as the module counts them, and Redis's own count of
//! commands processed and bytes in and out, divided by the nodes.
//!
//! Dead node: this binary started again as a child node, SIGKILLed once it
//! is listed; the time until a watching node's view drops it, `--deaths`
//! times.

use anyhow::{bail, Context as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tickforge_protocol::ids::RoomId;
use tickforge_server::cluster::{Cluster, ClusterConfig, RoomRecord};

struct Opts {
    redis: String,
    nodes: usize,
    players: u32,
    per_room: u32,
    churn: u32,
    seconds: u64,
    deaths: usize,
}

fn parse() -> anyhow::Result<Result<Opts, String>> {
    let mut o = Opts { redis: String::new(), nodes: 3, players: 1000, per_room: 8, churn: 50, seconds: 30, deaths: 5 };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--redis" => o.redis = v()?,
            "--nodes" => o.nodes = v()?.parse()?,
            "--players" => o.players = v()?.parse()?,
            "--per-room" => o.per_room = v()?.parse()?,
            "--churn" => o.churn = v()?.parse()?,
            "--seconds" => o.seconds = v()?.parse()?,
            "--deaths" => o.deaths = v()?.parse()?,
            "--node" => return Ok(Err(v()?)),
            other => bail!("unknown argument {other}"),
        }
    }
    if o.redis.is_empty() {
        bail!("--redis redis://HOST:PORT is required (scripts/redis.sh start DIR prints one)");
    }
    if o.per_room == 0 || o.nodes == 0 {
        bail!("--per-room and --nodes must be at least 1");
    }
    Ok(Ok(o))
}

fn node(redis: &str, id: &str) -> anyhow::Result<Cluster> {
    let mut c = ClusterConfig::new(redis, format!("ws://{id}.bench:7700/ws"));
    c.node_id = id.into();
    let (cluster, _inboxes) = Cluster::start(c, 1)?;
    cluster.set_capacity(8192);
    Ok(cluster)
}

fn redis_info(conn: &mut redis::Connection) -> anyhow::Result<(u64, u64, u64)> {
    let text: String = redis::cmd("INFO").arg("stats").query(conn)?;
    let field = |name: &str| -> u64 {
        text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok()).unwrap_or(0)
    };
    Ok((field("total_commands_processed"), field("total_net_input_bytes"), field("total_net_output_bytes")))
}

/// A tiny deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n.max(1))) as u32
    }
}

/// When the measured window began: the clock, each node's commands and
/// round trips, and Redis's counters.
type Start = (Instant, Vec<u64>, Vec<u64>, (u64, u64, u64));

fn cost(o: &Opts) -> anyhow::Result<()> {
    // Rooms three-quarters full, so players can move between them.
    let rooms_per_node = (o.players * 4).div_ceil(o.per_room * 3).max(1);
    let nodes: Vec<Cluster> = (0..o.nodes).map(|i| node(&o.redis, &format!("n{i}"))).collect::<Result<_, _>>()?;
    // Each node's rooms, filled to `players` in all.
    let mut tables: Vec<Vec<RoomRecord>> = nodes
        .iter()
        .map(|n| {
            (0..rooms_per_node)
                .map(|r| {
                    let mut rec = RoomRecord::new(RoomId(format!("r-{}-0-{r}", n.node_tag())), "arena", o.per_room, 30);
                    // Spread evenly: room r gets its share of the players.
                    rec.players = (o.players * (r + 1)) / rooms_per_node - (o.players * r) / rooms_per_node;
                    rec
                })
                .collect()
        })
        .collect();
    for (n, table) in nodes.iter().zip(&tables) {
        for r in table {
            n.publish_room(0, r.clone());
        }
    }
    let mut conn = redis::Client::open(o.redis.as_str())?.get_connection_with_timeout(Duration::from_secs(2))?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let step = Duration::from_millis(10);
    let warmup = Duration::from_secs(5);
    let t0 = Instant::now();
    let mut measured: Option<Start> = None;
    let mut next = t0;
    let mut steps: u64 = 0;
    let mut next_id = rooms_per_node;
    let churn_per_step = f64::from(o.churn) * step.as_secs_f64();
    let mut owed = vec![0.0f64; o.nodes];
    loop {
        let now = Instant::now();
        if measured.is_none() && now >= t0 + warmup {
            let s: Vec<_> = nodes.iter().map(Cluster::stats).collect();
            measured = Some((
                now,
                s.iter().map(|s| s.commands).collect(),
                s.iter().map(|s| s.round_trips).collect(),
                redis_info(&mut conn)?,
            ));
        }
        if let Some((start, ..)) = &measured {
            if now >= *start + Duration::from_secs(o.seconds) {
                break;
            }
        }
        for (i, (n, table)) in nodes.iter().zip(tables.iter_mut()).enumerate() {
            owed[i] += churn_per_step;
            while owed[i] >= 1.0 {
                owed[i] -= 1.0;
                // One player leaves a room and joins another.
                let from = rng.below(table.len() as u32) as usize;
                let to = rng.below(table.len() as u32) as usize;
                if table[from].players > 0 && table[to].players < table[to].max_players && from != to {
                    table[from].players -= 1;
                    table[to].players += 1;
                    n.publish_room(0, table[from].clone());
                    n.publish_room(0, table[to].clone());
                }
            }
            // One room replaced every 10 s (disposed of, another created).
            if steps % 1000 == (i as u64 * 97) % 1000 && steps > 0 {
                let victim = rng.below(table.len() as u32) as usize;
                n.remove_room(&table[victim].room_id);
                let players = table[victim].players;
                let mut fresh =
                    RoomRecord::new(RoomId(format!("r-{}-0-{next_id}", n.node_tag())), "arena", o.per_room, 30);
                next_id += 1;
                fresh.players = players;
                n.publish_room(0, fresh.clone());
                table[victim] = fresh;
            }
        }
        steps += 1;
        next += step;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let (start, cmds0, rts0, info0) = measured.expect("measured");
    let secs = start.elapsed().as_secs_f64();
    let info1 = redis_info(&mut conn)?;
    let stats: Vec<_> = nodes.iter().map(Cluster::stats).collect();
    let per_node = |f: &dyn Fn(usize) -> u64| (0..o.nodes).map(f).sum::<u64>() as f64 / o.nodes as f64 / secs;
    let cmds = per_node(&|i| stats[i].commands - cmds0[i]);
    let rts = per_node(&|i| stats[i].round_trips - rts0[i]);
    let n = o.nodes as f64;
    // Redis counts our INFO calls too (2): left out.
    let redis_cmds = (info1.0 - info0.0 - 2) as f64 / n / secs;
    let bytes_in = (info1.1 - info0.1) as f64 / n / secs;
    let bytes_out = (info1.2 - info0.2) as f64 / n / secs;
    let listed = nodes[0].view().list(None, None).len();
    println!(
        "| {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {listed} |",
        o.nodes,
        o.players,
        rooms_per_node,
        o.churn,
        secs,
        cmds,
        rts,
        redis_cmds,
        bytes_in / 1024.0,
        bytes_out / 1024.0
    );
    for n in &nodes {
        n.shutdown();
    }
    Ok(())
}

fn deaths(o: &Opts) -> anyhow::Result<()> {
    let watcher = node(&o.redis, "watcher")?;
    let exe = std::env::current_exe()?;
    let mut times = Vec::new();
    for k in 0..o.deaths {
        let id = format!("victim-{k}");
        let mut child = Command::new(&exe)
            .args(["--redis", &o.redis, "--node", &id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let t = Instant::now();
        while watcher.view().node(&id).is_none() {
            if t.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                bail!("{id} never listed");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Die at a random point of the heartbeat period.
        std::thread::sleep(Duration::from_millis(250 + 173 * k as u64 % 1000));
        child.kill()?;
        let killed = Instant::now();
        let _ = child.wait();
        while watcher.view().node(&id).is_some() {
            if killed.elapsed() > Duration::from_secs(30) {
                bail!("{id} still listed after 30 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        times.push(killed.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let list: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
    println!(
        "dead node listed for (s): min {:.2}, median {:.2}, max {:.2} over {} kills: {}",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        times.len(),
        list.join(", ")
    );
    watcher.shutdown();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match parse()? {
        Err(id) => {
            // Node mode: a bare node that heartbeats until it is killed.
            let redis = std::env::args().skip_while(|a| a != "--redis").nth(1).context("--redis")?;
            let _n = node(&redis, &id)?;
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        Ok(o) => {
            println!("| nodes | players per node | rooms per node | churn (players/s/node) | seconds | commands/s per node (client) | round trips/s per node | commands/s per node (Redis INFO) | KiB/s in per node | KiB/s out per node | rooms listed |");
            println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
            cost(&o)?;
            if o.deaths > 0 {
                deaths(&o)?;
            }
            Ok(())
        }
    }
}
