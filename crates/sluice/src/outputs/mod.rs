//! What Sluice serves besides HLS: snapshots.

pub mod snapshot;
