//! `WorkMeter`: counts the work a function has done and reports, once, when it passes a
//! threshold. Tier-up uses it: the scalar call path and the bulk runner add to it
//! without locks, and the one caller whose work crosses the threshold starts the next
//! tier's compile. What a call or a point is worth, and the threshold, are set from
//! outside (the cost model), in integer "work units".
//!
//! The scalar path is the hot one (a call costs ~100 ns in all), so a call is counted
//! with a plain load and store, not an atomic read-modify-write: calls racing on several
//! threads may miss a few counts, which only delays a heuristic. Reporting stays exact:
//! one flag, swapped once, decides who reports.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Threshold and sync size that never trigger.
pub const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub struct WorkMeter {
    calls: AtomicU64,
    points: AtomicU64,
    // Counts when last rearmed; work is measured from there.
    calls_at_arm: AtomicU64,
    points_at_arm: AtomicU64,
    call_weight: AtomicU64,
    point_weight: AtomicU64,
    threshold: AtomicU64,
    sync_points: AtomicU64,
    reported: AtomicBool,
}

/// The meter's counters, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeterReading {
    pub calls: u64,
    pub points: u64,
    pub work: u64,
    pub threshold: u64,
}

impl WorkMeter {
    /// A meter that reports when `calls · call_weight + points · point_weight` reaches
    /// `threshold`, and asks for a synchronous decision on bulk calls of at least
    /// `sync_points` points.
    pub fn new(call_weight: u64, point_weight: u64, threshold: u64, sync_points: u64) -> Self {
        WorkMeter {
            calls: AtomicU64::new(0),
            points: AtomicU64::new(0),
            calls_at_arm: AtomicU64::new(0),
            points_at_arm: AtomicU64::new(0),
            call_weight: AtomicU64::new(call_weight),
            point_weight: AtomicU64::new(point_weight),
            threshold: AtomicU64::new(threshold),
            sync_points: AtomicU64::new(sync_points),
            reported: AtomicBool::new(false),
        }
    }

    /// Records `n` scalar calls. True for exactly one caller: the first to see the work
    /// at or past the threshold (until the next [`rearm`](Self::rearm)).
    #[inline]
    pub fn add_calls(&self, n: u64) -> bool {
        let calls = self.calls.load(Relaxed).wrapping_add(n);
        self.calls.store(calls, Relaxed);
        self.crossed(calls, self.points.load(Relaxed))
    }

    /// Records `n` points of bulk evaluation; true as for [`add_calls`](Self::add_calls).
    pub fn add_points(&self, n: u64) -> bool {
        let points = self.points.fetch_add(n, Relaxed).wrapping_add(n);
        self.crossed(self.calls.load(Relaxed), points)
    }

    fn work(&self, calls: u64, points: u64) -> u64 {
        let c = calls.saturating_sub(self.calls_at_arm.load(Relaxed));
        let p = points.saturating_sub(self.points_at_arm.load(Relaxed));
        c.saturating_mul(self.call_weight.load(Relaxed))
            .saturating_add(p.saturating_mul(self.point_weight.load(Relaxed)))
    }

    #[inline]
    fn crossed(&self, calls: u64, points: u64) -> bool {
        let threshold = self.threshold.load(Relaxed);
        threshold != NEVER
            && self.work(calls, points) >= threshold
            && !self.reported.load(Relaxed)
            && !self.reported.swap(true, Relaxed)
    }

    /// Whether a bulk call of `n` points should ask for a decision before it runs.
    pub fn wants_decision(&self, n: u64) -> bool {
        n >= self.sync_points.load(Relaxed)
    }

    /// Starts measuring work afresh from the current counts, with new weights and
    /// threshold ([`NEVER`] disarms). Call and point totals are kept.
    pub fn rearm(&self, call_weight: u64, point_weight: u64, threshold: u64, sync_points: u64) {
        self.threshold.store(NEVER, Relaxed); // no report while the weights change
        self.calls_at_arm.store(self.calls.load(Relaxed), Relaxed);
        self.points_at_arm.store(self.points.load(Relaxed), Relaxed);
        self.call_weight.store(call_weight, Relaxed);
        self.point_weight.store(point_weight, Relaxed);
        self.sync_points.store(sync_points, Relaxed);
        self.reported.store(false, Relaxed);
        self.threshold.store(threshold, Relaxed);
    }

    pub fn reading(&self) -> MeterReading {
        let (calls, points) = (self.calls.load(Relaxed), self.points.load(Relaxed));
        MeterReading {
            calls,
            points,
            work: self.work(calls, points),
            threshold: self.threshold.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn reports_once_at_the_threshold() {
        let m = WorkMeter::new(10, 1, 100, NEVER);
        assert!(!m.add_calls(9)); // 90
        assert!(!m.add_points(5)); // 95
        assert!(m.add_points(5)); // 100: crosses
        assert!(!m.add_calls(100));
        let r = m.reading();
        assert_eq!((r.calls, r.points, r.work), (109, 10, 1100));
    }

    #[test]
    fn rearm_measures_from_the_current_counts_and_disarm_never_reports() {
        let m = WorkMeter::new(1, 1, 3, 50);
        assert!(m.add_calls(5));
        assert!(m.wants_decision(50) && !m.wants_decision(49));
        m.rearm(1, 0, NEVER, NEVER);
        assert!(!m.add_calls(u64::MAX / 4) && !m.add_calls(u64::MAX / 4) && !m.add_points(7));
        assert!(!m.wants_decision(u64::MAX - 1));
        m.rearm(2, 0, 4, NEVER);
        assert_eq!(m.reading().work, 0);
        assert!(!m.add_calls(1) && m.add_calls(1));
        assert_eq!(m.reading().calls, 5 + u64::MAX / 4 * 2 + 2);
    }

    #[test]
    fn one_report_among_racing_threads() {
        let m = Arc::new(WorkMeter::new(1, 1, 10_000, NEVER));
        let reports: usize = (0..4)
            .map(|k| {
                let m = m.clone();
                std::thread::spawn(move || {
                    (0..20_000).filter(|_| if k % 2 == 0 { m.add_calls(1) } else { m.add_points(1) }).count()
                })
            })
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(reports, 1);
        assert!(m.reading().points == 40_000, "bulk points are counted exactly");
    }
}
