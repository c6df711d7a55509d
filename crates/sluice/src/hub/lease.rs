//! Leases: the handles through which outputs hold a stream's [`Demand`].
//!
//! A [`Lease`] is RAII: dropping it releases its demand. Its holder re-arms it by use
//! ([`Lease::touch`]) or wakes it when it went idle ([`Lease::wake`]); [`Demands::hold_for`]
//! holds demand for a fixed time without a handle. Every change is reported to the stream
//! (through the hook it installs), which starts or stops its worker and re-reads deadlines.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

use super::demand::{Demand, EntryId, Policy};

/// Called after every change of demand, with no lock held.
type Hook = Box<dyn Fn() + Send + Sync>;

/// A stream's demand, shared by its leases and its lifecycle.
#[derive(Default)]
pub struct Demands {
    state: Mutex<Demand>,
    /// Wakes the stream's idle watcher when deadlines may have changed.
    changed: Notify,
    hook: OnceLock<Hook>,
}

impl Demands {
    /// Installs the stream's hook (once).
    pub(super) fn set_hook(&self, hook: Hook) {
        let _ = self.hook.set(hook);
    }

    /// Locks the state. Lock order: a stream's worker lock, then this; never the other way.
    pub(super) fn state(&self) -> MutexGuard<'_, Demand> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves when demand changed after it was enabled (see [`tokio::sync::Notify`]).
    pub(super) fn changed(&self) -> &Notify {
        &self.changed
    }

    fn report(&self) {
        self.changed.notify_one();
        if let Some(hook) = self.hook.get() {
            hook();
        }
    }

    /// Holds demand under `policy` until the lease is dropped; starts the stream.
    pub fn lease(self: &Arc<Self>, kind: &'static str, policy: Policy) -> Lease {
        let id = self.state().acquire(kind, policy, Instant::now());
        self.report();
        Lease {
            demands: Arc::clone(self),
            id,
        }
    }

    /// Holds demand for `duration` from when the stream has media; starts the stream.
    pub fn hold_for(&self, kind: &'static str, duration: Duration) {
        self.state()
            .acquire(kind, Policy::For(duration), Instant::now());
        self.report();
    }

    /// The idle epoch (see [`Demand::epoch`]).
    pub fn epoch(&self) -> u64 {
        self.state().epoch()
    }

    /// The kinds of active demand, sorted.
    pub fn active_kinds(&self) -> Vec<&'static str> {
        self.state().active_kinds()
    }
}

/// Demand held by one consumer; released when dropped.
pub struct Lease {
    demands: Arc<Demands>,
    id: EntryId,
}

impl Lease {
    /// The lease was used: re-arm its countdown; an idle lease is woken (and starts the
    /// stream again).
    pub fn touch(&self) {
        if !self.update(Demand::touch) {
            self.demands.changed.notify_one();
        }
    }

    /// Wakes the lease if it went idle (and starts the stream again); an active lease keeps
    /// its countdown.
    pub fn wake(&self) {
        self.update(Demand::wake);
    }

    /// Applies `change` to this lease's entry; when that woke an idle lease, reports the change
    /// (which starts the stream) and returns true.
    fn update(&self, change: fn(&mut Demand, EntryId, Instant)) -> bool {
        let woke = {
            let mut state = self.demands.state();
            let was_active = state.is_active(self.id);
            change(&mut state, self.id, Instant::now());
            !was_active
        };
        if woke {
            self.demands.report();
        }
        woke
    }

    /// Whether the lease holds demand now (not idle).
    pub fn is_active(&self) -> bool {
        self.demands.state().is_active(self.id)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.demands.state().release(self.id) {
            self.demands.report();
        }
    }
}
