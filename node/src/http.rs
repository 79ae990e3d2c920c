//! HTTP/1.0 and HTTP/1.1 messages for the status API: parsing a request (head by `httparse`,
//! body framed by Content-Length), deciding whether the connection stays open, and writing a
//! response. No I/O here; `http_server` moves the bytes.

use std::fmt::Write as _;

/// Request line and headers together; a longer head is answered 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// The API takes no request body; a small one is read and ignored, a larger one answered 413.
pub const MAX_BODY: usize = 1024;
/// The most a connection ever buffers: any complete request fits.
pub const MAX_REQUEST: usize = MAX_HEAD + MAX_BODY;
const MAX_HEADERS: usize = 64;

pub const BAD_REQUEST: u16 = 400;
pub const REQUEST_TIMEOUT: u16 = 408;
pub const CONTENT_TOO_LARGE: u16 = 413;
pub const HEADERS_TOO_LARGE: u16 = 431;
pub const SERVICE_UNAVAILABLE: u16 = 503;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// Whether the connection stays open after the response, and what the response must say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// The response says `Connection: close` and the server closes after it.
    Close,
    /// HTTP/1.1: open by default, nothing to say.
    KeepAlive,
    /// HTTP/1.0 that asked for keep-alive: the response must say `Connection: keep-alive`.
    KeepAliveAnnounced,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent, query included.
    pub target: &'a str,
    pub version: Version,
    pub persistence: Persistence,
}

impl Request<'_> {
    /// The target without its query: what routes match on.
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target, |(path, _)| path)
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// The buffer holds the start of a request; read more.
    Incomplete,
    /// A whole request, head and body, is the first `len` bytes of the buffer.
    Complete { request: Request<'a>, len: usize },
    /// Not a request this server takes: answer with this status and close.
    Rejected(u16),
}

/// Parses the request at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut head = httparse::Request::new(&mut headers);
    let head_len = match head.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD => len,
        Ok(httparse::Status::Complete(_)) => return Parsed::Rejected(HEADERS_TOO_LARGE),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => return Parsed::Rejected(HEADERS_TOO_LARGE),
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Rejected(HEADERS_TOO_LARGE),
        Err(_) => return Parsed::Rejected(BAD_REQUEST),
    };
    let body_len = match body_length(head.headers) {
        Ok(len) => len,
        Err(status) => return Parsed::Rejected(status),
    };
    let len = head_len + body_len;
    if buf.len() < len {
        return Parsed::Incomplete;
    }
    let version = if head.version == Some(0) { Version::Http10 } else { Version::Http11 };
    let request = Request {
        method: head.method.expect("a complete head has a method"),
        target: head.path.expect("a complete head has a target"),
        version,
        persistence: persistence(version, head.headers),
    };
    Parsed::Complete { request, len }
}

/// The body's length from Content-Length. Chunked bodies are refused rather than decoded: the
/// API takes no body, and a request with both headers is a smuggling attempt.
fn body_length(headers: &[httparse::Header]) -> Result<usize, u16> {
    if headers.iter().any(|h| h.name.eq_ignore_ascii_case("transfer-encoding")) {
        let has_length = headers.iter().any(|h| h.name.eq_ignore_ascii_case("content-length"));
        return Err(if has_length { BAD_REQUEST } else { CONTENT_TOO_LARGE });
    }
    let mut length = None;
    for header in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-length")) {
        let value = std::str::from_utf8(header.value).map_err(|_| BAD_REQUEST)?.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BAD_REQUEST);
        }
        // Too many digits for u64 is too large all the same.
        let value: u64 = value.parse().unwrap_or(u64::MAX);
        if length.is_some_and(|seen| seen != value) {
            return Err(BAD_REQUEST);
        }
        length = Some(value);
    }
    match length {
        Some(len) if len > MAX_BODY as u64 => Err(CONTENT_TOO_LARGE),
        Some(len) => Ok(len as usize),
        None => Ok(0),
    }
}

