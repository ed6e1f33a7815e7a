//! The RFC 6455 opening handshake, checked against the contract: method,
//! `Upgrade`, `Connection`, version, key, Origin, token and the
//! subprotocol choice, and the `101 Switching Protocols` answer.

use crate::http::RequestHead;
use tickforge_protocol::codec::{Format, Negotiation};

/// What a handshake that passed the checks negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The wire format (JSON when no subprotocol was offered).
    pub format: Format,
    /// The subprotocol to name in the answer (`None` when none was offered).
    pub subprotocol: Option<&'static str>,
    /// `Sec-WebSocket-Accept`.
    pub accept_key: String,
}

/// A refused handshake: status, the body's reason, and extra headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// Why, for the body.
    pub why: String,
    /// Extra headers (`Upgrade`, `Sec-WebSocket-Version`, `Allow`).
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Refused {
    fn new(status: u16, why: impl Into<String>) -> Self {
        Self { status, why: why.into(), headers: Vec::new() }
    }

    fn with(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// What the handshake checks need to know about the server.
#[derive(Clone, Copy, Debug)]
pub struct HandshakePolicy<'a> {
    /// Allowed `Origin`s; empty = any.
    pub allowed_origins: &'a [String],
    /// The token a `?token=` query must match, when set.
    pub token: Option<&'a str>,
    /// Whether to negotiate a tickforge subprotocol (false for `/echo`).
    pub negotiate: bool,
}

/// Checks an upgrade request against RFC 6455 and the contract.
///
/// # Errors
/// [`Refused`] with the status the contract gives: 405 (not GET), 426 (no
/// `Upgrade: websocket`, or a version other than 13), 400 (no `Connection:
/// Upgrade`, a bad key, only unknown subprotocols), 403 (Origin, token).
pub fn check_upgrade(head: &RequestHead, policy: &HandshakePolicy<'_>) -> Result<Accepted, Refused> {
    if head.method != "GET" {
        return Err(Refused::new(405, format!("{} is not allowed here: use GET", head.method)).with("Allow", "GET"));
    }
    if !head.header_has_token("Upgrade", "websocket") {
        return Err(
            Refused::new(426, "this is a WebSocket endpoint: send Upgrade: websocket").with("Upgrade", "websocket")
        );
    }
    if head.version < 1 {
        return Err(Refused::new(400, "WebSocket needs HTTP/1.1"));
    }
    if !head.header_has_token("Connection", "upgrade") {
        return Err(Refused::new(400, "missing Connection: Upgrade"));
    }
    match head.header("Sec-WebSocket-Version") {
        Some("13") => {}
        Some(v) => {
            return Err(Refused::new(426, format!("unsupported Sec-WebSocket-Version {v:?}: this server speaks 13"))
                .with("Sec-WebSocket-Version", "13"))
        }
        None => {
            return Err(Refused::new(426, "missing Sec-WebSocket-Version: this server speaks 13")
                .with("Sec-WebSocket-Version", "13"))
        }
    }
    let Some(key) = head.header("Sec-WebSocket-Key").filter(|k| valid_key(k)) else {
        return Err(Refused::new(400, "missing or invalid Sec-WebSocket-Key (16 bytes, base64)"));
    };
    if !policy.allowed_origins.is_empty() {
        if let Some(origin) = head.header("Origin") {
            if !policy.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return Err(Refused::new(403, format!("origin {origin:?} is not allowed")));
            }
        }
    }
    if let (Some(token), Some(given)) = (policy.token, head.query_param("token")) {
        if token != given.as_ref() {
            return Err(Refused::new(403, "token refused"));
        }
    }
    let (format, subprotocol) = if policy.negotiate {
        match Format::negotiate(head.header_values("Sec-WebSocket-Protocol")) {
            Negotiation::Chosen(f) => (f, Some(f.subprotocol())),
            Negotiation::NoneOffered => (Format::Json, None),
            Negotiation::NoneSupported => {
                let names: Vec<_> = Format::ALL.iter().map(|f| f.subprotocol()).collect();
                return Err(Refused::new(
                    400,
                    format!("no supported subprotocol offered; this server speaks {}", names.join(", ")),
                ));
            }
        }
    } else {
        (Format::Json, None)
    };
    Ok(Accepted { format, subprotocol, accept_key: tungstenite::handshake::derive_accept_key(key.as_bytes()) })
}

/// Whether `key` is base64 of 16 bytes.
fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24 && b.ends_with(b"==") && b[..22].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// The `101 Switching Protocols` answer.
#[must_use]
pub fn switching_protocols(accepted: &Accepted) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accepted.accept_key
    );
    if let Some(p) = accepted.subprotocol {
        out.push_str("Sec-WebSocket-Protocol: ");
        out.push_str(p);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;

    fn head(extra: &str) -> RequestHead {
        let raw = format!("GET /ws HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    const UPGRADE: &str =
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    const ANY: HandshakePolicy<'static> = HandshakePolicy { allowed_origins: &[], token: None, negotiate: true };

    #[test]
    fn the_rfc_example_key_and_subprotocol_choice() {
        let ok =
            check_upgrade(&head(&format!("{UPGRADE}Sec-WebSocket-Protocol: x, tickforge.v1.bin\r\n")), &ANY).unwrap();
        assert_eq!(ok.accept_key, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(ok.format, Format::Bin);
        let text = String::from_utf8(switching_protocols(&ok)).unwrap();
        assert!(text.contains("Sec-WebSocket-Protocol: tickforge.v1.bin\r\n"));
        let none = check_upgrade(&head(UPGRADE), &ANY).unwrap();
        assert_eq!((none.format, none.subprotocol), (Format::Json, None));
    }

    #[test]
    fn refusals_follow_the_contract() {
        let status =
            |extra: &str, policy: &HandshakePolicy<'_>| check_upgrade(&head(extra), policy).unwrap_err().status;
        assert_eq!(status("", &ANY), 426);
        assert_eq!(status(&UPGRADE.replace("13", "8"), &ANY), 426);
        assert_eq!(status(&UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"), &ANY), 400);
        assert_eq!(status(&format!("{UPGRADE}Sec-WebSocket-Protocol: mqtt\r\n"), &ANY), 400);
        let origins = vec!["http://good".to_string()];
        let strict = HandshakePolicy { allowed_origins: &origins, token: None, negotiate: true };
        assert_eq!(status(&format!("{UPGRADE}Origin: http://evil\r\n"), &strict), 403);
        assert!(check_upgrade(&head(&format!("{UPGRADE}Origin: http://good\r\n")), &strict).is_ok());
    }
}
