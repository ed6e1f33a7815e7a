//! The loadgen's integration tests, one binary (habit 14).

// A small WebSocket server speaking the contract's room subset, for runs
// before and beside the real server.
mod fake;
// The binary's bad-input paths: exit status 2 and one line, never a hang.
mod cli;
// Whole runs of the library against the fake server.
mod run;
