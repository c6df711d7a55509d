//! Recording clips with lookback: the moment before the trigger, in a valid MP4.
//!
//! A recording takes up to `lookback` seconds of whole segments already in the stream's ring
//! (so the clip starts on a keyframe), then follows the live parts until `duration` seconds
//! after the request, and writes a fast-start MP4 (`moov` before `mdat`). Sample data goes to a
//! scratch file as it arrives, so memory stays bounded however long the clip; at the end the
//! header and the data are assembled into `PATH.tmp`, synced, and renamed to `PATH`. Nothing
//! captured, or an I/O error, leaves no file behind and does not disturb the stream.

pub mod path;

use std::path::{Path, PathBuf};
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

use crate::hub::{OutputKind, Stream};

/// What a recording request asks for.
#[derive(Clone, Copy, Debug)]
pub struct RecordRequest {
    /// Seconds to record after the request.
    pub duration: f64,
    /// Seconds before the request to include, from memory.
    pub lookback: f64,
}

/// A recording in progress, as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ActiveRecording {
    /// Where the clip will be.
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
    /// The clip's path.
    pub path: PathBuf,
    /// Seconds of media in the clip.
    pub seconds: f64,
    /// File size.
    pub bytes: u64,
    /// Why it failed, if it did (then no file was left).
    pub error: Option<String>,
}

/// The handle a stream keeps while recording.
pub(crate) struct Recording {
    pub(crate) info: ActiveRecording,
    written_ms: Arc<AtomicU64>,
    finish: watch::Sender<bool>,
}

impl Recording {
    /// The API view, with the seconds written so far.
    pub(crate) fn snapshot(&self) -> ActiveRecording {
        let mut info = self.info.clone();
        info.seconds_written = self.written_ms.load(Ordering::Relaxed) as f64 / 1000.0;
        info
    }

