//! `WorkMeter`: counts the work a function has done and reports, once, when it passes a
//! threshold. Tier-up uses it: the scalar call path and the bulk runner add to it
//! without locks, and the one caller whose work crosses the threshold starts the next
//! tier's compile. What a call or a point is worth, and the threshold, are set from
//! outside (the cost model), in integer "work units".

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Threshold and sync size that never trigger.
pub const NEVER: u64 = u64::MAX;

#[derive(Debug)]
pub struct WorkMeter {
    calls: AtomicU64,
    points: AtomicU64,
    work: AtomicU64,
    call_weight: AtomicU64,
    point_weight: AtomicU64,
    threshold: AtomicU64,
    sync_points: AtomicU64,
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
            work: AtomicU64::new(0),
            call_weight: AtomicU64::new(call_weight),
            point_weight: AtomicU64::new(point_weight),
            threshold: AtomicU64::new(threshold),
            sync_points: AtomicU64::new(sync_points),
        }
    }

    /// Records `n` scalar calls. True for exactly one caller: the one that crossed the
    /// threshold (until the next [`rearm`](Self::rearm)).
    pub fn add_calls(&self, n: u64) -> bool {
        self.calls.fetch_add(n, Relaxed);
        self.add_work(n.saturating_mul(self.call_weight.load(Relaxed)))
    }

    /// Records `n` points of bulk evaluation; true as for [`add_calls`](Self::add_calls).
    pub fn add_points(&self, n: u64) -> bool {
        self.points.fetch_add(n, Relaxed);
        self.add_work(n.saturating_mul(self.point_weight.load(Relaxed)))
    }

    fn add_work(&self, w: u64) -> bool {
        if w == 0 {
            return false;
        }
        // Work only grows between rearms, so exactly one fetch_add steps over the threshold.
        let before = self.work.fetch_add(w, Relaxed);
        let threshold = self.threshold.load(Relaxed);
        before < threshold && before.saturating_add(w) >= threshold
    }

    /// Whether a bulk call of `n` points should ask for a decision before it runs.
    pub fn wants_decision(&self, n: u64) -> bool {
        n >= self.sync_points.load(Relaxed)
    }

    /// Starts counting work afresh with new weights and threshold ([`NEVER`] disarms).
    /// Call and point totals are kept.
    pub fn rearm(&self, call_weight: u64, point_weight: u64, threshold: u64, sync_points: u64) {
        self.threshold.store(NEVER, Relaxed); // no report while the weights change
        self.work.store(0, Relaxed);
        self.call_weight.store(call_weight, Relaxed);
        self.point_weight.store(point_weight, Relaxed);
        self.sync_points.store(sync_points, Relaxed);
        self.threshold.store(threshold, Relaxed);
    }

    pub fn reading(&self) -> MeterReading {
        MeterReading {
            calls: self.calls.load(Relaxed),
            points: self.points.load(Relaxed),
            work: self.work.load(Relaxed),
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
        assert_eq!((r.calls, r.points), (109, 10));
    }

    #[test]
    fn rearm_resets_work_and_disarm_never_reports() {
        let m = WorkMeter::new(1, 1, 3, 50);
        assert!(m.add_calls(5));
        assert!(m.wants_decision(50) && !m.wants_decision(49));
        m.rearm(1, 0, NEVER, NEVER);
        assert!(!m.add_calls(u64::MAX / 4) && !m.add_calls(u64::MAX / 4) && !m.add_points(7));
        assert!(!m.wants_decision(u64::MAX - 1));
        m.rearm(2, 0, 4, NEVER);
        assert!(!m.add_calls(1) && m.add_calls(1));
        assert_eq!(m.reading().calls, 5 + u64::MAX / 4 * 2 + 2);
    }

    #[test]
    fn one_report_among_racing_threads() {
        let m = Arc::new(WorkMeter::new(1, 0, 10_000, NEVER));
        let reports: usize = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || (0..5_000).filter(|_| m.add_calls(1)).count())
            })
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(reports, 1);
    }
}
