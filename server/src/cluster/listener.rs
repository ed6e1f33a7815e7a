//! The listener thread: one blocking `BLPOP` on this node's inbox and
//! replies lists (its own Redis connection, so the writer never waits
//! behind it). A request is handed to the shard that should answer it; a
//! reply fills the waiting request's future.

use super::health::{Counters, Link};
use super::node::Inner;
use super::records::{NodeReply, NodeRequest};
use super::requests::{ReplyTo, RequestError};
use super::writer::{connect, lost, RETRY};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one `BLPOP` blocks: also how long a shutdown may wait for it.
const POP_WAIT: Duration = Duration::from_millis(500);

/// Runs the listener until the node stops.
pub(crate) fn run(inner: &Arc<Inner>) {
    let keys = &inner.keys;
    let inbox = keys.inbox(&inner.node_id);
    let replies = keys.replies(&inner.node_id);
    let mut conn: Option<redis::Connection> = None;
    while !inner.stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            match connect(inner).and_then(|c| {
                // The read may block for the pop's wait plus the I/O bound.
                c.set_read_timeout(Some(POP_WAIT + inner.config.io_timeout)).map_err(|e| e.to_string())?;
                Ok(c)
            }) {
                Ok(c) => {
                    conn = Some(c);
                    inner.health.up(Link::Listener);
                }
                Err(why) => {
                    inner.fail_remote(&why);
                    inner.health.down(Link::Listener, why);
                    pause(inner, RETRY);
                }
            }
            continue;
        };
        Counters::add(&inner.counters.commands, 1);
        Counters::add(&inner.counters.round_trips, 1);
        let popped: redis::RedisResult<Option<(String, String)>> =
            redis::cmd("BLPOP").arg(&inbox).arg(&replies).arg(POP_WAIT.as_secs_f64()).query(c);
        match popped {
            Ok(None) => {}
            Ok(Some((key, value))) if key == inbox => match serde_json::from_str::<NodeRequest>(&value) {
                Ok(r) => inner.dispatch(r.ask, ReplyTo::Node { node: r.from, id: r.id }),
                Err(_) => Counters::add(&inner.counters.bad_records, 1),
            },
            Ok(Some((_, value))) => match serde_json::from_str::<NodeReply>(&value) {
                Ok(r) => {
                    let from = r.from;
                    inner.complete(r.id, r.result.map_err(|refusal| RequestError::Refused { node: from, refusal }));
                }
                Err(_) => Counters::add(&inner.counters.bad_records, 1),
            },
            Err(e) => {
                let why = lost(inner, &e);
                conn = None;
                inner.fail_remote(&why);
                inner.health.down(Link::Listener, why);
                pause(inner, RETRY);
            }
        }
        inner.sweep(Instant::now());
    }
}

/// Sleeps `d`, waking early when the node stops.
fn pause(inner: &Inner, d: Duration) {
    let until = Instant::now() + d;
    while !inner.stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}
