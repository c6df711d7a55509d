//! The file source: an MP4 file demuxed into memory and played back in real time, looped
//! forever with continuous timestamps (a loop is not a discontinuity).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use sluice_media::demux::{Mp4File, demux};
use tokio::time::Instant;

use crate::read_bounded::{ReadError, read_regular_file};

use super::{DEMO_CLIP, ErrorKind, SourceError, SourceEvent};

/// Files larger than this are refused: the file source keeps the whole file in memory.
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// The demo clip, demuxed once per process.
pub(super) fn demo_file() -> Result<Arc<Mp4File>, SourceError> {
    static DEMO: OnceLock<Result<Arc<Mp4File>, String>> = OnceLock::new();
    DEMO.get_or_init(|| {
        demux(&Bytes::from_static(DEMO_CLIP))
            .map(Arc::new)
            .map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|e| SourceError::new(ErrorKind::InvalidData, format!("demo clip: {e}")))
}

/// Reads and demuxes an MP4 file.
///
/// The file is opened without blocking (a FIFO with no writer would otherwise block the
/// opening thread forever) and must be a regular file: a FIFO, a device such as `/dev/zero`
/// or a directory is refused at once. The read is capped at [`MAX_FILE_BYTES`] whatever size
/// the file claims, since a file may grow while it is read ([`read_regular_file`]).
pub(super) async fn load(path: &Path) -> Result<Mp4File, SourceError> {
    let owned = path.to_path_buf();
    let data = tokio::task::spawn_blocking(move || read_regular_file(&owned, MAX_FILE_BYTES))
        .await
        .map_err(|e| SourceError::new(ErrorKind::InvalidData, e.to_string()))?
        .map_err(|e| match e {
            ReadError::Io(e) => io_error(path, e),
            other => SourceError::new(
                ErrorKind::InvalidData,
                format!(
                    "cannot use {} as a file source: {other}: it must be an MP4 file",
                    path.display()
                ),
            ),
        })?;
    let shown = path.display();
    let file = tokio::task::spawn_blocking(move || demux(&Bytes::from(data)))
        .await
        .map_err(|e| SourceError::new(ErrorKind::InvalidData, e.to_string()))?
        .map_err(|e| SourceError::new(ErrorKind::InvalidData, format!("{shown}: {e}")))?;
    if file.frames.iter().all(Vec::is_empty) {
        return Err(SourceError::new(
            ErrorKind::InvalidData,
            format!("{shown} has no samples"),
        ));
    }
    Ok(file)
}

fn io_error(path: &Path, e: std::io::Error) -> SourceError {
    let kind = if e.kind() == std::io::ErrorKind::NotFound {
        ErrorKind::NotFound
    } else {
        ErrorKind::InvalidData
    };
    SourceError::new(kind, format!("cannot read {}: {e}", path.display()))
}

/// Plays a demuxed file back in real time.
pub struct FileSource {
    file: Arc<Mp4File>,
    /// (track, frame index) in presentation order across tracks.
    order: Vec<(usize, usize)>,
    position: usize,
    loops: i64,
    /// Loop period per track, in the track's timescale.
    periods: Vec<i64>,
    /// Wall-clock instant of media time zero.
    start: Option<Instant>,
}

impl FileSource {
    /// A source that starts playing `file` from its beginning.
    pub fn new(file: Arc<Mp4File>) -> Self {
        let order = file.interleaved();
        let periods = file
            .tracks
            .iter()
            .map(|t| (file.duration_secs * f64::from(t.timescale())).round() as i64)
            .collect();
        FileSource {
            file,
            order,
            position: 0,
            loops: 0,
            periods,
            start: None,
        }
    }

    /// The next frame, released when its media time comes.
    pub async fn next(&mut self) -> Result<SourceEvent, SourceError> {
        if self.order.is_empty() {
            return Err(SourceError::new(ErrorKind::Ended, "file has no frames"));
        }
        if self.position == self.order.len() {
            self.position = 0;
            self.loops += 1;
        }
        let (t, i) = self.order[self.position];
        self.position += 1;
        let mut frame = self.file.frames[t][i].clone();
        let shift = self.loops * self.periods[t];
        frame.dts += shift;
        frame.pts += shift;
        let timescale = f64::from(self.file.tracks[t].timescale());
        let media_secs = (frame.dts as f64 / timescale).max(0.0);
        let start = *self.start.get_or_insert_with(Instant::now);
        tokio::time::sleep_until(start + Duration::from_secs_f64(media_secs)).await;
        Ok(SourceEvent::Frame(frame))
    }
}
