//! One recording: a clip with lookback, the moment before the trigger, in a valid MP4.
//!
//! A recording takes up to `lookback` seconds of whole segments already in the stream's ring
//! (so the clip starts on a keyframe), then follows the live parts until `duration` seconds
//! after the request, and writes a fast-start MP4 (`moov` before `mdat`). Sample data goes to an
//! unnamed scratch file as it arrives, so memory stays bounded however long the clip; at the
//! end the header and the data are assembled into a temporary next to the clip, synced, and
//! renamed into place ([`files`] says how every file is created safely). Nothing captured, or
//! an I/O error, leaves no file behind and does not disturb the stream.

use std::io::{Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sluice_media::mp4::ClipWriter;
use sluice_media::ring::SegmentRing;
use sluice_media::segmenter::{InitSegment, Part};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::{info, warn};

use super::files::Target;
use super::path;
use crate::hub::{Lease, Policy, Stream};

/// What a recording request asks for.
#[derive(Clone, Copy, Debug)]
pub struct RecordRequest {
    /// Seconds to record after the request.
    pub duration: f64,
    /// Seconds before the request to include, from memory.
    pub lookback: f64,
}

impl RecordRequest {
    /// Checks the duration and the lookback.
    pub fn validate(&self) -> Result<(), RecordError> {
        if !(self.duration.is_finite() && self.duration > 0.0 && self.duration <= 86_400.0) {
            return Err(RecordError::Invalid(format!(
                "duration {} is outside (0, 86400] seconds",
                self.duration
            )));
        }
        if !(self.lookback.is_finite() && (0.0..=3600.0).contains(&self.lookback)) {
            return Err(RecordError::Invalid(format!(
                "lookback {} is outside [0, 3600] seconds",
                self.lookback
            )));
        }
        Ok(())
    }
}

/// A recording in progress, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ActiveRecording {
    /// Where the clip will be (unless a file appears there meanwhile: see
    /// [`RecordingResult::path`]).
    pub path: PathBuf,
    /// Requested seconds after the trigger.
    pub duration: f64,
    /// Seconds before the trigger that were in memory and are included.
    pub lookback: f64,
    /// Seconds of media written so far.
    pub seconds_written: f64,
    /// When the request came (seconds since the Unix epoch).
    pub started_at: f64,
}

/// A finished recording.
#[derive(Clone, Debug, Serialize)]
pub struct RecordingResult {
    /// The clip's path: the requested one, or a numbered name next to it (`clip-1.mp4`) when
    /// a file appeared at the requested one during the recording and overwriting was not
    /// asked for.
    pub path: PathBuf,
    /// Seconds of media in the clip.
    pub seconds: f64,
    /// File size.
    pub bytes: u64,
    /// Why it failed, if it did (then no file was left).
    pub error: Option<String>,
}

/// The handle a stream keeps while recording.
pub(super) struct Recording {
    pub(super) info: ActiveRecording,
    written_ms: Arc<AtomicU64>,
    finish: watch::Sender<bool>,
}

impl Recording {
    /// The API view, with the seconds written so far.
    pub(super) fn snapshot(&self) -> ActiveRecording {
        let mut info = self.info.clone();
        info.seconds_written = self.written_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        info
    }

    /// Asks the recording to finish now with what it has.
    pub(super) fn finish_now(&self) {
        let _ = self.finish.send(true);
    }
}

/// Why a recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The path is invalid or outside the allowed directories.
    #[error(transparent)]
    Path(#[from] path::PathError),
    /// The stream is already recording.
    #[error("stream is already recording to {0}")]
    Busy(PathBuf),
    /// The duration or lookback is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The file cannot be written.
    #[error("cannot write {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
}

