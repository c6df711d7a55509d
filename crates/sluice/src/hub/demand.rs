//! Demand for a stream: what keeps its worker running, as plain state (no tasks, no clock
//! reads of its own) so the reference's rules are unit-testable.
//!
//! Every consumer holds demand through an entry with a [`Policy`]:
//!
//! - [`Policy::Idle`]: re-armed by use ([`Demand::touch`]), idle after its timeout without use
//!   (an HLS viewer: segment and part fetches re-arm it; playlist polling alone does not). An
//!   idle entry stays until its holder drops it, and is woken by its holder's next request.
//! - [`Policy::For`]: held for a fixed time, then removed (a snapshot keeps a cold stream warm
//!   for the next one).
//! - [`Policy::Held`]: held until its holder drops it (a recording, a WebRTC or RTSP session).
//!
//! Countdowns start when the stream has media (the reference arms its timer at the first
//! segment). When every entry is idle (or none is left), the *idle epoch* moves on: the HLS
//! output resets its capability token then. The worker runs while an entry is active or the
//! stream is preloaded.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// How an entry holds demand; see the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Idle after this long without use.
    Idle(Duration),
    /// Removed this long after the stream has media.
    For(Duration),
    /// Active until dropped.
    Held,
}

/// An entry's identity, from [`Demand::acquire`].
pub type EntryId = u64;

#[derive(Clone, Copy, Debug)]
struct Entry {
    kind: &'static str,
    policy: Policy,
    /// `None` until the stream has media (and always for [`Policy::Held`]).
    deadline: Option<Instant>,
    idle: bool,
}

impl Entry {
    fn arm(&mut self, now: Instant) {
        self.deadline = match self.policy {
            Policy::Idle(t) | Policy::For(t) => Some(now + t),
            Policy::Held => None,
        };
    }
}

/// What [`Demand::expire`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Kinds of the entries that went idle or were removed.
    pub changed: Vec<&'static str>,
    /// No entry is active any more (the idle epoch moved on).
    pub all_idle: bool,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Demand {
    entries: BTreeMap<EntryId, Entry>,
    next_id: EntryId,
    has_media: bool,
    epoch: u64,
}

impl Demand {
    /// Adds an active entry; its countdown starts now if the stream has media.
    pub fn acquire(&mut self, kind: &'static str, policy: Policy, now: Instant) -> EntryId {
        let id = self.next_id;
        self.next_id += 1;
        let mut entry = Entry {
            kind,
            policy,
            deadline: None,
            idle: false,
        };
        if self.has_media {
            entry.arm(now);
        }
        self.entries.insert(id, entry);
        id
    }

    /// Removes an entry (its holder is gone). Returns whether it existed.
    pub fn release(&mut self, id: EntryId) -> bool {
        let existed = self.entries.remove(&id).is_some();
        if existed && self.entries.values().all(|e| e.idle) {
            self.epoch += 1;
        }
        existed
    }

