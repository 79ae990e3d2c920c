//! The HTTP/1.x server: one thread running one `mio` event loop (epoll on Linux) over every
//! connection, so an idle connection costs a socket and about a hundred bytes, never a thread.
//! One thread is enough because a handler only formats a few hundred bytes from memory; the
//! measured throughput is in docs/daemon-load.md.
//!
//! Why by hand: tiny_http, used before, gives each connection a thread and has no idle
//! timeout, so idle clients grew the thread count without bound, and it never answered an
//! HTTP/1.0 keep-alive request with `Connection: keep-alive`. rouille is built on tiny_http;
//! astra and the other hyper-based servers bring hyper's dependency tree and a worker pool, and
//! an async stack (hyper on tokio) would multiply the size of a binary shipped to small boards,
//! all for three GET routes. What is left is small enough to own: `mio` for readiness (a thin
//! layer over epoll/kqueue with only `libc` beneath it), `httparse` for the request head (see
//! `http`), and the loop below, where every limit is enforced in one place:
//!
//! - at most `max_connections` open connections; the next ones get a 503 and are closed;
//! - a connection with no request in progress is closed after `idle_timeout`;
//! - a started request must be complete within `header_timeout` of its first byte, however
//!   slowly it trickles in (408, then close);
//! - a response the client does not read is dropped after `idle_timeout`;
//! - request heads over 8 KiB get 431, bodies over 1 KiB get 413 (see `http`).
//!
//! Deadlines are checked by a sweep every `SWEEP_INTERVAL`, so a timeout fires up to that much
//! late; it keeps the loop free of timer structures.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token};

use crate::http::{self, Parsed, Persistence, Request, Response};
use crate::log::Logger;

pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

const SWEEP_INTERVAL: Duration = Duration::from_millis(250);
/// How long a closing connection may keep sending before it is cut: reading what the client
/// still sends after the last response keeps the kernel from answering it with a reset, which
/// could destroy that response before the client reads it.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// Descriptors kept free for the listener, the poller, the signal pipes and stdio.
const RESERVED_FDS: usize = 32;
/// A burst of connects beyond the default backlog of 128 would wait for SYN retries (1 s).
const LISTEN_BACKLOG: i32 = 1024;
/// Reads per connection per wake-up, so one fast pipelining client cannot starve the rest.
const READS_PER_TURN: usize = 16;
/// Responses are appended until this much is waiting to be sent.
const OUTPUT_HIGH_WATER: usize = 16 * 1024;
const READ_CHUNK: usize = 4096;

const LISTENER: Token = Token(usize::MAX);
/// Signal pipes take the tokens just below the listener's.
const FIRST_SIGNAL: usize = usize::MAX - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub idle_timeout: Duration,
    pub header_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// A signal that stops the server: the read end of a pipe its handler writes to, and its name.
pub struct StopSignal {
    pub pipe: UnixStream,
    pub name: &'static str,
}

/// Binds `addr` with a backlog deep enough for bursts of connects.
pub fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // SAFETY: listen(2) on a socket we own; calling it again only changes the backlog.
    if unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// Lowers `limits.max_connections` to what the open-file limit allows, after raising the soft
/// limit towards the hard one. Returns the limits to serve with.
pub fn fit_to_open_file_limit(limits: Limits, log: Logger) -> Limits {
    let wanted = limits.max_connections.saturating_add(RESERVED_FDS);
    let wanted = libc::rlim_t::try_from(wanted).unwrap_or(libc::RLIM_INFINITY);
    let available = match raise_open_file_limit(wanted) {
        Ok(available) => usize::try_from(available).unwrap_or(usize::MAX),
        Err(err) => {
            log.error("cannot read the open-file limit", &[("error", &err)]);
            return limits;
        }
    };
    let max_connections = limits.max_connections.min(available.saturating_sub(RESERVED_FDS)).max(1);
    if max_connections < limits.max_connections {
        log.info(
            "connection limit lowered to fit the open-file limit",
            &[("max_connections", &max_connections), ("nofile", &available)],
        );
    }
    Limits { max_connections, ..limits }
}

