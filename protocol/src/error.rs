//! Errors and outcomes with their contract mapping, in one place: decode
//! errors to reject codes and close codes, close reasons to RFC 6455 codes.

use crate::codec::Format;
use crate::ids::RequestId;
use crate::message::RejectCode;
use thiserror::Error;

/// Why a received message could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is over the size limit.
    #[error("message of {size} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A request of a type this server does not know.
    #[error("unknown request type {name:?}")]
    UnsupportedRequest {
        /// The request's id.
        id: RequestId,
        /// The type as sent (`#N` for a binary variant index).
        name: Box<str>,
    },
    /// Anything else that is not a valid message; `id` when the message was
    /// a request whose id could still be read.
    #[error("malformed message: {detail}")]
    Malformed {
        /// The request's id, when recoverable.
        id: Option<RequestId>,
        /// What was wrong.
        detail: Box<str>,
    },
}

impl DecodeError {
    /// The `rej` this error earns, when it names a request: `(id, code)`.
    /// `None` means answer with an `error` indication instead.
    #[must_use]
    pub fn reject(&self) -> Option<(RequestId, RejectCode)> {
        match self {
            Self::UnsupportedRequest { id, .. } => Some((*id, RejectCode::Unsupported)),
            Self::Malformed { id: Some(id), .. } => Some((*id, RejectCode::BadRequest)),
            Self::Malformed { id: None, .. } | Self::TooLarge { .. } => None,
        }
    }

    /// The close code when this error (or, for malformed messages, a run of
    /// them) ends the connection: 1009 for size, 1007 otherwise.
    #[must_use]
    pub fn close_code(&self) -> u16 {
        match self {
            Self::TooLarge { .. } => 1009,
            Self::UnsupportedRequest { .. } | Self::Malformed { .. } => 1007,
        }
    }
}

/// Why a message could not be written.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An `input` whose data is held in the other wire form: input data
    /// is written per form from its schema ([`crate::input::InputSchema::encode`]),
    /// so one form's data cannot be rewritten in the other.
    #[error("input data held for {held:?} cannot be written as {format:?}")]
    InputForm {
        /// The form asked for.
        format: Format,
        /// The form the data is held in.
        held: Format,
    },
}

/// Why the server closes a connection: each maps to one RFC 6455 close
/// code and a reason text (see CONTRACT.md, "Closing").
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client asked to close.
    #[error("bye")]
    Normal,
    /// The server is shutting down.
    #[error("server shutting down")]
    ShuttingDown,
    /// A WebSocket protocol violation.
    #[error("protocol error: {0}")]
    ProtocolError(Box<str>),
    /// A frame of the wrong type for the subprotocol.
    #[error("{got} frame on the {} subprotocol", format.subprotocol())]
    WrongFrameType {
        /// The negotiated format.
        format: Format,
        /// `text` or `binary`.
        got: &'static str,
    },
    /// Too many undecodable messages in a row.
    #[error("{count} undecodable messages: {last}")]
    Undecodable {
        /// How many.
        count: u32,
        /// The last one's error.
        last: Box<str>,
    },
    /// Invalid UTF-8 in a text frame.
    #[error("invalid UTF-8 in a text frame")]
    InvalidUtf8,
    /// Sustained flooding past the input or request rate.
    #[error("flooding: over {limit} messages per second")]
    Flooding {
        /// The rate limit.
        limit: u32,
    },
    /// A client too slow to keep up with its room's ticks.
    #[error("too slow: {detail}")]
    TooSlow {
        /// What showed it (ack lag, queue).
        detail: Box<str>,
    },
    /// A refused token.
    #[error("token refused")]
    RefusedToken,
    /// The connection's seat was taken back by a `resume` on another
    /// connection (this one was half-open, or the client moved).
    #[error("resumed elsewhere")]
    ResumedElsewhere,
    /// No answer to the server's keepalive ping in time.
    #[error("no pong within {secs} s")]
    KeepaliveTimeout {
        /// The wait.
        secs: u64,
    },
    /// A message over the size limit.
    #[error("message over the {max}-byte limit")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// A server fault.
    #[error("internal error")]
    Internal,
    /// An operator disconnected the player (the monitor's admin action).
    #[error("disconnected by an operator")]
    DisconnectedByOperator,
}

impl CloseReason {
    /// Every reason's [`label`](Self::label) with its [`code`](Self::code),
    /// in declaration order: the table metrics and documentation count by.
    pub const LABELS: [(&'static str, u16); 14] = [
        ("normal", 1000),
        ("shutting_down", 1001),
        ("protocol_error", 1002),
        ("wrong_frame_type", 1003),
        ("undecodable", 1007),
        ("invalid_utf8", 1007),
        ("flooding", 1008),
        ("too_slow", 1008),
        ("refused_token", 1008),
        ("resumed_elsewhere", 1008),
        ("keepalive_timeout", 1008),
        ("too_large", 1009),
        ("internal", 1011),
        ("disconnected_by_operator", 1008),
    ];

    /// The RFC 6455 close code.
    #[must_use]
    pub fn code(&self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::ShuttingDown => 1001,
            Self::ProtocolError(_) => 1002,
            Self::WrongFrameType { .. } => 1003,
            Self::Undecodable { .. } | Self::InvalidUtf8 => 1007,
            Self::Flooding { .. }
            | Self::TooSlow { .. }
            | Self::RefusedToken
            | Self::ResumedElsewhere
            | Self::KeepaliveTimeout { .. }
            | Self::DisconnectedByOperator => 1008,
            Self::TooLarge { .. } => 1009,
            Self::Internal => 1011,
        }
    }