/// Starts a recording of `stream` into `target`; `done` gets the result. Returns the seconds
/// of lookback found in memory.
pub(super) fn start(
    stream: &Arc<Stream>,
    target: Target,
    request: RecordRequest,
    done: impl FnOnce(RecordingResult) + Send + 'static,
) -> Result<(Recording, f64), RecordError> {
    request.validate()?;
    // Fail now, not after the clip was captured, if the directory is not writable. The scratch
    // file is unlinked at once: it is read back through its descriptor and leaves nothing
    // behind, whatever happens.
    let (data, name) = target.create_temp(".data").map_err(|e| RecordError::Io {
        path: target.path().to_path_buf(),
        message: e.to_string(),
    })?;
    target.remove(&name);

    let (start, lookback) = start_position(&stream.tap().media().ring(), request.lookback);
    let written_ms = Arc::new(AtomicU64::new(0));
    let (finish, finish_rx) = watch::channel(false);
    let info = ActiveRecording {
        path: target.path().to_path_buf(),
        duration: request.duration,
        lookback,
        seconds_written: 0.0,
        started_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
    };
    // Keep the stream running for the recording (re-armed as parts are written, released
    // when it ends).
    let keepalive = recorder_timeout(stream, request.duration);
    let lease = stream
        .tap()
        .demand()
        .lease(super::KIND, Policy::Idle(keepalive));
    let task = run(
        Arc::clone(stream),
        lease,
        target,
        tokio::fs::File::from_std(data),
        (start, request),
        Arc::clone(&written_ms),
        finish_rx,
    );
    stream.tap().work().spawn(async move { done(task.await) });
    Ok((
        Recording {
            info,
            written_ms,
            finish,
        },
        lookback,
    ))
}

fn recorder_timeout(stream: &Stream, duration: f64) -> Duration {
    let config = stream.config();
    Duration::from_secs_f64(duration + config.connect_timeout + config.stall_timeout + 10.0)
}

/// Where the clip starts: (segment, part). The segment in progress is always included (its
/// start is the last keyframe), plus as many complete segments before it as cover the rest of
/// the lookback. Returns the position and the lookback seconds it gives.
fn start_position(ring: &SegmentRing, lookback: f64) -> ((u64, usize), f64) {
    let segments = ring.segments();
    let Some(edge) = ring.live_edge() else {
        return ((ring.next_sequence(), 0), 0.0);
    };
    let mut first = edge.sequence;
    let mut covered = if edge.is_complete() {
        // The edge segment is complete: the next part starts a new segment.
        first = edge.sequence + 1;
        0.0
    } else {
        edge.parts_duration()
    };
    let before = first;
    for seg in segments
        .iter()
        .rev()
        .filter(|s| s.sequence < before && s.is_complete())
    {
        if covered >= lookback {
            break;
        }
        covered += seg.duration_so_far();
        first = seg.sequence;
    }
    ((first, 0), covered)
}

enum Next {
    Part(Arc<InitSegment>, Arc<Part>, (u64, usize)),
    /// The segment was evicted before the recorder got to it.
    Skipped(u64),
}

/// The part at `pos`, or the next position when that segment is complete.
fn next_part(ring: &SegmentRing, pos: (u64, usize)) -> Option<Next> {
    let (seq, p) = pos;
    match ring.get(seq) {
        Some(seg) => match seg.parts.get(p) {
            Some(part) => Some(Next::Part(seg.init.clone(), part.clone(), (seq, p + 1))),
            None if seg.is_complete() => next_part(ring, (seq + 1, 0)),
            None => None,
        },
        None => {
            let first = ring.segments().front().map(|s| s.sequence)?;
            (seq < first).then_some(Next::Skipped(first))
        }
    }
}

async fn run(
    stream: Arc<Stream>,
    lease: Lease,
    target: Target,
    data: tokio::fs::File,
    (start, request): ((u64, usize), RecordRequest),
    written_ms: Arc<AtomicU64>,
    mut finish: watch::Receiver<bool>,
) -> RecordingResult {
    let started = tokio::time::Instant::now();
    let requested = target.path().to_path_buf();
    let captured = capture(
        &stream,
        &lease,
        &target,
        data,
        (start, request),
        &written_ms,
        &mut finish,
    )
    .await;
    let (path, result) = match captured {
        Ok((clip, data)) => {
            let data = data.into_std().await;
            // Blocking file work (copy, fsync, rename) off the runtime's threads.
            let assembled = tokio::task::spawn_blocking(move || {
                let mut target = target;
                let result = assemble(&mut target, &clip, data);
                // The target (and its claim on the file) is released here, before the result
                // is published.
                (target.path().to_path_buf(), result)
            })
            .await;
            assembled.unwrap_or_else(|e| (requested, Err(format!("recording task failed: {e}"))))
        }
        Err(e) => {
            // Release the claim on the file before the result is published.
            drop(target);
            (requested, Err(e))
        }
    };
    drop(lease);
    match result {
        Ok((seconds, bytes)) => {
            info!(stream = %stream.name(), path = %path.display(), seconds, bytes, took = ?started.elapsed(), "recording written");
            RecordingResult {
                path,
                seconds,
                bytes,
                error: None,
            }
        }
        Err(error) => {
            warn!(stream = %stream.name(), path = %path.display(), "recording failed: {error}");
            RecordingResult {
                path,
                seconds: 0.0,
                bytes: 0,
                error: Some(error),
            }
        }
    }
}

