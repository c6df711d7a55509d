//! A stream's outputs and their idle timers, as plain state (no tasks, no clock reads), so the
//! reference's rules are unit-testable:
//!
//! - An output's countdown starts when the stream has media (the reference arms its timer at
//!   the first segment), and segment or part fetches re-arm it; playlist polling alone does not.
//! - When an output's timer fires it becomes idle; it is removed unless the stream is
//!   preloaded (a recorder output is always removed).
//! - When every remaining output is idle, the access token is reset.
//! - When no output is left (and the stream is not preloaded), the worker stops.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The kinds of output a stream has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// HLS viewers.
    Hls,
    /// A recording in progress.
    Recorder,
}

#[derive(Clone, Copy, Debug)]
struct Output {
    timeout: Duration,
    /// `None` until the stream has media.
    deadline: Option<Instant>,
    idle: bool,
}

/// What [`Outputs::expire`] decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Outputs removed.
    pub removed: Vec<OutputKind>,
    /// Every remaining output is idle (true when none remain): reset the token.
    pub all_idle: bool,
    /// No output remains.
    pub empty: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Outputs {
    map: BTreeMap<OutputKind, Output>,
    has_media: bool,
}

impl Outputs {
    /// Adds an output if it is missing (an existing one is woken instead). Returns whether it
    /// was added.
    pub fn add(&mut self, kind: OutputKind, timeout: Duration, now: Instant) -> bool {
        let deadline = self.has_media.then_some(now + timeout);
        match self.map.get_mut(&kind) {
            Some(output) => {
                output.timeout = timeout;
                if output.idle {
                    output.idle = false;
                    output.deadline = deadline;
                }
                false
            }
            None => {
                self.map.insert(
                    kind,
                    Output {
                        timeout,
                        deadline,
                        idle: false,
                    },
                );
                true
            }
        }
    }

    /// Removes an output; returns whether it existed.
    pub fn remove(&mut self, kind: OutputKind) -> bool {
        self.map.remove(&kind).is_some()
    }

    /// A consumer used the output (a segment or part fetch): re-arm its timer.
    pub fn touch(&mut self, kind: OutputKind, now: Instant) {
        if let Some(output) = self.map.get_mut(&kind) {
            output.idle = false;
            output.deadline = Some(now + output.timeout);
        }
    }

    /// The stream has media: timers that were waiting for it start counting.
    pub fn media_arrived(&mut self, now: Instant) {
        if self.has_media {
            return;
        }
        self.has_media = true;
        for output in self.map.values_mut() {
            if output.deadline.is_none() {
                output.deadline = Some(now + output.timeout);
            }
        }
    }

    /// The earliest deadline of an output that is not idle yet.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.map
            .values()
            .filter(|o| !o.idle)
            .filter_map(|o| o.deadline)
            .min()
    }

    /// Fires the timers whose deadline has passed.
    pub fn expire(&mut self, now: Instant, preload: bool) -> Expired {
        let mut removed = Vec::new();
        for (&kind, output) in &mut self.map {
            if !output.idle && output.deadline.is_some_and(|d| d <= now) {
                output.idle = true;
                if !preload || kind == OutputKind::Recorder {
                    removed.push(kind);
                }
            }
        }
        for kind in &removed {
            self.map.remove(kind);
        }
        Expired {
            removed,
            all_idle: self.map.values().all(|o| o.idle),
            empty: self.map.is_empty(),
        }
    }

    /// Whether the output exists and is not idle.
    pub fn is_active(&self, kind: OutputKind) -> bool {
        self.map.get(&kind).is_some_and(|o| !o.idle)
    }

    /// Whether any output exists.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The outputs that exist.
    pub fn kinds(&self) -> Vec<OutputKind> {
        self.map.keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(300);

    #[test]
    fn countdown_starts_with_media_and_fetches_extend_it() {
        let t0 = Instant::now();
        let mut o = Outputs::default();
        assert!(o.add(OutputKind::Hls, T, t0));
        assert_eq!(o.next_deadline(), None, "no countdown before media");
        o.media_arrived(t0 + Duration::from_secs(10));
        assert_eq!(o.next_deadline(), Some(t0 + Duration::from_secs(310)));
        o.touch(OutputKind::Hls, t0 + Duration::from_secs(100));
        assert_eq!(o.next_deadline(), Some(t0 + Duration::from_secs(400)));
        assert_eq!(
            o.expire(t0 + Duration::from_secs(399), false),
            Expired {
                removed: vec![],
                all_idle: false,
                empty: false
            }
        );
        let e = o.expire(t0 + Duration::from_secs(400), false);
        assert_eq!(e.removed, [OutputKind::Hls]);
        assert!(e.empty && e.all_idle);
    }

    #[test]
    fn preload_keeps_the_hls_output_but_it_goes_idle() {
        let t0 = Instant::now();
        let mut o = Outputs::default();
        o.media_arrived(t0);
        o.add(OutputKind::Hls, T, t0);
        let e = o.expire(t0 + T, true);
        assert_eq!(e.removed, []);
        assert!(e.all_idle, "token reset");
        assert!(!e.empty);
        assert!(!o.is_active(OutputKind::Hls));
        assert_eq!(o.next_deadline(), None);
        // A new viewer wakes it.
        assert!(!o.add(OutputKind::Hls, T, t0 + T));
        assert!(o.is_active(OutputKind::Hls));
    }

    #[test]
    fn recorder_is_removed_even_when_preloaded_and_hls_stays_active() {
        let t0 = Instant::now();
        let mut o = Outputs::default();
        o.media_arrived(t0);
        o.add(OutputKind::Hls, T, t0);
        o.add(OutputKind::Recorder, Duration::from_secs(30), t0);
        let e = o.expire(t0 + Duration::from_secs(30), true);
        assert_eq!(e.removed, [OutputKind::Recorder]);
        assert!(!e.all_idle);
        assert_eq!(o.kinds(), [OutputKind::Hls]);
    }
}
