//! Percentiles over samples, and a lock-free log-linear histogram for processes that run
//! without an end (the camera simulator's send lateness).

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// `p50`, `p90`, `p99`, `max`, `mean` and the count of `samples` (milliseconds), as JSON; the
/// samples are sorted in place. Percentiles are nearest-rank.
pub fn summary_ms(samples: &mut [f64]) -> Value {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n == 0 {
        return json!({ "count": 0 });
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    json!({
        "count": n,
        "p50": round3(percentile(samples, 50.0)),
        "p90": round3(percentile(samples, 90.0)),
        "p99": round3(percentile(samples, 99.0)),
        "max": round3(samples[n - 1]),
        "mean": round3(mean),
    })
}

/// The nearest-rank `p`th percentile of `sorted` (ascending, not empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Rounds to three decimals (microseconds, for milliseconds) to keep JSON readable.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Sub-buckets per power of two: a bucket spans at most 1/32 (3 %) of its values.
const SUB: u64 = 32;
/// Enough buckets for every `u64`.
const BUCKETS: usize = 64 * SUB as usize;

/// A histogram of `u64` values (microseconds here) with 3 % resolution, updated with relaxed
/// atomics from any thread.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    /// Counts one value.
    pub fn record(&self, v: u64) {
        self.buckets[index(v)].fetch_add(1, Ordering::Relaxed);
    }

    /// Number of values counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// An upper bound of the `p`th percentile (the top of its bucket), or 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i);
            }
        }
        upper(BUCKETS - 1)
    }
}

fn index(v: u64) -> usize {
    if v < 2 * SUB {
        return v as usize;
    }
    let exp = 63 - u64::from(v.leading_zeros());
    let shift = exp - 5;
    ((shift + 1) * SUB + ((v >> shift) - SUB)) as usize
}

fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < 2 * SUB {
        return i;
    }
    let shift = i / SUB - 1;
    let mantissa = i % SUB + SUB;
    let top = (u128::from(mantissa + 1) << shift) - 1;
    u64::try_from(top).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut last = 0;
        for v in (0..100_000).chain([u64::MAX / 2, u64::MAX]) {
            let i = index(v);
            assert!(i >= last && i < BUCKETS, "value {v}");
            assert!(upper(i) >= v, "value {v} above its bucket");
            assert!(
                upper(i) as f64 <= v as f64 * 1.04 + 1.0,
                "value {v}: bucket too wide"
            );
            last = i;
        }
    }

    #[test]
    fn percentiles() {
        let h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.percentile(50.0);
        assert!((500..=520).contains(&p50), "{p50}");
        let p99 = h.percentile(99.0);
        assert!((990..=1023).contains(&p99), "{p99}");
        assert_eq!(Histogram::default().percentile(99.0), 0);

        let mut s = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        let j = summary_ms(&mut s);
        assert_eq!(j["p50"], 3.0);
        assert_eq!(j["max"], 5.0);
        assert_eq!(j["count"], 5);
        assert_eq!(summary_ms(&mut [])["count"], 0);
    }
}
