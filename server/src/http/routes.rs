//! What the server answers to a request head: a plain HTTP answer (the
//! page, `/healthz`, `/metrics`, `/rooms`, every refusal with its status
//! and reason), or a WebSocket upgrade that passed the handshake checks.
//! Pure: the runtime writes the bytes and runs the connection.

use super::{error, response, route, RequestHead, Route};
use crate::requests::Session;
use crate::shard_state::{unix_now_us, ShardState};
use crate::ws::{self, Accepted, HandshakePolicy};

/// The answer to one request head.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Write these bytes (a whole HTTP answer with this status), then close.
    Plain { bytes: Vec<u8>, status: u16 },
    /// Write the `101` answer and run a WebSocket connection.
    Upgrade {
        /// What the handshake negotiated.
        accepted: Accepted,
        /// The `/echo` route (Autobahn runs only).
        echo: bool,
        /// The session the connection starts with.
        session: Session,
    },
    /// `POST /matchmake`: read a body of `len` bytes, then answer it with
    /// [`crate::cluster::serve::matchmake`].
    Matchmake {
        /// The body's length (`Content-Length`, at most [`super::MAX_BODY`]).
        len: usize,
    },
}

/// The length of a request's body, from `Content-Length`.
///
/// # Errors
/// Why the body is refused (answered 400): chunked, no length, a bad one,
/// over [`super::MAX_BODY`].
fn body_length(head: &RequestHead) -> Result<usize, String> {
    if head.header("Transfer-Encoding").is_some() {
        return Err("a chunked body is not accepted: send Content-Length".into());
    }
    let Some(value) = head.header("Content-Length") else {
        return Err("POST /matchmake needs a JSON body with Content-Length".into());
    };
    let len: usize = value.parse().map_err(|_| format!("bad Content-Length: {value:?}"))?;
    if len > super::MAX_BODY {
        return Err(format!("body of {len} bytes is over the {} byte limit", super::MAX_BODY));
    }
    Ok(len)
}

impl Answer {
    fn plain(bytes: Vec<u8>) -> Self {
        let status = std::str::from_utf8(&bytes[9..12]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        Self::Plain { bytes, status }
    }
}

/// Answers `head`; `have_permit` is false when the shard is at its
/// connection limit (an upgrade is then answered 503).
pub(crate) fn answer(shard: &ShardState, head: &RequestHead, have_permit: bool) -> Answer {
    let mut answer = answer_any(shard, head, have_permit);
    // A HEAD gets the head of what a GET would get, whatever its status
    // (RFC 9110 9.3.2): never a body, not even a refusal's.
    if head.method == "HEAD" {
        if let Answer::Plain { bytes, .. } = &mut answer {
            if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                bytes.truncate(end + 4);
            }
        }
    }
    answer
}

fn answer_any(shard: &ShardState, head: &RequestHead, have_permit: bool) -> Answer {
    let config = shard.config();
    let Some(route) = route(&head.path, config.echo) else {
        return Answer::plain(error(404, &format!("no such path: {}", head.path), &[]));
    };
    if route == Route::Matchmake {
        if head.method != "POST" {
            let why = format!("{} is not allowed on /matchmake: use POST", head.method);
            return Answer::plain(error(405, &why, &[("Allow", "POST")]));
        }
        if shard.refusing() {
            return Answer::plain(error(503, "draining: shutting down", &[]));
        }
        return match body_length(head) {
            Ok(len) => Answer::Matchmake { len },
            Err(why) => Answer::plain(error(400, &why, &[])),
        };
    }
    let is_ws = matches!(route, Route::Ws | Route::Echo);
    if route == Route::MonitorAction {
        if head.method != "POST" {
            let why = format!("{} is not allowed on {}: use POST", head.method, head.path);
            return Answer::plain(error(405, &why, &[("Allow", "POST")]));
        }
        return Answer::plain(super::monitor::action(shard, head));
    }
    let head_only = !is_ws && head.method == "HEAD";
    if !is_ws && head.method != "GET" && !head_only {
        let why = format!("{} is not allowed on {}: use GET", head.method, head.path);
        return Answer::plain(error(405, &why, &[("Allow", "GET, HEAD")]));
    }
    let ok = |ty: &str, body: &[u8]| response(200, ty, &[], body);
    let reply = match route {
        Route::Page => match super::web::asset(&head.path) {
            Some((ty, bytes)) => ok(ty, bytes),
            None => error(404, &format!("no such path: {}", head.path), &[]),
        },
        Route::Healthz if shard.refusing() => error(503, "draining: shutting down", &[]),
        Route::Healthz => match shard.cluster.as_ref().map(|k| k.cluster.health()) {
            Some(crate::cluster::Health::Degraded(why)) => {
                ok("text/plain; charset=utf-8", format!("degraded: {why}\n").as_bytes())
            }
            _ => ok("text/plain; charset=utf-8", b"ok\n"),
        },
        Route::Metrics => {
            let mut text = shard.shared.metrics.render();
            if let Some(k) = &shard.cluster {
                text.push_str(&k.cluster.stats().render());
            }
            ok("text/plain; version=0.0.4; charset=utf-8", text.as_bytes())
        }
        Route::Rooms => {
            let rooms = shard.list_rooms(None, None);
            let body = serde_json::to_vec(&serde_json::json!({ "rooms": rooms })).unwrap_or_default();
            ok("application/json", &body)
        }
        Route::Matchmake => error(405, "use POST", &[("Allow", "POST")]),
        Route::MonitorJson => {
            let shared = &shard.shared;
            let view = shared.monitor.render(unix_now_us(), &shared.metrics, env!("CARGO_PKG_VERSION"));
            ok("application/json", &serde_json::to_vec(&view).unwrap_or_default())
        }
        Route::MonitorAction => unreachable!("answered above"),
        Route::Ws | Route::Echo => {
            if shard.refusing() {
                error(503, "server shutting down", &[])
            } else if !have_permit {
                let limit = config.connections_per_shard();
                error(503, &format!("server full: {limit} connections on this shard"), &[])
            } else {
                let policy = HandshakePolicy {
                    allowed_origins: &config.allowed_origins,
                    token: config.token.as_deref(),
                    negotiate: route == Route::Ws,
                };
                match ws::check_upgrade(head, &policy) {
                    Err(refused) => error(refused.status, &refused.why, &refused.headers),
                    Ok(accepted) => {
                        let query_token = head.query_param("token");
                        // check_upgrade compared a shared token already.
                        let authed = (config.token.is_none() || query_token.is_some()) && config.auth.is_none();
                        let mut session = Session { authed, ..Session::default() };
                        if let (Some(secret), Some(token)) = (&config.auth, query_token) {
                            let now = unix_now_us() / 1_000_000;
                            match crate::auth::verify(secret, &token, now) {
                                Ok(identity) => {
                                    session.authed = true;
                                    session.user = Some(identity);
                                }
                                Err(e) => return Answer::plain(error(403, &format!("token refused: {e}"), &[])),
                            }
                        }
                        return Answer::Upgrade { accepted, echo: route == Route::Echo, session };
                    }
                }
            }
        }
    };
    Answer::plain(reply)
}