/// Raises the soft RLIMIT_NOFILE to `wanted` (at most the hard limit); returns the soft limit.
fn raise_open_file_limit(wanted: libc::rlim_t) -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit write and read only the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = wanted.min(limit.rlim_max);
    if limit.rlim_cur < wanted {
        let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

/// Serves `listener` with `handler` until one of `signals` arrives.
pub fn run<H>(
    listener: TcpListener,
    mut signals: Vec<StopSignal>,
    limits: Limits,
    handler: H,
    log: Logger,
) -> io::Result<()>
where
    H: Fn(&Request) -> Response,
{
    let mut server = Server::new(listener, limits, handler, log)?;
    for (index, signal) in signals.iter_mut().enumerate() {
        server.poll.registry().register(&mut signal.pipe, Token(FIRST_SIGNAL - index), Interest::READABLE)?;
    }
    server.run(&signals)
}

struct Server<H> {
    poll: Poll,
    listener: TcpListener,
    connections: Slots,
    limits: Limits,
    handler: H,
    log: Logger,
    date: DateCache,
    /// Connections that stopped early for fairness and still have work.
    ready: Vec<Token>,
    /// Accepting failed for lack of descriptors; retried on every sweep.
    accept_paused: bool,
    at_capacity: bool,
}

impl<H> Server<H>
where
    H: Fn(&Request) -> Response,
{
    fn new(mut listener: TcpListener, limits: Limits, handler: H, log: Logger) -> io::Result<Self> {
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            poll,
            listener,
            connections: Slots::default(),
            limits,
            handler,
            log,
            date: DateCache::default(),
            ready: Vec::new(),
            accept_paused: false,
            at_capacity: false,
        })
    }

    fn run(&mut self, signals: &[StopSignal]) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        loop {
            let timeout = if self.ready.is_empty() {
                next_sweep.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(now),
                    token => match signal_index(token, signals.len()) {
                        Some(index) => {
                            self.log.info("stopping", &[("signal", &signals[index].name)]);
                            return Ok(());
                        }
                        None => self.drive(token, now),
                    },
                }
            }
            for token in std::mem::take(&mut self.ready) {
                self.drive(token, now);
            }
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_INTERVAL;
            }
        }
    }

    fn accept_all(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    self.accept_paused = false;
                    self.admit(stream, now);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_paused = false;
                    return;
                }
                Err(err) if is_transient_accept_error(&err) => continue,
                Err(err) => {
                    // Out of descriptors or memory: the connection waits in the backlog.
                    if !self.accept_paused {
                        self.log.error("cannot accept connections", &[("error", &err)]);
                    }
                    self.accept_paused = true;
                    return;
                }
            }
        }
    }

    fn admit(&mut self, stream: TcpStream, now: Instant) {
        if self.connections.len() >= self.limits.max_connections {
            if !self.at_capacity {
                self.log
                    .info("connection limit reached", &[("max_connections", &self.limits.max_connections)]);
                self.at_capacity = true;
            }
            refuse(stream, self.date.now());
            return;
        }
        self.at_capacity = false;
        // Responses go out in one write; without this a pipelined second one waits for an ACK.
        let _ = stream.set_nodelay(true);
        let token = self.connections.insert(Connection::new(stream, now + self.limits.idle_timeout));
        let connection = self.connections.get_mut(token).expect("just inserted");
        if let Err(err) = self.poll.registry().register(&mut connection.stream, token, Interest::READABLE) {
            self.log.error("cannot watch a connection", &[("error", &err)]);
            self.connections.remove(token);
        }
    }

    /// Does all the work a connection has, until it must wait for the client or is closed.
    fn drive(&mut self, token: Token, now: Instant) {
        let Some(connection) = self.connections.get_mut(token) else { return };
        let next = connection.advance(&self.handler, &self.limits, &mut self.date, now);
        match next {
            Next::Wait => {}
            Next::WaitWritable => {
                if !connection.watching_writes {
                    connection.watching_writes = true;
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if self.poll.registry().reregister(&mut connection.stream, token, interest).is_err() {
                        self.close(token);
                    }
                }
            }
            Next::Again => self.ready.push(token),
            Next::Close => self.close(token),
        }
    }

    /// Expires connections whose deadline has passed, and retries a paused accept.
    fn sweep(&mut self, now: Instant) {
        for token in self.connections.tokens() {
            let connection = self.connections.get_mut(token).expect("listed");
            if connection.deadline > now {
                continue;
            }
            if connection.expire(&mut self.date, now) {
                self.drive(token, now);
            } else {
                self.close(token);
            }
        }
        if self.accept_paused {
            self.accept_all(now);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut connection) = self.connections.remove(token) {
            let _ = self.poll.registry().deregister(&mut connection.stream);
        }
    }
}

