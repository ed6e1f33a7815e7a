//! tickforge's wire protocol, sans-IO: no sockets, no clocks, no threads,
//! no async. Bytes and times go in; bytes, events and typed errors come out.
//!
//! # Layout
//! - [`ids`]: `Tick`, `PlayerId`, `EntityId`, `InputSeq`... and their overflow rules.
//! - [`message`]: every message of the public contract (CONTRACT.md).
//! - [`codec`]: the two wire forms, `tickforge.v1.bin` and `tickforge.v1.json`.
//! - [`error`]: decode errors and close reasons, mapped to the contract's
//!   reject codes and RFC 6455 close codes in one place.
//! - [`value`]: the contract's bounded value (options, metadata, game messages).
//! - [`schema`]: a game's entity fields, types and quantization.
//! - [`input`]: a game's input fields, and `input.data` in both forms.
//! - [`snapshot`]: a room's quantized state at a tick, and the ring of
//!   recent ones.
//! - [`delta`]: spawned / updated / removed between two snapshots, in the
//!   compact binary blob and the readable JSON object.
//! - [`session`]: the client-side state machine.
//!
//! # Example
//! ```
//! use tickforge_protocol::codec::{self, Format};
//! use tickforge_protocol::message::{ClientMsg, Request};
//! use tickforge_protocol::ids::RequestId;
//!
//! let msg = ClientMsg::Req { id: RequestId(7), body: Request::JoinOrCreate { game: "arena".into(), options: None } };
//! let mut json = Vec::new();
//! codec::encode_client(Format::Json, &msg, &mut json).unwrap();
//! assert_eq!(json, br#"{"type":"req","id":7,"body":{"type":"join_or_create","game":"arena"}}"#);
//! assert_eq!(codec::decode_client(Format::Json, &json, codec::DEFAULT_MAX_MESSAGE), Ok(msg));
//! ```
#![warn(missing_docs)]

pub mod codec;
pub mod delta;
pub mod error;
pub mod ids;
pub mod input;
pub mod message;
pub mod schema;
pub mod session;
pub mod snapshot;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
pub mod value;
mod varint;

pub use codec::Format;
pub use error::{CloseReason, DecodeError, EncodeError};
pub use session::ClientSession;
