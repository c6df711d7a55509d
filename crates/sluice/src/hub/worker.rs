//! A stream's worker: opens the source, feeds the pipeline, and restarts with backoff.
//!
//! The restart policy is the reference's: after a failed run, wait 10 s more per consecutive
//! failure, reset once a run lasted 300 s. Each run ends with a discontinuity in the ring, and
//! the pipeline (timestamp guard, segmenter) outlives runs so the output timeline continues.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sluice_media::pipeline::Pipeline;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{Stream, StreamState, count_frame};
use crate::source::{ErrorKind, Source, SourceError, SourceEvent};

/// Runs the stream until `stop` turns true.
pub(super) async fn run(stream: Arc<Stream>, mut stop: watch::Receiver<bool>) {
    let span = info_span!("stream", name = %stream.name);
    async move {
        let settings = *stream.settings();
        let mut pipeline = Pipeline::new(settings.pipeline());
        let mut backoff = Duration::ZERO;
        // The error last logged; cleared when a run gets frames flowing, so a failure is
        // logged once per change, not once per retry.
        let mut logged: Option<SourceError> = None;
        loop {
            let started = Instant::now();
            stream.update_status(|s| {
                s.state = StreamState::Starting;
                s.runs += 1;
                s.retry_in_secs = None;
            });
            debug!(source = %stream.redacted_source(), "starting run");
            let result = run_once(&stream, &mut pipeline, &mut stop).await;
            if stream.status().state == StreamState::Running {
                logged = None;
            }
            let mut events = Vec::new();
            pipeline.finish(&mut events);
            stream.media().apply(events);
            stream.media().end_run();
            if *stop.borrow() {
                break;
            }
            let error = result.err().unwrap_or_else(|| {
                SourceError::new(ErrorKind::Ended, "source ended; no more frames")
            });
            if logged.as_ref() != Some(&error) {
                warn!(cause = ?error.kind, "stream failed: {error}");
                logged = Some(error.clone());
            }
            if started.elapsed() > settings.restart_reset {
                backoff = Duration::ZERO;
            }
            backoff += settings.restart_increment;
            stream.update_status(|s| {
                s.state = StreamState::Retrying;
                s.available = false;
                s.last_error = Some(error);
                s.retry_in_secs = Some(backoff.as_secs());
            });
            debug!("restarting in {} s", backoff.as_secs());
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => break,
            }
        }
        stream.update_status(|s| {
            s.state = StreamState::Idle;
            s.retry_in_secs = None;
        });
        info!("stopped");
    }
    .instrument(span)
    .await
}

/// One run: connect, then push frames until the source fails or `stop` turns true
/// (`Ok` only in that case).
async fn run_once(
    stream: &Stream,
    pipeline: &mut Pipeline,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), SourceError> {
    let spec = stream.spec.clone();
    let options = stream.config.source_options();
    let (mut source, tracks) = tokio::select! {
        r = Source::open(&spec, &options) => r?,
        _ = stop.changed() => return Ok(()),
    };
    pipeline
        .start_run(&tracks)
        .map_err(|e| SourceError::new(ErrorKind::UnsupportedCodec, e.to_string()))?;
    info!(
        tracks = %tracks.iter().map(|t| t.codec_string()).collect::<Vec<_>>().join(","),
        "source open"
    );
    let mut events = Vec::new();
    let mut flowing = false;
    loop {
        let event = tokio::select! {
            e = source.next() => e?,
            _ = stop.changed() => return Ok(()),
        };
        match event {
            SourceEvent::Frame(frame) => {
                count_frame(stream, frame.data.len());
                pipeline.push(frame, SystemTime::now(), &mut events);
                if !flowing {
                    flowing = true;
                    stream.update_status(|s| {
                        s.state = StreamState::Running;
                        s.available = true;
                    });
                }
            }
            SourceEvent::MissingTimestamp => pipeline
                .missing_dts()
                .map_err(|e| SourceError::new(ErrorKind::InvalidData, e.to_string()))?,
            SourceEvent::Tracks(tracks) => pipeline
                .update_tracks(&tracks, &mut events)
                .map_err(|e| SourceError::new(ErrorKind::UnsupportedCodec, e.to_string()))?,
        }
        if !events.is_empty() {
            stream.media().apply(events.drain(..));
        }
    }
}