/// HTTP/1.1 persists unless the client says `close`; HTTP/1.0 closes unless it says `keep-alive`.
fn persistence(version: Version, headers: &[httparse::Header]) -> Persistence {
    let says = |token: &str| {
        headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("connection"))
            .flat_map(|h| h.value.split(|&b| b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    };
    match version {
        _ if says("close") => Persistence::Close,
        Version::Http11 => Persistence::KeepAlive,
        Version::Http10 if says("keep-alive") => Persistence::KeepAliveAnnounced,
        Version::Http10 => Persistence::Close,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// The methods a 405 must list.
    pub allow: Option<&'static str>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: String) -> Self {
        Response { status, content_type, body, allow: None }
    }

    /// A plain-text answer the server gives by itself, such as 400 or 503.
    pub fn error(status: u16) -> Self {
        let body = format!("{}\n", reason(status).to_ascii_lowercase());
        Response::new(status, "text/plain; charset=utf-8", body)
    }
}

/// Appends `response` to `out`. A HEAD request gets the head only, with the length the body
/// would have.
pub fn write_response(
    out: &mut Vec<u8>,
    response: &Response,
    version: Version,
    persistence: Persistence,
    head_only: bool,
    date: &str,
) {
    let version = match version {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    };
    let mut head = String::with_capacity(160);
    let status = response.status;
    let _ = write!(head, "{version} {status} {}\r\nDate: {date}\r\n", reason(status));
    let _ = write!(head, "Content-Type: {}\r\n", response.content_type);
    let _ = write!(head, "Content-Length: {}\r\n", response.body.len());
    if let Some(methods) = response.allow {
        let _ = write!(head, "Allow: {methods}\r\n");
    }
    match persistence {
        Persistence::Close => head.push_str("Connection: close\r\n"),
        Persistence::KeepAlive => {}
        Persistence::KeepAliveAnnounced => head.push_str("Connection: keep-alive\r\n"),
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    if !head_only {
        out.extend_from_slice(response.body.as_bytes());
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The Date header's IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix_seconds: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let days = unix_seconds / 86_400;
    let seconds = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[month as usize - 1],
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Year, month (1-12) and day of the month of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(raw: &str) -> (Request<'_>, usize) {
        match parse(raw.as_bytes()) {
            Parsed::Complete { request, len } => (request, len),
            other => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_connection_header() {
        let cases = [
            ("GET / HTTP/1.1\r\n\r\n", Persistence::KeepAlive),
            ("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", Persistence::Close),
            ("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n", Persistence::Close),
            ("GET / HTTP/1.0\r\n\r\n", Persistence::Close),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", Persistence::KeepAliveAnnounced),
            ("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", Persistence::Close),
        ];
        for (raw, expected) in cases {
            assert_eq!(complete(raw).0.persistence, expected, "{raw:?}");
        }
    }

    #[test]
    fn a_request_is_complete_only_with_its_whole_body() {
        let raw = "POST /x?y=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET";
        assert_eq!(parse(&raw.as_bytes()[..raw.len() - 5]), Parsed::Incomplete);
        let (request, len) = complete(raw);
        assert_eq!((request.method, request.path(), len), ("POST", "/x", raw.len() - 3));
        assert_eq!(parse(b"GET /healthz HTT"), Parsed::Incomplete);
    }

    #[test]
    fn oversized_and_malformed_requests_are_rejected() {
        let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(long_header.as_bytes()), Parsed::Rejected(431));
        assert_eq!(parse(&long_header.as_bytes()[..MAX_HEAD]), Parsed::Rejected(431));
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: 1\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(parse(many.as_bytes()), Parsed::Rejected(431));
        let big_body = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
        assert_eq!(parse(big_body.as_bytes()), Parsed::Rejected(413));
        let huge = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        assert_eq!(parse(huge.as_bytes()), Parsed::Rejected(413));
        assert_eq!(parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), Parsed::Rejected(413));
        for raw in [
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "\x16\x03\x01\x02\x00\x01\x00\x01\x03\x03",
        ] {
            assert_eq!(parse(raw.as_bytes()), Parsed::Rejected(400), "{raw:?}");
        }
    }

    #[test]
    fn responses_carry_length_and_connection() {
        let response = Response::new(200, "text/plain; charset=utf-8", "ok\n".into());
        let mut out = Vec::new();
        write_response(&mut out, &response, Version::Http10, Persistence::KeepAliveAnnounced, false, "D");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.0 200 OK\r\nDate: D\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n"
        );
        let mut out = Vec::new();
        write_response(&mut out, &Response::error(431), Version::Http11, Persistence::Close, true, "D");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{text}");
        assert!(text.ends_with("Content-Length: 32\r\nConnection: close\r\n\r\n"), "{text}");
    }

    #[test]
    fn dates_are_imf_fixdate() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(4_133_980_799), "Fri, 31 Dec 2100 23:59:59 GMT");
    }
}
