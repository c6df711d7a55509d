//! A stream's worker: opens the source, feeds the pipeline, and restarts with backoff.
//!
//! The restart policy is the reference's: after a failed run, wait `restart_increment` (10 s)
//! more per consecutive failure, reset once a run lasted `restart_reset` (300 s). A worker
//! retries while the stream is preloaded or has an output; a new source restarts it at once.
//! Each run ends with a discontinuity in the ring, and the pipeline (timestamp guard,
//! segmenter) outlives runs so the output timeline continues.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use sluice_media::Track;
use sluice_media::pipeline::Pipeline;
use sluice_media::segmenter::Event;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{Instrument, debug, info, info_span, warn};

use super::stream::{Control, Stream, StreamState};
use crate::source::{ErrorKind, SourceError, SourceEvent};

/// How a run ended.
enum Outcome {
    /// Told to stop.
    Stopped,
    /// Told to restart (new source).
    Restart,
    /// The source failed or ended.
    Failed(SourceError),
}

/// Spawns [`run`] as a task.
pub(super) fn spawn(stream: Arc<Stream>, control: watch::Receiver<Control>) -> JoinHandle<()> {
    tokio::spawn(run(stream, control))
}

/// Runs the stream until told to stop (or until nothing wants it after a failure).
async fn run(stream: Arc<Stream>, mut control: watch::Receiver<Control>) {
    let span = info_span!("stream", name = %stream.name());
    async move {
        let mut pipeline = stream.pipeline.lock().await;
        let idle = tokio::spawn({
            let stream = Arc::clone(&stream);
            async move { stream.watch_idle().await }
        });
        let settings = *stream.settings();
        let mut backoff = Duration::ZERO;
        // The error last logged; cleared when a run gets frames flowing, so a failure is
        // logged once per change, not once per retry.
        let mut logged: Option<SourceError> = None;
        let mut restarts_seen = control.borrow().restart;
        loop {
            if control.borrow().stop {
                break;
            }
            let started = Instant::now();
            stream.update_status(|s| {
                s.state = StreamState::Starting;
                s.runs += 1;
                s.retry_in_secs = None;
            });
            let outcome = run_once(&stream, &mut pipeline, &mut control).await;
            let mut events = Vec::new();
            pipeline.finish(&mut events);
            apply(&stream, events);
            stream.tap().media().end_run();
            if stream.status().state == StreamState::Running {
                logged = None;
            }
            let error = match outcome {
                Outcome::Stopped => break,
                Outcome::Restart => {
                    restarts_seen = control.borrow().restart;
                    backoff = Duration::ZERO;
                    info!(source = %stream.redacted_source(), "source changed; restarting");
                    continue;
                }
                Outcome::Failed(error) => error,
            };
            if logged.as_ref() != Some(&error) {
                warn!(cause = ?error.kind, "stream failed: {error}");
                logged = Some(error.clone());
            }
            stream.update_status(|s| {
                s.available = false;
                s.last_error = Some(error);
            });
            if !stream.wants_running() {
                debug!("nothing wants the stream; not retrying");
                break;
            }
            if started.elapsed() > settings.restart_reset() {
                backoff = Duration::ZERO;
            }
            backoff += settings.restart_increment();
            stream.counters.restarts.fetch_add(1, Ordering::Relaxed);
            stream.update_status(|s| {
                s.state = StreamState::Retrying;
                s.retry_in_secs = Some(backoff.as_secs_f64());
            });
            debug!("restarting in {:.1} s", backoff.as_secs_f64());
            let deadline = tokio::time::Instant::now() + backoff;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    changed = control.changed() => {
                        if changed.is_err() || control.borrow().stop {
                            break;
                        }
                        if control.borrow().restart != restarts_seen {
                            restarts_seen = control.borrow().restart;
                            backoff = Duration::ZERO;
                            break;
                        }
                    }
                }
            }
        }
        idle.abort();
        stream.update_status(|s| {
            s.state = StreamState::Idle;
            s.retry_in_secs = None;
        });
        info!("stopped");
    }
    .instrument(span)
    .await
}

fn apply(stream: &Stream, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    let ended = events
        .iter()
        .filter(|e| matches!(e, Event::SegmentEnd { .. }))
        .count();
    stream
        .counters
        .segments
        .fetch_add(ended as u64, Ordering::Relaxed);
    stream.tap().media().apply(events);
    stream.media_arrived();
}

/// What the control channel says now, relative to the restart count this run started with.
fn control_says(control: &watch::Receiver<Control>, restart: u64) -> Option<Outcome> {
    let c = *control.borrow();
    if c.stop {
        Some(Outcome::Stopped)
    } else if c.restart != restart {
        Some(Outcome::Restart)
    } else {
        None
    }
}

/// One run: connect, then push frames until the source fails or the control channel says
/// otherwise.
async fn run_once(
    stream: &Stream,
    pipeline: &mut Pipeline,
    control: &mut watch::Receiver<Control>,
) -> Outcome {
    let restart = control.borrow().restart;
    let spec = stream.spec();
    let options = stream.config().source_options();
    let opened = tokio::select! {
        r = stream.opener().open(&spec, &options) => r,
        _ = wait_for_change(control, restart) => {
            return control_says(control, restart).unwrap_or(Outcome::Stopped);
        }
    };
    let (mut source, tracks): (_, Vec<Track>) = match opened {
        Ok(opened) => opened,
        Err(e) => return Outcome::Failed(e),
    };
    if let Err(e) = pipeline.start_run(&tracks) {
        return Outcome::Failed(SourceError::new(ErrorKind::UnsupportedCodec, e.to_string()));
    }
    info!(
        tracks = %tracks.iter().map(|t| t.codec_string()).collect::<Vec<_>>().join(","),
        "source open"
    );
    let mut tracks = Arc::new(tracks);
    let mut events = Vec::new();
    let mut flowing = false;
    loop {
        let event = tokio::select! {
            e = source.next() => e,
            _ = wait_for_change(control, restart) => {
                return control_says(control, restart).unwrap_or(Outcome::Stopped);
            }
        };
        let event = match event {
            Ok(event) => event,
            Err(e) => return Outcome::Failed(e),
        };
        let result = match event {
            SourceEvent::Frame(frame) => {
                stream.counters.frames_in.fetch_add(1, Ordering::Relaxed);
                stream
                    .counters
                    .bytes_in
                    .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
                let tap = stream.tap();
                let dropped =
                    pipeline.push_observed(frame, SystemTime::now(), &mut events, |frame| {
                        tap.publish(&tracks, frame)
                    });
                if let Some(reason) = dropped {
                    stream.counters.count_drop(reason);
                }
                if !flowing {
                    flowing = true;
                    stream.update_status(|s| {
                        s.state = StreamState::Running;
                        s.available = true;
                    });
                }
                Ok(())
            }
            SourceEvent::Tracks(new) => {
                let updated = pipeline
                    .update_tracks(&new, &mut events)
                    .map_err(|e| SourceError::new(ErrorKind::UnsupportedCodec, e.to_string()));
                tracks = Arc::new(new);
                updated
            }
        };
        if let Err(e) = result {
            return Outcome::Failed(e);
        }
        if !events.is_empty() {
            apply(stream, std::mem::take(&mut events));
        }
    }
}

/// Completes when the control channel asks for a stop or a restart (or its sender is gone).
async fn wait_for_change(control: &mut watch::Receiver<Control>, restart: u64) {
    loop {
        if control_says(control, restart).is_some() {
            return;
        }
        if control.changed().await.is_err() {
            return;
        }
    }
}
