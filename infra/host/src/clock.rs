//! A wall clock that tests can set (`--controllable-clock`): guests read
//! the real time plus an offset the host keeps, and `/.host/clock` reads
//! or moves it. Calendar periods that turn over at an org's midnight are
//! then tested by moving the clock, not by waiting. Only the wall clock
//! moves: monotonic time (timeouts, durations) stays real.
//!
//! Never for a deployment: anyone who can reach the host can move every
//! guest's idea of the time (and so expire or revive sessions, tokens and
//! holds).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use wasmtime_wasi::HostWallClock;

use crate::problem;
use crate::runtime::{Body, Handled};

/// The path the host answers itself when the clock is controllable.
pub const PATH: &str = "/.host/clock";

/// A clock-change body is a few dozen bytes; anything far larger is not one.
const BODY_LIMIT: usize = 4096;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The shift between the real time and the time guests read, shared by
/// every instance of every component of one runtime.
#[derive(Debug, Clone, Default)]
pub struct ClockOffset {
    /// Nanoseconds added to the real time: ±292 years, far more than a
    /// test moves, and exact, so a time set is the time read.
    nanos: Arc<AtomicI64>,
}

/// Why a clock change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfRange;

impl ClockOffset {
    /// The time guests read, in nanoseconds since the Unix epoch.
    fn now_nanos(&self) -> i128 {
        real_nanos() + i128::from(self.nanos.load(Ordering::Relaxed))
    }

    /// The time guests read, in whole Unix seconds.
    pub fn now(&self) -> i64 {
        let secs = self.now_nanos().div_euclid(NANOS_PER_SECOND);
        i64::try_from(secs).unwrap_or(i64::MAX)
    }

    /// The offset from the real time, in whole seconds (rounded).
    pub fn offset_seconds(&self) -> i64 {
        let nanos = i128::from(self.nanos.load(Ordering::Relaxed));
        let rounded = (nanos + NANOS_PER_SECOND / 2).div_euclid(NANOS_PER_SECOND);
        i64::try_from(rounded).unwrap_or(i64::MAX)
    }

    /// Moves the clock so that it reads `unix_seconds` now.
    pub fn set_now(&self, unix_seconds: i64) -> Result<(), OutOfRange> {
        let target = i128::from(unix_seconds) * NANOS_PER_SECOND;
        let offset = checked_offset(target - real_nanos(), target)?;
        self.nanos.store(offset, Ordering::Relaxed);
        Ok(())
    }

    /// Moves the clock by `seconds` (backwards when negative).
    pub fn advance(&self, seconds: i64) -> Result<(), OutOfRange> {
        let step = i128::from(seconds) * NANOS_PER_SECOND;
        // An update that sees the current offset, so two advances racing
        // both count.
        let mut refused = false;
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                let offset = i128::from(current) + step;
                let changed = checked_offset(offset, real_nanos() + offset);
                refused = changed.is_err();
                changed.ok()
            });
        if refused { Err(OutOfRange) } else { Ok(()) }
    }

    /// The wall clock for one instance's WASI context.
    pub fn wall_clock(&self) -> OffsetWallClock {
        OffsetWallClock(self.clone())
    }
}

/// An offset that fits, for a time guests can read: not before 1970
/// (WASI's wall clock has no earlier times).
fn checked_offset(offset: i128, reads: i128) -> Result<i64, OutOfRange> {
    if reads < 0 {
        return Err(OutOfRange);
    }
    i64::try_from(offset).map_err(|_| OutOfRange)
}

fn real_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// `wasi:clocks/wall-clock` reading the real time shifted by a
/// [`ClockOffset`]; each reading sees the offset as it is then, so a
/// reused instance follows every change.
pub struct OffsetWallClock(ClockOffset);

impl HostWallClock for OffsetWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let nanos = self.0.now_nanos().max(0);
        let secs = nanos / NANOS_PER_SECOND;
        let subsec = (nanos % NANOS_PER_SECOND) as u32;
        Duration::new(u64::try_from(secs).unwrap_or(u64::MAX), subsec)
    }
}

/// A change to the clock: exactly one of the two fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    #[serde(default)]
    now: Option<i64>,
    #[serde(default)]
    advance_seconds: Option<i64>,
}

const EXPECTED_BODY: &str =
    "the body must be {\"now\": <unix seconds>} or {\"advance_seconds\": <seconds>}";

/// Answers a request to [`PATH`]: `GET` reads the clock, `PUT` sets or
/// advances it and reads it back.
pub async fn answer<B>(clock: &ClockOffset, req: http::Request<B>) -> Handled
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let response = match *req.method() {
        http::Method::GET | http::Method::HEAD => reading(clock),
        http::Method::PUT => match change(clock, req.into_body()).await {
            Ok(()) => reading(clock),
            Err(response) => response,
        },
        _ => problem::method_not_allowed("GET, HEAD, PUT"),
    };
    Handled {
        response,
        route: Some(PATH.to_string()),
        component: None,
    }
}

async fn change<B>(clock: &ClockOffset, body: B) -> Result<(), http::Response<Body>>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = Limited::new(body, BODY_LIMIT)
        .collect()
        .await
        .map_err(|_| problem::bad_request("the request body could not be read"))?
        .to_bytes();
    let changed = match serde_json::from_slice::<ClockChange>(&bytes) {
        Ok(ClockChange {
            now: Some(now),
            advance_seconds: None,
        }) => clock.set_now(now),
        Ok(ClockChange {
            now: None,
            advance_seconds: Some(seconds),
        }) => clock.advance(seconds),
        _ => return Err(problem::bad_request(EXPECTED_BODY)),
    };
    changed.map_err(|OutOfRange| {
        problem::bad_request(
            "the clock cannot read a time before 1970 or more than 292 years from the real time",
        )
    })
}

fn reading(clock: &ClockOffset) -> http::Response<Body> {
    let body = serde_json::json!({
        "now": clock.now(),
        "offset_seconds": clock.offset_seconds(),
    })
    .to_string();
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(problem::full(body))
        .unwrap_or_else(|_| problem::internal())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_set_is_the_time_read() {
        let clock = ClockOffset::default();
        assert_eq!(clock.set_now(2_000_000_000), Ok(()));
        // The real clock moves on while the test runs, a little.
        assert!((2_000_000_000..2_000_000_060).contains(&clock.now()));
    }

    #[test]
    fn advancing_adds_to_the_offset() {
        let clock = ClockOffset::default();
        assert_eq!(clock.set_now(1_000_000_000), Ok(()));
        assert_eq!(clock.advance(86_400), Ok(()));
        assert!((1_000_086_400..1_000_086_460).contains(&clock.now()));
        assert_eq!(clock.advance(-86_400), Ok(()));
        assert!((1_000_000_000..1_000_000_060).contains(&clock.now()));
    }

    #[test]
    fn times_before_1970_or_beyond_the_offsets_range_are_refused() {
        let clock = ClockOffset::default();
        assert_eq!(clock.set_now(-1), Err(OutOfRange));
        assert_eq!(clock.set_now(i64::MAX), Err(OutOfRange));
        assert_eq!(clock.advance(i64::MIN), Err(OutOfRange));
        assert_eq!(clock.offset_seconds(), 0);
    }

    #[test]
    fn the_wall_clock_follows_later_changes() {
        let clock = ClockOffset::default();
        let wall = clock.wall_clock();
        assert_eq!(clock.set_now(1_500_000_000), Ok(()));
        assert!((1_500_000_000..1_500_000_060).contains(&wall.now().as_secs()));
    }
}