/// Follows the ring from `start` and writes sample data until `duration` seconds of live media
/// after the trigger, a finish request, or a deadline when the source produces nothing.
async fn capture(
    stream: &Stream,
    lease: &Lease,
    target: &Target,
    data: tokio::fs::File,
    (start, request): ((u64, usize), RecordRequest),
    written_ms: &AtomicU64,
    finish: &mut watch::Receiver<bool>,
) -> Result<(ClipWriter, tokio::fs::File), String> {
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, data);
    let mut pos = start;
    let mut clip: Option<ClipWriter> = None;
    // Live media counts from the trigger: parts before it are lookback.
    let trigger_seq = {
        let ring = stream.tap().media().ring();
        ring.live_edge().map(|s| (s.sequence, s.parts.len()))
    };
    let mut live = 0.0;
    let deadline = tokio::time::Instant::now() + recorder_timeout(stream, request.duration);
    let write_err = |e: std::io::Error| {
        format!(
            "cannot write the sample data of {}: {e}",
            target.path().display()
        )
    };
    loop {
        if *finish.borrow() {
            break;
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let next = tokio::select! {
            n = stream.tap().media().wait_for(remaining, |ring| next_part(ring, pos)) => n,
            _ = finish.changed() => break,
        };
        let Some(next) = next else {
            // Deadline: the source produced nothing more (or the stream was removed).
            break;
        };
        let (init, part, after) = match next {
            Next::Part(init, part, after) => (init, part, after),
            Next::Skipped(first) => {
                warn!(stream = %stream.name(), "recording fell behind the ring; segments before {first} lost");
                pos = (first, 0);
                continue;
            }
        };
        let clip = clip.get_or_insert_with(|| ClipWriter::new(&init, stream.tap().orientation()));
        for chunk in clip.add_part(&init, &part) {
            out.write_all(&chunk).await.map_err(write_err)?;
        }
        let is_live = trigger_seq.is_none_or(|t| pos >= t);
        if is_live {
            live += part.duration;
        }
        pos = after;
        written_ms.store((clip.duration_secs() * 1000.0) as u64, Ordering::Relaxed);
        lease.touch();
        if live >= request.duration {
            break;
        }
    }
    out.flush().await.map_err(write_err)?;
    match clip {
        Some(clip) if !clip.is_empty() => Ok((clip, out.into_inner())),
        _ => Err("recording failed to capture anything: the stream produced no media".into()),
    }
}

/// Writes header + data into a new temporary next to the clip, syncs it and renames it into
/// place; the temporary is gone afterwards whatever happened. Returns (seconds, bytes).
fn assemble(
    target: &mut Target,
    clip: &ClipWriter,
    data: std::fs::File,
) -> Result<(f64, u64), String> {
    // Nothing is written into a directory that is no longer where it was.
    target.check_in_place()?;
    let (tmp, name) = target.create_temp("").map_err(|e| {
        format!(
            "cannot create a temporary file next to {}: {e}",
            target.path().display()
        )
    })?;
    let result = write_clip(target, clip, data, tmp, &name);
    target.remove(&name);
    result
}

fn write_clip(
    target: &mut Target,
    clip: &ClipWriter,
    mut data: std::fs::File,
    mut tmp: std::fs::File,
    name: &str,
) -> Result<(f64, u64), String> {
    let err = |e: std::io::Error| format!("cannot write {}: {e}", target.path().display());
    let header = clip.header();
    tmp.write_all(&header).map_err(err)?;
    data.rewind().map_err(err)?;
    let copied = std::io::copy(&mut data, &mut tmp).map_err(err)?;
    if copied != clip.data_len() {
        return Err(format!(
            "scratch data is {copied} bytes, expected {}",
            clip.data_len()
        ));
    }
    tmp.sync_all().map_err(err)?;
    drop(tmp);
    target.commit(name)?;
    Ok((clip.duration_secs(), header.len() as u64 + copied))
}
