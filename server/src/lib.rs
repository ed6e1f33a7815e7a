//! tickforge's server library (the server engineer replaces this map).
pub mod game;
pub mod handoff;
pub mod outbox;
pub mod room;
pub mod schedule;
