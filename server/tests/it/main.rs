//! tickforge-server's integration tests: one binary, a real server on port
//! 0 in this process, real sockets, both subprotocols.

mod redis;
mod util;

/// Every bad-input path: decode errors, frame types, sizes, rates, tokens.
mod bad_input;
/// The `tickforge` binary: flags, SIGTERM.
mod binary;
/// The cluster module against a real Redis: views, reservations, outages.
mod cluster;
/// Three `tickforge` processes and a real Redis: listing, redirects, seat
/// reservations, join_or_create across nodes, a killed node, a lost Redis.
mod cluster_nodes;
/// `--config FILE`: flags from TOML, bad keys and values.
mod config_file;
/// Games beyond arena: games registered by tests, the built-in `lines`,
/// options, metadata and filters, game messages and events, their bounds.
mod games;
/// HTTP routes and statuses; handshake refusals.
mod http;
/// Signed identities: every refused token, `?token=`, the minting script.
mod identity;
/// The JavaScript client's cross-language corpus (clients/js reads it).
mod js_corpus;
/// Slow clients, keepalive, graceful shutdown, empty-room disposal.
mod lifecycle;
/// The operator's monitor: /monitor.json and the admin actions.
mod monitor;
/// Findings of the fuzzers and fault scripts (RELIABILITY.md), one test each.
mod regression;
/// Reconnection: held seats, resume, takeover, grace expiry, drain.
mod resume;
/// Requests, rooms, ticks, inputs, acks and deltas, in both formats.
mod rooms;
/// Several shards: the directory and the hand-off of a connection.
mod shards;
/// Spectators: watch_room, the bound, no input effect, counts.
mod spectators;
/// The binary at start: a port in use, bind errors, logs on a pipe and a terminal.
mod start;
/// TLS: wss and https with real clients, dropped handshakes, reloads.
mod tls;