    /// The entry was used: re-arm its countdown (and wake it if it was idle).
    pub fn touch(&mut self, id: EntryId, now: Instant) {
        let has_media = self.has_media;
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.idle = false;
            if has_media {
                entry.arm(now);
            }
        }
    }

    /// Wakes an idle entry (its countdown starts again); an active one keeps its countdown.
    pub fn wake(&mut self, id: EntryId, now: Instant) {
        if self.entries.get(&id).is_some_and(|e| e.idle) {
            self.touch(id, now);
        }
    }

    /// Whether the entry exists and is active.
    pub fn is_active(&self, id: EntryId) -> bool {
        self.entries.get(&id).is_some_and(|e| !e.idle)
    }

    /// The stream has media: countdowns that were waiting for it start.
    pub fn media_arrived(&mut self, now: Instant) {
        if self.has_media {
            return;
        }
        self.has_media = true;
        for entry in self.entries.values_mut().filter(|e| !e.idle) {
            entry.arm(now);
        }
    }

    /// The stream stopped for good (removed, or the server is shutting down): every entry goes
    /// idle, countdowns wait for media again, and the idle epoch moves on.
    pub fn reset(&mut self) {
        self.has_media = false;
        self.entries
            .retain(|_, e| !matches!(e.policy, Policy::For(_)));
        for entry in self.entries.values_mut() {
            entry.idle = true;
            entry.deadline = None;
        }
        self.epoch += 1;
    }

    /// The earliest deadline of an active entry.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|e| !e.idle)
            .filter_map(|e| e.deadline)
            .min()
    }

    /// Applies the deadlines that have passed: idle entries go idle, fixed-time ones are
    /// removed.
    pub fn expire(&mut self, now: Instant) -> Expired {
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for (&id, entry) in &mut self.entries {
            if !entry.idle && entry.deadline.is_some_and(|d| d <= now) {
                changed.push(entry.kind);
                match entry.policy {
                    Policy::For(_) => removed.push(id),
                    _ => entry.idle = true,
                }
            }
        }
        for id in removed {
            self.entries.remove(&id);
        }
        let all_idle = !changed.is_empty() && self.entries.values().all(|e| e.idle);
        if all_idle {
            self.epoch += 1;
        }
        Expired { changed, all_idle }
    }

    /// Whether any entry is active: the worker should run.
    pub fn is_wanted(&self) -> bool {
        self.entries.values().any(|e| !e.idle)
    }

    /// Moves on each time every entry has gone idle (or the stream was reset): what was handed
    /// out under an older epoch (an HLS token) is void.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The kinds of the active entries, sorted, each once.
    pub fn active_kinds(&self) -> Vec<&'static str> {
        let mut kinds: Vec<_> = self
            .entries
            .values()
            .filter(|e| !e.idle)
            .map(|e| e.kind)
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        kinds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(300);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn countdown_starts_with_media_and_use_extends_it() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        let hls = d.acquire("hls", Policy::Idle(T), t0);
        assert!(d.is_wanted());
        assert_eq!(d.next_deadline(), None, "no countdown before media");
        d.media_arrived(t0 + secs(10));
        assert_eq!(d.next_deadline(), Some(t0 + secs(310)));
        d.touch(hls, t0 + secs(100));
        assert_eq!(d.next_deadline(), Some(t0 + secs(400)));
        assert_eq!(d.expire(t0 + secs(399)), Expired::default());
        let epoch = d.epoch();
        let e = d.expire(t0 + secs(400));
        assert_eq!(e.changed, ["hls"]);
        assert!(e.all_idle, "the token is reset");
        assert_eq!(d.epoch(), epoch + 1);
        assert!(!d.is_wanted(), "the worker stops");
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn an_idle_entry_is_woken_by_its_holder_and_counts_again() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        d.media_arrived(t0);
        let hls = d.acquire("hls", Policy::Idle(T), t0);
        assert!(d.expire(t0 + T).all_idle);
        assert!(!d.is_active(hls));
        // A new viewer's request wakes it.
        d.wake(hls, t0 + T + secs(1));
        assert!(d.is_active(hls) && d.is_wanted());
        assert_eq!(d.next_deadline(), Some(t0 + T + secs(1) + T));
        // Waking an active entry does not extend it: only media fetches do.
        d.wake(hls, t0 + T + secs(2));
        assert_eq!(d.next_deadline(), Some(t0 + T + secs(1) + T));
    }

    #[test]
    fn a_recording_does_not_keep_the_stream_past_its_end_and_hls_stays_active() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        d.media_arrived(t0);
        let hls = d.acquire("hls", Policy::Idle(T), t0);
        let clip = d.acquire("recording", Policy::Held, t0);
        assert_eq!(d.active_kinds(), ["hls", "recording"]);
        // The recording ends: its holder drops the entry, whatever the stream's preload.
        let epoch = d.epoch();
        assert!(d.release(clip));
        assert_eq!(d.epoch(), epoch, "HLS is still active: the token stays");
        assert_eq!(d.active_kinds(), ["hls"]);
        d.expire(t0 + T);
        assert!(!d.is_active(hls));
    }

    #[test]
    fn a_fixed_hold_expires_and_is_removed() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        d.acquire("snapshot", Policy::For(secs(30)), t0);
        assert!(d.is_wanted());
        d.media_arrived(t0 + secs(2));
        let e = d.expire(t0 + secs(32));
        assert_eq!(e.changed, ["snapshot"]);
        assert!(e.all_idle);
        assert!(d.active_kinds().is_empty() && !d.is_wanted());
    }

    #[test]
    fn the_token_resets_only_when_every_entry_is_idle() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        d.media_arrived(t0);
        d.acquire("hls", Policy::Idle(secs(10)), t0);
        let session = d.acquire("webrtc", Policy::Held, t0);
        let e = d.expire(t0 + secs(10));
        assert_eq!(e.changed, ["hls"]);
        assert!(!e.all_idle, "a session is still active");
        let epoch = d.epoch();
        d.release(session);
        assert_eq!(d.epoch(), epoch + 1, "the last active entry left");
        assert!(!d.is_wanted());
    }

    #[test]
    fn reset_makes_every_entry_idle_and_waits_for_media_again() {
        let t0 = Instant::now();
        let mut d = Demand::default();
        d.media_arrived(t0);
        let hls = d.acquire("hls", Policy::Idle(T), t0);
        d.acquire("snapshot", Policy::For(T), t0);
        let epoch = d.epoch();
        d.reset();
        assert_eq!(d.epoch(), epoch + 1);
        assert!(!d.is_wanted() && d.active_kinds().is_empty());
        d.wake(hls, t0 + secs(1));
        assert_eq!(d.next_deadline(), None, "no countdown before media");
    }
}