    /// Asks the recording to finish now with what it has.
    pub(crate) fn finish_now(&self) {
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

/// Files of a recording: the final path, the temporary file it is assembled in, and the
/// scratch file that holds sample data meanwhile.
struct Files {
    path: PathBuf,
    tmp: PathBuf,
    data: PathBuf,
}

impl Files {
    fn new(path: PathBuf) -> Self {
        let with = |suffix: &str| {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(suffix);
            path.with_file_name(name)
        };
        Files {
            tmp: with(".tmp"),
            data: with(".data.tmp"),
            path,
        }
    }

    async fn remove_temporaries(&self) {
        let _ = tokio::fs::remove_file(&self.tmp).await;
        let _ = tokio::fs::remove_file(&self.data).await;
    }
}

/// Starts a recording of `stream` into `path` (already resolved and allowed). Returns the
/// seconds of lookback found in memory.
pub(crate) async fn start(
    stream: &Arc<Stream>,
    path: PathBuf,
    request: RecordRequest,
) -> Result<(Recording, f64), RecordError> {
    if !(request.duration.is_finite() && request.duration > 0.0 && request.duration <= 86_400.0) {
        return Err(RecordError::Invalid(format!(
            "duration {} is outside (0, 86400] seconds",
            request.duration
        )));
    }
    if !(request.lookback.is_finite() && (0.0..=3600.0).contains(&request.lookback)) {
        return Err(RecordError::Invalid(format!(
            "lookback {} is outside [0, 3600] seconds",
            request.lookback
        )));
    }
    let files = Files::new(path);
    let io = |e: std::io::Error| RecordError::Io {
        path: files.path.clone(),
        message: e.to_string(),
    };
    // Fail now, not after the clip was captured, if the directory is not writable.
    let data = tokio::fs::File::create(&files.data).await.map_err(io)?;

    let (start, lookback) = start_position(&stream.media().ring(), request.lookback);
    let written_ms = Arc::new(AtomicU64::new(0));
    let (finish, finish_rx) = watch::channel(false);
    let info = ActiveRecording {
        path: files.path.clone(),
        duration: request.duration,
        lookback,
        seconds_written: 0.0,
        started_at: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
    };
    // Keep the stream running for the recording (refreshed as parts are written).
    let keepalive = recorder_timeout(stream, request.duration);
    stream.add_output(OutputKind::Recorder, keepalive);
    tokio::spawn(run(
        Arc::clone(stream),
        files,
        data,
        start,
        request,
        Arc::clone(&written_ms),
        finish_rx,
    ));
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

#[allow(clippy::too_many_arguments)]
async fn run(
    stream: Arc<Stream>,
    files: Files,
    data: tokio::fs::File,
    start: (u64, usize),
    request: RecordRequest,
    written_ms: Arc<AtomicU64>,
    mut finish: watch::Receiver<bool>,
) {
    let started = tokio::time::Instant::now();
    let result = capture(
        &stream,
        &files,
        data,
        start,
        request,
        &written_ms,
        &mut finish,
    )
    .await;
    let result = match result {
        Ok(clip) => assemble(&files, clip).await,
        Err(e) => Err(e),
    };
    files.remove_temporaries().await;
    let result = match result {
        Ok((seconds, bytes)) => {
            info!(stream = %stream.name(), path = %files.path.display(), seconds, bytes, took = ?started.elapsed(), "recording written");
            RecordingResult {
                path: files.path.clone(),
                seconds,
                bytes,
                error: None,
            }
        }
        Err(error) => {
            let _ = tokio::fs::remove_file(&files.tmp).await;
            warn!(stream = %stream.name(), path = %files.path.display(), "recording failed: {error}");
            RecordingResult {
                path: files.path.clone(),
                seconds: 0.0,
                bytes: 0,
                error: Some(error),
            }
        }
    };
    stream.recording_finished(result);
}

/// Follows the ring from `start` and writes sample data until `duration` seconds of live media
/// after the trigger, a finish request, or a deadline when the source produces nothing.
async fn capture(
    stream: &Stream,
    files: &Files,
    data: tokio::fs::File,
    start: (u64, usize),
    request: RecordRequest,
    written_ms: &AtomicU64,
    finish: &mut watch::Receiver<bool>,
) -> Result<ClipWriter, String> {
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, data);
    let mut pos = start;
    let mut clip: Option<ClipWriter> = None;
    // Live media counts from the trigger: parts before it are lookback.
    let trigger_seq = {
        let ring = stream.media().ring();
        ring.live_edge().map(|s| (s.sequence, s.parts.len()))
    };
    let mut live = 0.0;
    let deadline = tokio::time::Instant::now() + recorder_timeout(stream, request.duration);
    let write_err = |e: std::io::Error| format!("cannot write {}: {e}", files.data.display());
    loop {
        if *finish.borrow() {
            break;
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let next = tokio::select! {
            n = stream.media().wait_for(remaining, |ring| next_part(ring, pos)) => n,
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
        let clip = clip.get_or_insert_with(|| ClipWriter::new(&init, stream.orientation()));
        for chunk in clip.add_part(&init, &part) {
            out.write_all(&chunk).await.map_err(write_err)?;
        }
        let is_live = trigger_seq.is_none_or(|t| pos >= t);
        if is_live {
            live += part.duration;
        }
        pos = after;
        written_ms.store((clip.duration_secs() * 1000.0) as u64, Ordering::Relaxed);
        stream.touch(OutputKind::Recorder);
        if live >= request.duration {
            break;
        }
    }
    out.flush().await.map_err(write_err)?;
    match clip {
        Some(clip) if !clip.is_empty() => Ok(clip),
        _ => Err("recording failed to capture anything: the stream produced no media".into()),
    }
}

/// Writes `PATH.tmp` = header + data, syncs it, and renames it to `PATH`.
async fn assemble(files: &Files, clip: ClipWriter) -> Result<(f64, u64), String> {
    let err = |what: &Path, e: std::io::Error| format!("cannot write {}: {e}", what.display());
    let header = clip.header();
    let mut tmp = tokio::fs::File::create(&files.tmp)
        .await
        .map_err(|e| err(&files.tmp, e))?;
    tmp.write_all(&header)
        .await
        .map_err(|e| err(&files.tmp, e))?;
    let mut data = tokio::fs::File::open(&files.data)
        .await
        .map_err(|e| err(&files.data, e))?;
    let copied = tokio::io::copy(&mut data, &mut tmp)
        .await
        .map_err(|e| err(&files.tmp, e))?;
    if copied != clip.data_len() {
        return Err(format!(
            "scratch data is {copied} bytes, expected {}",
            clip.data_len()
        ));
    }
    tmp.sync_all().await.map_err(|e| err(&files.tmp, e))?;
    drop(tmp);
    tokio::fs::rename(&files.tmp, &files.path)
        .await
        .map_err(|e| err(&files.path, e))?;
    if let Some(dir) = files.path.parent()
        && let Ok(d) = tokio::fs::File::open(dir).await
    {
        let _ = d.sync_all().await;
    }
    Ok((clip.duration_secs(), header.len() as u64 + copied))
}
