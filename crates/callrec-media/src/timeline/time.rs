//! Time on the caller's arrival clock. The media core never reads a clock:
//! every instant it knows is one of these, given as an argument.

use std::time::Duration;

/// A point on the caller's arrival clock, in nanoseconds from any origin.
///
/// The media core never reads a clock: every arrival time and every `now`
/// is one of these, given by the caller (a socket's receive time, a pcap
/// timestamp, a simulator's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MediaTime(pub u64);

impl MediaTime {
    /// The origin of the clock.
    pub const ZERO: MediaTime = MediaTime(0);

    /// From nanoseconds.
    pub const fn from_nanos(nanos: u64) -> Self {
        MediaTime(nanos)
    }

    /// From microseconds.
    pub const fn from_micros(micros: u64) -> Self {
        MediaTime(micros * 1_000)
    }

    /// From milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        MediaTime(millis * 1_000_000)
    }

    /// From seconds.
    pub const fn from_secs(secs: u64) -> Self {
        MediaTime(secs * 1_000_000_000)
    }

    /// From seconds as a float (negative values clamp to zero).
    pub fn from_secs_f64(secs: f64) -> Self {
        MediaTime((secs * 1e9).round().max(0.0) as u64)
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Seconds since the origin, as a float.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// The duration since `earlier`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: MediaTime) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// This time plus `d` (saturating).
    pub fn saturating_add(self, d: Duration) -> MediaTime {
        MediaTime(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// This time minus `d` (saturating at zero).
    pub fn saturating_sub(self, d: Duration) -> MediaTime {
        MediaTime(
            self.0
                .saturating_sub(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
}

impl std::ops::Add<Duration> for MediaTime {
    type Output = MediaTime;
    fn add(self, d: Duration) -> MediaTime {
        self.saturating_add(d)
    }
}
