//! Usage from cumulative counters: CPU % is the busy time gained between two samples over the
//! wall time between them times the number of CPUs. Pure; the caller passes both samples.

use std::time::Duration;

/// CPU use in percent (0-100) of `cpus` CPUs, from cumulative busy nanoseconds `before` and
/// `after` taken `elapsed` apart. 0 when nothing can be said (no time passed, a counter reset).
pub fn cpu_percent(before_ns: u64, after_ns: u64, elapsed: Duration, cpus: u32) -> f64 {
    let wall = elapsed.as_nanos() as f64 * f64::from(cpus.max(1));
    if wall <= 0.0 || after_ns < before_ns {
        return 0.0;
    }
    ((after_ns - before_ns) as f64 / wall * 100.0).clamp(0.0, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_of_all_cpus() {
        let s = Duration::from_secs(2);
        // 1 CPU busy for 2 s of 4 CPUs = 25 %.
        assert_eq!(cpu_percent(0, 2_000_000_000, s, 4), 25.0);
        assert_eq!(cpu_percent(5, 5, s, 4), 0.0);
        assert_eq!(cpu_percent(10, 5, s, 4), 0.0, "counter reset");
        assert_eq!(cpu_percent(0, 1, Duration::ZERO, 4), 0.0);
        assert_eq!(cpu_percent(0, u64::MAX, s, 1), 100.0, "clamped");
    }
}
