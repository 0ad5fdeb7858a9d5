//! How long a component instance lives: how many requests it serves in all
//! and at once, how long it may sit idle, and how long a request may run.
//! The defaults and the flag syntax are Spin's (`spin up`), so the host
//! exercises the app the way production runs it.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A setting given as one value or as a range `a..b`; a range is drawn
/// again for every instance, so instances do not all expire together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread<T> {
    /// The smallest value drawn.
    pub low: T,
    /// The largest value drawn (equal to `low` for a single value).
    pub high: T,
}

impl<T: Copy> Spread<T> {
    /// Always `value`.
    pub const fn fixed(value: T) -> Self {
        Spread {
            low: value,
            high: value,
        }
    }
}

impl Spread<usize> {
    /// One value from the range, uniformly.
    pub fn draw(&self) -> usize {
        let span = (self.high - self.low) as u64;
        if span == 0 {
            return self.low;
        }
        self.low + (random() % (span + 1)) as usize
    }
}

impl Spread<Duration> {
    /// One duration from the range, uniformly (to the microsecond).
    pub fn draw(&self) -> Duration {
        let span = (self.high - self.low).as_micros() as u64;
        if span == 0 {
            return self.low;
        }
        self.low + Duration::from_micros(random() % (span + 1))
    }
}

/// Enough randomness to spread expirations; not for secrets.
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

/// Instance reuse settings (Spin's `--max-instance-reuse-count`,
/// `--max-instance-concurrent-reuse-count`, `--idle-instance-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceReuse {
    /// Requests one instance serves before it is dropped.
    pub max_reuse: Spread<usize>,
    /// Requests one instance serves at the same time.
    pub max_concurrent: Spread<usize>,
    /// How long an instance with nothing to do is kept.
    pub idle_timeout: Spread<Duration>,
}

impl Default for InstanceReuse {
    /// Spin's defaults: 128 requests, 16 at once, 1 s idle.
    fn default() -> Self {
        InstanceReuse {
            max_reuse: Spread::fixed(128),
            max_concurrent: Spread::fixed(16),
            idle_timeout: Spread::fixed(Duration::from_secs(1)),
        }
    }
}

impl InstanceReuse {
    /// A fresh instance for every request.
    pub const OFF: InstanceReuse = InstanceReuse {
        max_reuse: Spread::fixed(1),
        max_concurrent: Spread::fixed(1),
        idle_timeout: Spread::fixed(Duration::ZERO),
    };
}

/// Parses a count or a range of counts `a..b`, each at least 1.
pub fn parse_count_spread(text: &str) -> Result<Spread<usize>, String> {
    let count = |part: &str| {
        part.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("`{part}` is not a whole number of at least 1"))
    };
    spread(text, count)
}

/// Parses a duration or a range of durations `a..b` (see [`parse_duration`]).
pub fn parse_duration_spread(text: &str) -> Result<Spread<Duration>, String> {
    spread(text, parse_duration)
}

fn spread<T: PartialOrd + Copy>(
    text: &str,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<Spread<T>, String> {
    let spread = match text.split_once("..") {
        Some((low, high)) => Spread {
            low: one(low)?,
            high: one(high)?,
        },
        None => Spread::fixed(one(text)?),
    };
    if spread.low > spread.high {
        return Err(format!("the range `{text}` is empty"));
    }
    Ok(spread)
}

/// Parses a duration such as `500ms`, `5s`, `2m` or `1h`; a bare number is
/// seconds. At most a day: longer is a typo, not a setting.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("unknown unit `{other}` (use ms, s, m or h)")),
    };
    number
        .parse::<f64>()
        .ok()
        .map(|n| n * scale)
        .filter(|s| s.is_finite() && (0.0..=86_400.0).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{text}` is not a duration such as 500ms or 5s"))
}