fn signal_index(token: Token, signal_count: usize) -> Option<usize> {
    let index = FIRST_SIGNAL.checked_sub(token.0)?;
    (index < signal_count).then_some(index)
}

fn is_transient_accept_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Turns a connection over the limit away at once: a 503 if the send buffer takes it, then close.
fn refuse(mut stream: TcpStream, date: &str) {
    let mut out = Vec::new();
    let response = Response::error(http::SERVICE_UNAVAILABLE);
    http::write_response(&mut out, &response, http::Version::Http11, Persistence::Close, false, date);
    let _ = stream.write(&out);
    let _ = stream.shutdown(Shutdown::Write);
}

/// What a connection waits for after a turn.
enum Next {
    /// More bytes from the client.
    Wait,
    /// Room in the send buffer.
    WaitWritable,
    /// Its next turn: it has more to do but made way for the others.
    Again,
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Between requests; the idle timeout runs.
    Idle,
    /// Part of a request has arrived; the header timeout runs.
    Reading,
    /// A response waits for the client to read; the idle timeout runs.
    Writing,
    /// The last response is sent and our side shut; reading what the client still sends.
    Lingering,
}

struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// How much of `output` is sent.
    sent: usize,
    /// Close once `output` is sent.
    closing: bool,
    phase: Phase,
    deadline: Instant,
    watching_writes: bool,
}

impl Connection {
    fn new(stream: TcpStream, deadline: Instant) -> Self {
        Connection {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            closing: false,
            phase: Phase::Idle,
            deadline,
            watching_writes: false,
        }
    }

    fn enter(&mut self, phase: Phase, deadline: Instant) {
        self.phase = phase;
        self.deadline = deadline;
    }

