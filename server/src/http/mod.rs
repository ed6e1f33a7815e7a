//! HTTP/1.1 on the server's one port, before any WebSocket: parsing a
//! request head (httparse), routing, and the plain answers (`routes`).
//! WebSocket upgrades are checked in [`crate::ws`]; everything here is pure
//! (bytes in, bytes out): the runtime reads and writes the socket.

pub(crate) mod monitor;
pub(crate) mod routes;
pub(crate) mod web;

use std::borrow::Cow;

/// The largest request head accepted, bytes; a longer one is answered 400.
pub const MAX_HEAD: usize = 8 * 1024;

/// The largest `POST /matchmake` body accepted, bytes; a longer one is
/// answered 400.
pub const MAX_BODY: usize = 4 * 1024;

/// Headers accepted in a request head; more is answered 400.
pub const MAX_HEADERS: usize = 48;

/// A parsed request head, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The query (after `?`), if any.
    pub query: Option<String>,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl RequestHead {
    /// Every value of the header `name` (case-insensitive), as text.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// The first value of the header `name`.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }

    /// Whether the comma-separated header `name` holds `token`
    /// (case-insensitive), e.g. `Connection: keep-alive, Upgrade`.
    #[must_use]
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header_values(name).flat_map(|v| v.split(',')).any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The value of query parameter `key`, percent-decoded (`%2B` is `+`,
    /// as a browser's `encodeURIComponent` writes it; a `+` stays a `+`).
    #[must_use]
    pub fn query_param(&self, key: &str) -> Option<Cow<'_, str>> {
        self.query.as_deref()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == key).then(|| percent_decode(v))
        })
    }
}

/// Decodes `%XX` escapes; a malformed escape is kept as it is, and bytes
/// that are not UTF-8 become U+FFFD (such a value then matches nothing).
fn percent_decode(v: &str) -> Cow<'_, str> {
    if !v.contains('%') {
        return Cow::Borrowed(v);
    }
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Why a request head could not be read; each is answered 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The head is over [`MAX_HEAD`].
    #[error("request head over {MAX_HEAD} bytes")]
    TooLarge,
    /// Not HTTP/1.x.
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
}

/// Parses a request head from the start of `buf`: `Ok(None)` while it is
/// incomplete, else the head and the bytes it took.
///
/// # Errors
/// [`HeadError`] for a malformed or oversized head.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            }
        }
        Ok(httparse::Status::Complete(len)) => {
            if len > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            let target = req.path.unwrap_or("/");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (target.to_string(), None),
            };
            let head = RequestHead {
                method: req.method.unwrap_or("").to_string(),
                path,
                query,
                version: req.version.unwrap_or(0),
                headers: req.headers.iter().map(|h| (h.name.to_string(), h.value.to_vec())).collect(),
            };
            Ok(Some((head, len)))
        }
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// The server's routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/` and the browser page's assets.
    Page,
    /// `/healthz`.
    Healthz,
    /// `/metrics`.
    Metrics,
    /// `/rooms`.
    Rooms,
    /// `/matchmake` (POST): a seat in the cluster.
    Matchmake,
    /// `/monitor.json`: what the monitor page shows.
    MonitorJson,
    /// `POST /monitor/...`: the monitor's admin actions.
    MonitorAction,
    /// `/ws`: the game WebSocket.
    Ws,
    /// `/echo` (only with `--echo`): the echo WebSocket.
    Echo,
}

/// The route of `path`, `None` for an unknown path (404).
#[must_use]
pub fn route(path: &str, echo: bool) -> Option<Route> {
    match path {
        "/healthz" => Some(Route::Healthz),
        "/metrics" => Some(Route::Metrics),
        "/rooms" => Some(Route::Rooms),
        "/matchmake" => Some(Route::Matchmake),
        "/monitor.json" => Some(Route::MonitorJson),
        p if p.starts_with("/monitor/") => Some(Route::MonitorAction),
        "/ws" => Some(Route::Ws),
        "/echo" if echo => Some(Route::Echo),
        _ => web::asset(path).map(|_| Route::Page),
    }
}

/// The reason phrase of a status code.
#[must_use]
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        202 => "Accepted",
        401 => "Unauthorized",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A whole HTTP/1.1 answer with `Connection: close`.
#[must_use]
pub fn response(status: u16, content_type: &str, extra_headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    out.extend_from_slice(format!("Content-Type: {content_type}\r\nContent-Length: {}\r\n", body.len()).as_bytes());
    for (name, value) in extra_headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Cache-Control: no-store\r\nConnection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// A plain-text error answer whose body says why.
#[must_use]
pub fn error(status: u16, why: &str, extra_headers: &[(&str, &str)]) -> Vec<u8> {
    response(status, "text/plain; charset=utf-8", extra_headers, format!("{why}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        let raw = b"GET /ws?a=1&token=ab%2Bc%2F%3D&bad=%zz%4 HTTP/1.1\r\nHost: x\r\n\r\n";
        let (head, _) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.query_param("token").as_deref(), Some("ab+c/="));
        assert_eq!(head.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(head.query_param("a").as_deref(), Some("1"));
        assert_eq!(head.query_param("none"), None);
    }

    #[test]
    fn parses_a_head_and_its_length() {
        let raw = b"GET /ws?token=abc HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\n\r\nrest";
        let (head, len) = parse_head(raw).unwrap().unwrap();
        assert_eq!(len, raw.len() - 4);
        assert_eq!(head.path, "/ws");
        assert_eq!(head.query_param("token").as_deref(), Some("abc"));
        assert!(head.header_has_token("connection", "upgrade"));
        assert_eq!(head.header("HOST"), Some("x"));
    }

    #[test]
    fn partial_and_malformed_heads() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHo"), Ok(None));
        assert!(matches!(parse_head(b"\x16\x03\x01 garbage\r\n\r\n"), Err(HeadError::Malformed(_))));
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 10, b'a');
        assert_eq!(parse_head(&long), Err(HeadError::TooLarge));
    }

    #[test]
    fn error_answers_carry_a_reason() {
        let text = String::from_utf8(error(405, "use GET", &[("Allow", "GET")])).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text.contains("Allow: GET\r\n"));
        assert!(text.ends_with("\r\n\r\nuse GET\n"));
    }
}
