//! A stream's shared media state: the segment ring and a notifier for requests waiting on it.

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sluice_media::ring::SegmentRing;
use sluice_media::segmenter::Event;
use tokio::sync::watch;

/// The ring behind a lock, plus the time of its last change, which waiters watch. The lock is held only to
/// apply events or copy out what a request needs, never across an await.
pub struct MediaState {
    ring: Mutex<SegmentRing>,
    /// When the ring last changed; waiters watch it.
    version: watch::Sender<Instant>,
    closed: std::sync::atomic::AtomicBool,
}

impl MediaState {
    /// An empty ring keeping `segments` complete segments; `restart_discontinuity` as in
    /// [`crate::config::HlsConfig::restart_discontinuity`].
    pub fn new(segments: usize, restart_discontinuity: bool) -> Self {
        let mut ring = SegmentRing::new(segments);
        ring.set_mark_restarts(restart_discontinuity);
        MediaState {
            ring: Mutex::new(ring),
            version: watch::Sender::new(Instant::now()),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Locks the ring (a poisoned lock is recovered: the ring's invariants hold per call).
    pub fn ring(&self) -> MutexGuard<'_, SegmentRing> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies segmenter events and wakes every waiter.
    pub fn apply(&self, events: impl IntoIterator<Item = Event>) {
        {
            let mut ring = self.ring();
            for event in events {
                ring.apply(event);
            }
        }
        self.version.send_replace(Instant::now());
    }

    /// Marks the end of a run (see [`SegmentRing::end_run`]) and wakes every waiter.
    pub fn end_run(&self) {
        self.ring().end_run();
        self.version.send_replace(Instant::now());
    }

    /// Releases every waiter for good (server shutdown, stream removed): `wait_for` returns
    /// `None` from now on.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.version.send_replace(Instant::now());
    }

    /// Waits until `check` returns `Some` for the ring, at most `timeout`. `check` runs with the
    /// lock held, once now and once after each change; no change is missed between a check and
    /// the wait that follows it.
    pub async fn wait_for<T>(
        &self,
        timeout: Duration,
        check: impl FnMut(&SegmentRing) -> Option<T>,
    ) -> Option<T> {
        self.wait_for_timed(timeout, check).await.map(|(v, _)| v)
    }

    /// [`MediaState::wait_for`], also returning, when the request had to wait, how long after
    /// the ring change that satisfied it the waiter got going again (the publish-to-response
    /// delay of blocking requests).
    pub async fn wait_for_timed<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&SegmentRing) -> Option<T>,
    ) -> Option<(T, Option<Duration>)> {
        let mut rx = self.version.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut waited = false;
        loop {
            let changed_at = *rx.borrow_and_update();
            if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            if let Some(v) = check(&self.ring()) {
                return Some((v, waited.then(|| changed_at.elapsed())));
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => waited = true,
                _ => return None,
            }
        }
    }
}
