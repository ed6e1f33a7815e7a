//! WebSocket: the RFC 6455 opening handshake checked against the contract
//! ([`handshake`]), and the framing around tungstenite's sans-IO
//! `WebSocketContext` ([`wire`]): the receive pipe it parses client frames
//! from, and the header writer for the server's own data frames.

pub mod handshake;
pub mod wire;

pub use handshake::{check_upgrade, switching_protocols, Accepted, HandshakePolicy, Refused};
pub use wire::{server_context, websocket_config, write_frame_header, Pipe, Wire};
