//! The one retry policy of every registry request: what is worth another attempt (408, 429,
//! 5xx gateways and unavailability, a connection reset or dropped, a timeout) and how long to
//! wait first (exponential backoff with full jitter, or the server's `Retry-After`, capped).
//! Answers such as 400, 403 or 404 are never retried: asking again changes nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many times a request is tried in all, unless told otherwise (net::NetSettings).
pub const DEFAULT_ATTEMPTS: u32 = 5;
pub const ENV_ATTEMPTS: &str = "XTASK_NET_ATTEMPTS";
/// The first backoff, short: most 503s and resets are blips, and a push makes a hundred
/// requests (with one in ten answered 503, a push costs 1.14x the clean one; 1.70x with 0.5 s
/// doubling, see docs/benchmarks.md). Each retry waits `GROWTH` times longer, so five attempts
/// still span about 8 s, long enough for a registry that restarts.
const BASE_DELAY: Duration = Duration::from_millis(100);
const GROWTH: u32 = 4;
/// The longest wait between two attempts, whatever a `Retry-After` asks.
const MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
}

impl RetryPolicy {
    /// The wait before attempt `next` (2 for the first retry): the server's `retry_after` if it
    /// gave one, else a random time up to BASE_DELAY * GROWTH^(next-2); capped at MAX_DELAY.
    pub fn delay(&self, next: u32, retry_after: Option<Duration>) -> Duration {
        let wait = match retry_after {
            Some(asked) => asked,
            None => {
                let ceiling =
                    BASE_DELAY.saturating_mul(GROWTH.saturating_pow(next.saturating_sub(2).min(16)));
                ceiling.mul_f64(jitter())
            }
        };
        wait.min(MAX_DELAY)
    }
}

/// HTTP statuses that mean "not now" rather than "no".
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Transport failures that another attempt may not meet: a connection reset, dropped or
/// refused after the registry answered before, or a timeout.
pub fn is_transient_error(err: &ureq::Error) -> bool {
    use std::io::ErrorKind::*;
    match err {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            ConnectionReset | ConnectionAborted | ConnectionRefused | BrokenPipe | UnexpectedEof | TimedOut
        ),
        ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// A `Retry-After` value: seconds, or an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`), as a
/// wait from `now`. Written by hand: one date format, no date crate needed for it.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = parse_http_date(value)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// IMF-fixdate, the HTTP-date every server sends: seconds since the epoch.
fn parse_http_date(value: &str) -> Option<u64> {
    let mut parts = value.split_whitespace();
    let (_weekday, day, month, year, time, zone) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if zone != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let (day, year): (u64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let mut clock = time.split(':').map(|p| p.parse::<u64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let days = days_from_civil(year, month, day);
    u64::try_from(days).ok().map(|days| days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = month as i64;
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A number in [0, 1): the hasher's per-process random keys, so no random crate is needed.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos());
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_not_now_answers_are_retried() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [200, 201, 400, 401, 403, 404, 405, 409, 501] {
            assert!(!is_transient_status(status), "{status}");
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds_and_as_an_http_date() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        // RFC 9110's example date, 7 s after `now`.
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + Duration::from_secs(60)),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped_and_retry_after_wins() {
        let policy = RetryPolicy { attempts: 5 };
        for next in 2..=5 {
            let ceiling = BASE_DELAY * GROWTH.pow(next - 2);
            let waits: Vec<Duration> = (0..20).map(|_| policy.delay(next, None)).collect();
            assert!(waits.iter().all(|w| *w < ceiling), "{next}: {waits:?}");
            assert!(waits.iter().any(|w| *w != waits[0]), "{next}: no jitter in {waits:?}");
        }
        assert!(policy.delay(40, None) <= MAX_DELAY);
        assert_eq!(policy.delay(2, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(policy.delay(2, Some(Duration::from_secs(3600))), MAX_DELAY);
    }
}