    /// Answers what has arrived, sends it and reads more, until the client must act.
    fn advance<H>(&mut self, handler: &H, limits: &Limits, date: &mut DateCache, now: Instant) -> Next
    where
        H: Fn(&Request) -> Response,
    {
        if self.phase == Phase::Lingering {
            return self.discard_input();
        }
        for _ in 0..READS_PER_TURN {
            let more_buffered = self.answer_buffered_requests(handler, limits, date, now);
            match self.flush() {
                Ok(true) => {}
                Ok(false) => {
                    if self.phase != Phase::Writing {
                        self.enter(Phase::Writing, now + limits.idle_timeout);
                    }
                    return Next::WaitWritable;
                }
                Err(_) => return Next::Close,
            }
            if self.closing {
                let _ = self.stream.shutdown(Shutdown::Write);
                self.enter(Phase::Lingering, now + LINGER_TIMEOUT);
                return self.discard_input();
            }
            self.settle_phase(limits, now);
            if more_buffered {
                continue;
            }
            match self.fill_input() {
                Ok(0) => return Next::Close,
                Ok(_) => self.settle_phase(limits, now),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        Next::Again
    }

    /// Starts the idle or the header clock when the connection moves between the two.
    fn settle_phase(&mut self, limits: &Limits, now: Instant) {
        match (self.phase, self.input.is_empty()) {
            (Phase::Idle, false) => self.enter(Phase::Reading, now + limits.header_timeout),
            (Phase::Reading | Phase::Writing, true) => self.enter(Phase::Idle, now + limits.idle_timeout),
            (Phase::Writing, false) => self.enter(Phase::Reading, now + limits.header_timeout),
            _ => {}
        }
    }

    /// Appends a response for every whole request in `input`, up to the output high-water mark.
    /// Returns whether it stopped at that mark, with requests possibly left to answer.
    fn answer_buffered_requests<H>(
        &mut self,
        handler: &H,
        limits: &Limits,
        date: &mut DateCache,
        now: Instant,
    ) -> bool
    where
        H: Fn(&Request) -> Response,
    {
        let mut more_buffered = false;
        while !self.closing {
            if self.output.len() >= OUTPUT_HIGH_WATER {
                more_buffered = true;
                break;
            }
            let consumed = match http::parse(&self.input) {
                Parsed::Incomplete => break,
                Parsed::Complete { request, len } => {
                    let response = handler(&request);
                    let head_only = request.method == "HEAD";
                    let date = date.now();
                    http::write_response(
                        &mut self.output,
                        &response,
                        request.version,
                        request.persistence,
                        head_only,
                        date,
                    );
                    self.closing = request.persistence == Persistence::Close;
                    len
                }
                Parsed::Rejected(status) => {
                    self.reject(status, date.now());
                    self.input.len()
                }
            };
            self.input.drain(..consumed);
            if !self.input.is_empty() {
                // The next request has begun: its own header clock starts.
                self.enter(Phase::Reading, now + limits.header_timeout);
            }
        }
        if self.input.is_empty() {
            // Idle connections hold no buffer.
            self.input = Vec::new();
        }
        more_buffered
    }

    fn reject(&mut self, status: u16, date: &str) {
        let response = Response::error(status);
        let version = http::Version::Http11;
        http::write_response(&mut self.output, &response, version, Persistence::Close, false, date);
        self.closing = true;
    }

    /// Sends what is pending; `Ok(false)` when the send buffer is full.
    fn flush(&mut self) -> io::Result<bool> {
        while self.sent < self.output.len() {
            match self.stream.write(&self.output[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        self.output = Vec::new();
        self.sent = 0;
        Ok(true)
    }

    /// Reads one chunk into `input`, never past what a complete request can need. Called only
    /// when `input` holds no whole request, so it is never full.
    fn fill_input(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; READ_CHUNK];
        let room = http::MAX_REQUEST.saturating_sub(self.input.len()).min(READ_CHUNK);
        debug_assert!(room > 0, "fill_input with a whole request buffered");
        let n = self.stream.read(&mut chunk[..room])?;
        self.input.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// While lingering: reads and drops what the client sends until it closes.
    fn discard_input(&mut self) -> Next {
        let mut chunk = [0u8; READ_CHUNK];
        for _ in 0..READS_PER_TURN {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Next::Close,
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        Next::Again
    }

    /// The deadline has passed. A request still arriving gets a 408 and the connection goes on
    /// to close through `advance` (returns true); anything else is closed now (false).
    fn expire(&mut self, date: &mut DateCache, now: Instant) -> bool {
        if self.phase != Phase::Reading {
            return false;
        }
        self.input = Vec::new();
        self.reject(http::REQUEST_TIMEOUT, date.now());
        // The 408 gets the linger time to go out; it no longer waits for the header clock.
        self.deadline = now + LINGER_TIMEOUT;
        true
    }
}

/// Connections by token: a vector of slots and a free list, so tokens are reused and the
/// vector never outgrows the busiest moment.
#[derive(Default)]
struct Slots {
    slots: Vec<Option<Connection>>,
    free: Vec<usize>,
    len: usize,
}

impl Slots {
    fn len(&self) -> usize {
        self.len
    }

    fn insert(&mut self, connection: Connection) -> Token {
        self.len += 1;
        match self.free.pop() {
            Some(index) => {
                self.slots[index] = Some(connection);
                Token(index)
            }
            None => {
                self.slots.push(Some(connection));
                Token(self.slots.len() - 1)
            }
        }
    }

    fn get_mut(&mut self, token: Token) -> Option<&mut Connection> {
        self.slots.get_mut(token.0).and_then(Option::as_mut)
    }

    fn remove(&mut self, token: Token) -> Option<Connection> {
        let connection = self.slots.get_mut(token.0).and_then(Option::take)?;
        self.len -= 1;
        self.free.push(token.0);
        Some(connection)
    }

    fn tokens(&self) -> Vec<Token> {
        self.slots.iter().enumerate().filter(|(_, slot)| slot.is_some()).map(|(i, _)| Token(i)).collect()
    }
}

/// The Date header, formatted once a second rather than once a response.
#[derive(Default)]
struct DateCache {
    second: u64,
    text: String,
}

impl DateCache {
    fn now(&mut self) -> &str {
        let second = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = http::http_date(second);
        }
        &self.text
    }
}
