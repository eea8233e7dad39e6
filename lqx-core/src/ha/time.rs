//! Instants of one machine's monotonic clock, in milliseconds from an arbitrary origin.
//!
//! HA never compares readings of two machines' clocks: the control plane measures lease
//! ages on its own clock, each agent measures its self-fence deadline on its own clock.
//! The manager converts `tokio::time::Instant` with `MonoInstant::from_duration(now - origin)`.

use std::{
    fmt,
    ops::{Add, Sub},
    time::Duration,
};

/// A reading of a monotonic clock (milliseconds since that clock's origin).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct MonoInstant(u64);

impl MonoInstant {
    pub const ZERO: MonoInstant = MonoInstant(0);

    pub const fn from_millis(ms: u64) -> Self {
        MonoInstant(ms)
    }
    /// The instant `d` after the clock's origin.
    pub fn from_duration(d: Duration) -> Self {
        MonoInstant(millis(d))
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    /// Time elapsed since `earlier`, zero when `earlier` is later.
    pub fn saturating_since(self, earlier: MonoInstant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A duration in whole milliseconds (the resolution of HA timing).
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Add<Duration> for MonoInstant {
    type Output = MonoInstant;
    fn add(self, d: Duration) -> MonoInstant {
        MonoInstant(self.0.saturating_add(millis(d)))
    }
}

impl Sub<Duration> for MonoInstant {
    type Output = MonoInstant;
    fn sub(self, d: Duration) -> MonoInstant {
        MonoInstant(self.0.saturating_sub(millis(d)))
    }
}

impl fmt::Display for MonoInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_displays_seconds() {
        let t = MonoInstant::from_millis(1_500);
        assert_eq!(t + Duration::from_secs(2), MonoInstant::from_millis(3_500));
        assert_eq!(t - Duration::from_secs(5), MonoInstant::ZERO);
        assert_eq!(
            (t + Duration::from_millis(250)).saturating_since(t),
            Duration::from_millis(250)
        );
        assert_eq!(t.saturating_since(t + Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(t.to_string(), "1.500s");
    }
}
