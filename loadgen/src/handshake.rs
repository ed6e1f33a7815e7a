//! The WebSocket opening handshake, client side, without I/O: the HTTP
//! upgrade request to write, and the reading of the server's answer (a 101
//! with the right accept key and our subprotocol, or a refusal's status).

use crate::net::Target;
use tickforge_protocol::Format;

/// One handshake's request and the answer it expects.
#[derive(Clone, Debug)]
pub(crate) struct Handshake {
    /// The request bytes.
    pub(crate) request: Vec<u8>,
    /// The `Sec-WebSocket-Accept` value the server must answer.
    accept: String,
    /// The subprotocol offered (the only one).
    subprotocol: &'static str,
}

/// What the bytes received so far say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The answer's head is not complete yet.
    Incomplete,
    /// 101 with everything right; WebSocket frames start at `head_len`.
    Open {
        /// The length of the HTTP head.
        head_len: usize,
    },
    /// An HTTP status other than 101.
    Refused {
        /// The status.
        status: u16,
        /// The reason phrase and whatever of the body arrived, on one line.
        reason: String,
    },
    /// A 101 that is wrong, or bytes that are not HTTP.
    Failed(String),
}

/// Heads longer than this are refused (a server's 101 is ~200 bytes).
pub(crate) const MAX_HEAD: usize = 16 * 1024;

impl Handshake {
    /// A request for `target`, offering `format`'s subprotocol, with a
    /// fresh random key.
    pub(crate) fn new(target: &Target, format: Format) -> Self {
        let key = tungstenite::handshake::client::generate_key();
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let subprotocol = format.subprotocol();
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n",
            target.path, target.host
        )
        .into_bytes();
        Self { request, accept, subprotocol }
    }

    /// Reads the answer from the bytes received so far.
    pub(crate) fn answer(&self, buf: &[u8]) -> Answer {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let head_len = match resp.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                return Answer::Failed(format!("answer head over {MAX_HEAD} bytes"));
            }
            Ok(httparse::Status::Partial) => return Answer::Incomplete,
            Err(e) => return Answer::Failed(format!("not an HTTP answer: {e}")),
        };
        let status = resp.code.unwrap_or(0);
        if status != 101 {
            let body = String::from_utf8_lossy(&buf[head_len..]);
            let reason = format!("{} {}", resp.reason.unwrap_or(""), crate::net::one_line(&body));
            return Answer::Refused { status, reason: reason.trim().into() };
        }
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(str::trim)
        };
        if !header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
            return Answer::Failed("101 without Upgrade: websocket".into());
        }
        if !header("connection").is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))) {
            return Answer::Failed("101 without Connection: upgrade".into());
        }
        if header("sec-websocket-accept") != Some(self.accept.as_str()) {
            return Answer::Failed("wrong Sec-WebSocket-Accept".into());
        }
        match header("sec-websocket-protocol") {
            Some(p) if p == self.subprotocol => {}
            Some(p) => return Answer::Failed(format!("the server chose subprotocol {p:?}")),
            None => return Answer::Failed(format!("the server did not accept {}", self.subprotocol)),
        }
        if header("sec-websocket-extensions").is_some() {
            return Answer::Failed("the server chose an extension none was offered".into());
        }
        Answer::Open { head_len }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake() -> Handshake {
        Handshake::new(&Target::parse("ws://127.0.0.1:7700/ws?token=a%20b").unwrap(), Format::Bin)
    }

    fn ok_answer(h: &Handshake) -> String {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: tickforge.v1.bin\r\n\r\n",
            h.accept
        )
    }

    #[test]
    fn the_request_offers_one_subprotocol() {
        let h = handshake();
        let text = String::from_utf8(h.request.clone()).unwrap();
        assert!(text.starts_with("GET /ws?token=a%20b HTTP/1.1\r\nHost: 127.0.0.1:7700\r\n"), "{text}");
        assert!(text.contains("\r\nSec-WebSocket-Protocol: tickforge.v1.bin\r\n"));
        assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        // RFC 6455 4.1's example key and accept.
        assert_eq!(
            tungstenite::handshake::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_good_101_opens_with_frames_after_it() {
        let h = handshake();
        let answer = ok_answer(&h);
        for cut in 0..answer.len() {
            assert_eq!(h.answer(&answer.as_bytes()[..cut]), Answer::Incomplete, "{cut}");
        }
        let mut bytes = answer.clone().into_bytes();
        bytes.extend_from_slice(&[0x82, 0x01, 0x07]);
        assert_eq!(h.answer(&bytes), Answer::Open { head_len: answer.len() });
    }

    #[test]
    fn refusals_and_bad_answers() {
        let h = handshake();
        let refused = h.answer(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\nserver full");
        assert_eq!(refused, Answer::Refused { status: 503, reason: "Service Unavailable server full".into() });
        let good = ok_answer(&h);
        for (from, to) in [
            (h.accept.as_str(), "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            ("tickforge.v1.bin", "tickforge.v1.json"),
            ("Sec-WebSocket-Protocol: tickforge.v1.bin\r\n", ""),
            ("Upgrade: websocket", "Upgrade: h2c"),
        ] {
            let bad = good.replace(from, to);
            assert!(matches!(h.answer(bad.as_bytes()), Answer::Failed(_)), "{bad}");
        }
        assert!(matches!(h.answer(b"SSH-2.0-OpenSSH\r\n\r\n"), Answer::Failed(_)));
        assert!(matches!(h.answer(&vec![b'a'; MAX_HEAD + 1]), Answer::Failed(_)));
    }
}
