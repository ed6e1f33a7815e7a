//! Helpers: a real server on port 0 in this process, a WebSocket client
//! driving `ClientSession` over a real socket, raw HTTP. Every read has a
//! timeout, so a test fails instead of hanging.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tickforge_protocol::codec::{self, Format, TickHeader};
use tickforge_protocol::ids::RequestId;
use tickforge_protocol::message::{ClientMsg, Confirm, Indication, InputData, Joined, RejectCode, Request};
use tickforge_protocol::session::{ClientSession, Event};
use tickforge_server::{ServerConfig, ServerHandle};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// How long any single wait may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// A server running in this process; shut down (and waited for) on drop.
pub(crate) struct TestServer {
    pub(crate) handle: Option<ServerHandle>,
    pub(crate) addr: SocketAddr,
}

impl TestServer {
    /// A one-shard server with default settings.
    pub(crate) fn start() -> Self {
        Self::with(|_| {})
    }

    /// A server with settings changed by `f` (one shard, unpinned, unless `f` says otherwise).
    pub(crate) fn with(f: impl FnOnce(&mut ServerConfig)) -> Self {
        let mut config = ServerConfig::default();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.shards = 1;
        config.pin = false;
        f(&mut config);
        let handle = tickforge_server::start(config).expect("server starts");
        let addr = handle.local_addr();
        Self { handle: Some(handle), addr }
    }

    pub(crate) fn metrics(&self) -> String {
        self.handle.as_ref().unwrap().metrics().render()
    }

    /// Starts the graceful shutdown.
    pub(crate) fn shutdown(&self) {
        self.handle.as_ref().unwrap().shutdown();
    }

    /// Waits for the shutdown to finish.
    pub(crate) fn wait(mut self) {
        self.handle.take().unwrap().wait().expect("every shard drained");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
            let result = h.wait();
            if !std::thread::panicking() {
                result.expect("every shard drained");
            }
        }
    }
}

/// The value of a metric line `name` (exact match of the text before the value).
pub(crate) fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
        .trim()
        .parse::<f64>()
        .unwrap() as u64
}

/// A plain HTTP answer.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl HttpAnswer {
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// Sends raw request bytes and reads the whole answer (the server closes).
pub(crate) fn http_raw(addr: SocketAddr, request: &[u8]) -> HttpAnswer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    // Read to the end, except after a 101 (the WebSocket stays open).
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
        if bytes.starts_with(b"HTTP/1.1 101 ") && bytes.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    HttpAnswer { status, head: head.to_string(), body: body.to_string() }
}

/// `METHOD path` with `extra` header lines.
pub(crate) fn http(addr: SocketAddr, method: &str, path: &str, extra: &str) -> HttpAnswer {
    http_raw(addr, format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n").as_bytes())
}

/// The upgrade headers of a valid handshake.
pub(crate) const UPGRADE: &str =
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// What a test client's WebSocket runs over: a TCP socket, or TLS over one.
pub(crate) trait Socket: Read + Write {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// A TLS client stream (rustls over a std socket).
pub(crate) type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

impl Socket for TlsStream {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// A WebSocket client speaking `format`, rebuilding state with `ClientSession`.
pub(crate) struct Client<S: Socket = TcpStream> {
    pub(crate) ws: WebSocket<S>,
    pub(crate) session: ClientSession,
    pub(crate) format: Format,
    out: Vec<u8>,
    /// Events seen but not yet consumed by a `wait_*`.
    pub(crate) backlog: Vec<Event>,
    /// The close frame, once one arrived.
    pub(crate) closed: Option<(u16, String)>,
}

/// Connects to `/ws` offering `format`'s subprotocol.
pub(crate) fn connect(server: &TestServer, format: Format) -> Client {
    connect_to(server.addr, "/ws", Some(format)).expect("handshake")
}

/// Connects to `path`, offering `format` (none: no subprotocol header, JSON).
pub(crate) fn connect_to(addr: SocketAddr, path: &str, format: Option<Format>) -> Result<Client, tungstenite::Error> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    handshake(stream, &format!("ws://{addr}{path}"), format)
}

/// Connects over TLS (`tls`: the client's settings, `localhost` as the
/// server name) to `path`, offering `format`.
pub(crate) fn connect_tls(
    addr: SocketAddr,
    tls: &std::sync::Arc<rustls::ClientConfig>,
    path: &str,
    format: Option<Format>,
) -> Result<Client<TlsStream>, tungstenite::Error> {
    let stream = tls_stream(addr, tls);
    handshake(stream, &format!("wss://localhost:{}{path}", addr.port()), format)
}

/// A TLS stream to `addr` (the handshake runs with the first write or read).
pub(crate) fn tls_stream(addr: SocketAddr, tls: &std::sync::Arc<rustls::ClientConfig>) -> TlsStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(tls.clone(), name).unwrap();
    rustls::StreamOwned::new(conn, stream)
}

fn handshake<S: Socket>(stream: S, url: &str, format: Option<Format>) -> Result<Client<S>, tungstenite::Error> {
    let mut req = url.into_client_request().unwrap();
    if let Some(f) = format {
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(f.subprotocol()));
    }
    let config = WebSocketConfig::default().max_message_size(None);
    let (ws, resp) = tungstenite::client::client_with_config(req, stream, Some(config)).map_err(|e| match e {
        tungstenite::HandshakeError::Failure(e) => e,
        tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
    })?;
    let chosen = resp.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().unwrap().to_string());
    let format = match chosen.as_deref() {
        Some(p) => Format::from_subprotocol(p).expect("a known subprotocol"),
        None => Format::Json,
    };
    Ok(Client { ws, session: ClientSession::new(format), format, out: Vec::new(), backlog: Vec::new(), closed: None })
}