    /// A stable snake_case label, for metrics.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::ShuttingDown => "shutting_down",
            Self::ProtocolError(_) => "protocol_error",
            Self::WrongFrameType { .. } => "wrong_frame_type",
            Self::Undecodable { .. } => "undecodable",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::Flooding { .. } => "flooding",
            Self::TooSlow { .. } => "too_slow",
            Self::RefusedToken => "refused_token",
            Self::ResumedElsewhere => "resumed_elsewhere",
            Self::KeepaliveTimeout { .. } => "keepalive_timeout",
            Self::TooLarge { .. } => "too_large",
            Self::Internal => "internal",
            Self::DisconnectedByOperator => "disconnected_by_operator",
        }
    }

    /// The reason text, cut to the 123 bytes a close frame can carry.
    #[must_use]
    pub fn reason_text(&self) -> String {
        let mut text = self.to_string();
        if text.len() > 123 {
            let mut end = 123;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_map_to_the_contract() {
        let id = RequestId(7);
        let e = DecodeError::UnsupportedRequest { id, name: "fly".into() };
        assert_eq!(e.reject(), Some((id, RejectCode::Unsupported)));
        let e = DecodeError::Malformed { id: Some(id), detail: "x".into() };
        assert_eq!(e.reject(), Some((id, RejectCode::BadRequest)));
        assert_eq!(e.close_code(), 1007);
        let e = DecodeError::Malformed { id: None, detail: "x".into() };
        assert_eq!(e.reject(), None);
        assert_eq!(DecodeError::TooLarge { size: 2, max: 1 }.close_code(), 1009);
    }

    /// One of each reason; the match makes a new variant fail to compile
    /// here until it is listed (and so checked against [`CloseReason::LABELS`]).
    fn one_of_each() -> Vec<CloseReason> {
        let all = vec![
            CloseReason::Normal,
            CloseReason::ShuttingDown,
            CloseReason::ProtocolError("x".into()),
            CloseReason::WrongFrameType { format: Format::Bin, got: "text" },
            CloseReason::Undecodable { count: 1, last: "x".into() },
            CloseReason::InvalidUtf8,
            CloseReason::Flooding { limit: 1 },
            CloseReason::TooSlow { detail: "x".into() },
            CloseReason::RefusedToken,
            CloseReason::ResumedElsewhere,
            CloseReason::KeepaliveTimeout { secs: 1 },
            CloseReason::TooLarge { max: 1 },
            CloseReason::Internal,
            CloseReason::DisconnectedByOperator,
        ];
        for reason in &all {
            match reason {
                CloseReason::Normal
                | CloseReason::ShuttingDown
                | CloseReason::ProtocolError(_)
                | CloseReason::WrongFrameType { .. }
                | CloseReason::Undecodable { .. }
                | CloseReason::InvalidUtf8
                | CloseReason::Flooding { .. }
                | CloseReason::TooSlow { .. }
                | CloseReason::RefusedToken
                | CloseReason::ResumedElsewhere
                | CloseReason::KeepaliveTimeout { .. }
                | CloseReason::TooLarge { .. }
                | CloseReason::Internal
                | CloseReason::DisconnectedByOperator => {}
            }
        }
        all
    }

    #[test]
    fn the_label_table_lists_every_reason_once_with_its_code() {
        let all = one_of_each();
        assert_eq!(all.len(), CloseReason::LABELS.len());
        for (reason, (label, code)) in all.iter().zip(CloseReason::LABELS) {
            assert_eq!((reason.label(), reason.code()), (label, code));
        }
    }

    #[test]
    fn close_reasons_map_to_rfc_6455_codes() {
        assert_eq!(CloseReason::ShuttingDown.code(), 1001);
        assert_eq!(CloseReason::WrongFrameType { format: Format::Bin, got: "text" }.code(), 1003);
        assert_eq!(
            CloseReason::WrongFrameType { format: Format::Bin, got: "text" }.to_string(),
            "text frame on the tickforge.v1.bin subprotocol"
        );
        assert_eq!(CloseReason::TooSlow { detail: "x".into() }.code(), 1008);
        assert_eq!(CloseReason::TooLarge { max: 1 }.code(), 1009);
        let long = CloseReason::ProtocolError("é".repeat(100).into());
        assert!(long.reason_text().len() <= 123);
    }
}
