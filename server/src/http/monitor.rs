//! The monitor's admin actions over HTTP (`--admin-token`):
//!
//! - `POST /monitor/rooms/{room_id}/close`: the room closes at its next
//!   tick (`room_closing` "closed by an operator" to its players);
//! - `POST /monitor/rooms/{room_id}/players/{player_id}/disconnect`: that
//!   player's connection closes at the room's next tick (1008
//!   "disconnected by an operator").
//!
//! Each needs `Authorization: Bearer TOKEN`. Answers: 202 (requested, as
//! JSON), 401 without the token or with another, 403 when the server has
//! no admin token (read-only), 404 for an unknown room, player or action,
//! 405 for another method, 429 when too many requests wait for the room.

use super::{error, response, RequestHead};
use crate::shard_state::ShardState;

/// What an action path asks for.
#[derive(Debug, PartialEq, Eq)]
enum Action<'a> {
    Close { room: &'a str },
    Disconnect { room: &'a str, player: u32 },
}

fn parse(path: &str) -> Option<Action<'_>> {
    let rest = path.strip_prefix("/monitor/rooms/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts[..] {
        [room, "close"] if !room.is_empty() => Some(Action::Close { room }),
        [room, "players", player, "disconnect"] if !room.is_empty() => {
            Some(Action::Disconnect { room, player: player.parse().ok()? })
        }
        _ => None,
    }
}

/// Compares without stopping at the first difference, so the time a 401
/// takes says nothing of how much of the token was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Answers a `POST /monitor/...` (the caller checked the method).
pub(crate) fn action(shard: &ShardState, head: &RequestHead) -> Vec<u8> {
    let Some(action) = parse(&head.path) else {
        let why = format!(
            "no such admin action: {} (POST /monitor/rooms/ROOM/close or /monitor/rooms/ROOM/players/ID/disconnect)",
            head.path
        );
        return error(404, &why, &[]);
    };
    let Some(expected) = shard.config().admin_token.as_deref() else {
        return error(403, "admin actions are off: this server was started without --admin-token", &[]);
    };
    let given = head.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    if !given.is_some_and(|g| same(g.as_bytes(), expected.as_bytes())) {
        let why = if given.is_none() {
            "admin actions need the admin token: Authorization: Bearer TOKEN"
        } else {
            "the admin token is not this server's"
        };
        return error(401, why, &[("WWW-Authenticate", "Bearer realm=\"tickforge monitor\"")]);
    }
    let monitor = &shard.shared.monitor;
    let (done, body) = match action {
        Action::Close { room } => (
            monitor.request_close(room, "closed by an operator"),
            serde_json::json!({ "room_id": room, "action": "close", "state": "requested" }),
        ),
        Action::Disconnect { room, player } => (
            monitor.request_disconnect(room, player),
            serde_json::json!({ "room_id": room, "player_id": player, "action": "disconnect", "state": "requested" }),
        ),
    };
    match done {
        Ok(()) => response(202, "application/json", &[], &serde_json::to_vec(&body).unwrap_or_default()),
        Err(e) => error(e.status(), &e.to_string(), &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_paths() {
        assert_eq!(parse("/monitor/rooms/r-0-1/close"), Some(Action::Close { room: "r-0-1" }));
        assert_eq!(
            parse("/monitor/rooms/r-0-1/players/7/disconnect"),
            Some(Action::Disconnect { room: "r-0-1", player: 7 })
        );
        for bad in ["/monitor/rooms//close", "/monitor/rooms/r/players/x/disconnect", "/monitor/rooms/r", "/monitor/x"]
        {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"0p3rator", b"0p3rator"));
        assert!(!same(b"0p3rator", b"0p3ratoR"));
        assert!(!same(b"0p3rator", b"0p3rato"));
    }
}