impl<S: Socket> Client<S> {
    /// Sends an encoded message payload in this format's frame type.
    pub(crate) fn send_payload(&mut self, payload: Vec<u8>) {
        let msg = if self.format.is_binary() {
            Message::Binary(payload.into())
        } else {
            Message::Text(String::from_utf8(payload).unwrap().into())
        };
        self.ws.send(msg).unwrap();
    }

    /// Sends a request; returns its id.
    pub(crate) fn request(&mut self, body: Request) -> RequestId {
        let id = self.session.request(body, &mut self.out);
        let payload = std::mem::take(&mut self.out);
        self.send_payload(payload);
        id
    }

    /// Sends an input; returns its seq.
    pub(crate) fn input(&mut self, data: InputData) -> u32 {
        let seq = self.session.input(data, &mut self.out);
        let payload = std::mem::take(&mut self.out);
        self.send_payload(payload);
        seq.0
    }

    /// Acks the newest tick applied.
    pub(crate) fn ack(&mut self) {
        if self.session.ack(&mut self.out).is_some() {
            let payload = std::mem::take(&mut self.out);
            self.send_payload(payload);
        }
    }

    /// Sends a client message as is.
    pub(crate) fn send_msg(&mut self, msg: &ClientMsg) {
        let mut out = Vec::new();
        codec::encode_client(self.format, msg, &mut out).expect("input data held in this client's form");
        self.send_payload(out);
    }

    /// Reads one WebSocket message (panics after [`WAIT`]); `None` once closed.
    pub(crate) fn read(&mut self) -> Option<Message> {
        if self.closed.is_some() {
            return None;
        }
        match self.ws.read() {
            Ok(Message::Close(frame)) => {
                self.closed =
                    Some(frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new())));
                None
            }
            Ok(m) => Some(m),
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
            {
                panic!("no message within {WAIT:?}")
            }
            Err(e) => {
                self.closed.get_or_insert((1006, e.to_string()));
                None
            }
        }
    }

    /// The next session event (reading as needed); `None` once closed.
    pub(crate) fn next_event(&mut self) -> Option<Event> {
        if !self.backlog.is_empty() {
            return Some(self.backlog.remove(0));
        }
        loop {
            if let Some(e) = self.session.poll_event() {
                return Some(e);
            }
            match self.read()? {
                Message::Text(t) => self.session.handle_message(t.as_bytes()).expect("a valid server message"),
                Message::Binary(b) => self.session.handle_message(&b).expect("a valid server message"),
                _ => {}
            }
        }
    }

    /// Reads events until `pick` takes one (others kept in order); panics on close or after [`WAIT`].
    pub(crate) fn wait_for<T>(&mut self, what: &str, mut pick: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        let mut skipped = Vec::new();
        let mut from_backlog = std::mem::take(&mut self.backlog).into_iter();
        loop {
            assert!(Instant::now() < deadline, "no {what} within {WAIT:?}");
            let event = match from_backlog.next() {
                Some(e) => e,
                None => match self.next_event() {
                    Some(e) => e,
                    None => panic!("closed {:?} while waiting for {what}", self.closed),
                },
            };
            if let Some(t) = pick(&event) {
                skipped.extend(from_backlog);
                self.backlog = skipped;
                return t;
            }
            skipped.push(event);
        }
    }

    /// Waits for the answer to request `id`: `Ok(confirm)` or `Err((code, reason))`.
    pub(crate) fn answer(&mut self, id: RequestId) -> Result<Confirm, (RejectCode, String)> {
        self.wait_for("answer", |e| match e {
            Event::Confirmed { id: i, body } if *i == id => Some(Ok(body.clone())),
            Event::Rejected { id: i, code, reason } if *i == id => Some(Err((*code, reason.clone()))),
            _ => None,
        })
    }

    /// Sends a request and waits for its confirmation (panics on a reject).
    pub(crate) fn call(&mut self, body: Request) -> Confirm {
        let name = body.name();
        let id = self.request(body);
        self.answer(id).unwrap_or_else(|e| panic!("{name} rejected: {e:?}"))
    }

    /// Sends a request expecting a reject; returns its code.
    pub(crate) fn call_rej(&mut self, body: Request) -> RejectCode {
        let id = self.request(body);
        match self.answer(id) {
            Ok(c) => panic!("expected a reject, got {c:?}"),
            Err((code, _)) => code,
        }
    }

    /// `join_or_create` `game`; returns the `joined`.
    pub(crate) fn join_or_create(&mut self, game: &str) -> Joined {
        match self.call(Request::JoinOrCreate { game: game.into(), options: None }) {
            Confirm::Joined(j) => j,
            other => panic!("expected joined, got {other:?}"),
        }
    }

    /// Waits for the next tick; returns its header.
    pub(crate) fn next_tick(&mut self) -> TickHeader {
        self.wait_for("tick", |e| match e {
            Event::Tick(h) => Some(*h),
            _ => None,
        })
    }

    /// Waits for an indication matching `pick`.
    pub(crate) fn wait_indication<T>(&mut self, what: &str, mut pick: impl FnMut(&Indication) -> Option<T>) -> T {
        self.wait_for(what, |e| match e {
            Event::Indication(i) => pick(i),
            _ => None,
        })
    }

    /// Reads (ignoring everything) until the server's close frame; returns (code, reason).
    pub(crate) fn wait_close(&mut self) -> (u16, String) {
        let deadline = Instant::now() + WAIT;
        while self.closed.is_none() {
            assert!(Instant::now() < deadline, "no close within {WAIT:?}");
            let _ = self.read();
        }
        self.closed.clone().unwrap()
    }
}
