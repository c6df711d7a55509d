//! Progressive MP4 clips with `moov` before `mdat` ("fast start"), built from HLS parts.
//!
//! [`ClipWriter`] is sans-IO and keeps only the sample tables in memory (a few bytes per
//! sample): the caller appends each part's sample data ([`ClipWriter::add_part`] returns it) to
//! a scratch file as it goes, and at the end writes [`ClipWriter::header`] followed by that data.
//! Parts from several runs are stitched into one continuous timeline per track: a gap or an
//! overlap between runs is absorbed by the duration of the sample before it, and a parameter
//! change adds a sample description instead of breaking the file.

use bytes::Bytes;

use super::boxes::BoxWriter;
use super::init::{Orientation, Trak, write_ftyp, write_mvhd, write_trak};
use super::part::{InitSegment, Part, SampleInfo};
use crate::track::{Track, TrackKind};

/// Movie timescale of clips (milliseconds).
const MOVIE_TIMESCALE: u64 = 1000;

#[derive(Debug)]
struct Chunk {
    /// Offset of the chunk's first sample in the data that follows the `mdat` header.
    offset: u64,
    samples: u32,
    /// 1-based sample description index.
    entry: u32,
}

#[derive(Debug)]
struct ClipTrack {
    kind: TrackKind,
    timescale: u32,
    entries: Vec<Track>,
    samples: Vec<SampleInfo>,
    chunks: Vec<Chunk>,
    first_dts: Option<u64>,
    next_dts: u64,
}

impl ClipTrack {
    fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }
}

/// See the module documentation.
#[derive(Debug)]
pub struct ClipWriter {
    tracks: Vec<ClipTrack>,
    data_len: u64,
    orientation: Orientation,
}

impl ClipWriter {
    /// A clip with the tracks of `init` (video first); later parts are matched to them by kind.
    pub fn new(init: &InitSegment, orientation: Orientation) -> Self {
        ClipWriter {
            tracks: init
                .tracks
                .iter()
                .map(|t| ClipTrack {
                    kind: t.kind(),
                    timescale: t.timescale(),
                    entries: vec![t.clone()],
                    samples: Vec::new(),
                    chunks: Vec::new(),
                    first_dts: None,
                    next_dts: 0,
                })
                .collect(),
            data_len: 0,
            orientation,
        }
    }

    /// Adds a part (described by `init`) and returns the sample data to append to the `mdat`
    /// payload, in order. Tracks the clip does not have (or with another timescale) are
    /// skipped: their data is not returned.
    pub fn add_part(&mut self, init: &InitSegment, part: &Part) -> Vec<Bytes> {
        let mut data = Vec::new();
        let mut chunk_index = 1; // chunks[0] is the moof and mdat header
        for run in &part.runs {
            let n = run.samples.len();
            let chunks = part
                .fragment
                .chunks
                .get(chunk_index..chunk_index + n)
                .unwrap_or(&[]);
            chunk_index += n;
            let Some(source) = init.tracks.get(run.track) else {
                continue;
            };
            let Some(track) = self
                .tracks
                .iter_mut()
                .find(|t| t.kind == source.kind() && t.timescale == source.timescale())
            else {
                continue;
            };
            if chunks.len() != n || run.samples.is_empty() {
                continue;
            }
            let entry = match track.entries.iter().position(|e| e == source) {
                Some(i) => i,
                None => {
                    track.entries.push(source.clone());
                    track.entries.len() - 1
                }
            };
            // Stitch: the previous sample lasts until this run starts.
            match track.first_dts {
                None => track.first_dts = Some(run.base_decode_time),
                Some(_) if run.base_decode_time != track.next_dts => {
                    if let Some(last) = track.samples.last_mut() {
                        let gap = run.base_decode_time as i64 - track.next_dts as i64;
                        let d = (i64::from(last.duration) + gap).clamp(1, i64::from(u32::MAX));
                        last.duration = d as u32;
                    }
                }
                Some(_) => {}
            }
            track.next_dts = run.base_decode_time
                + run
                    .samples
                    .iter()
                    .map(|s| u64::from(s.duration))
                    .sum::<u64>();
            track.chunks.push(Chunk {
                offset: self.data_len,
                samples: n as u32,
                entry: entry as u32 + 1,
            });
            track.samples.extend_from_slice(&run.samples);
            for chunk in chunks {
                self.data_len += chunk.len() as u64;
                data.push(chunk.clone());
            }
        }
        data
    }

    /// Bytes of sample data so far.
    pub fn data_len(&self) -> u64 {
        self.data_len
    }

    /// Whether any sample was added.
    pub fn is_empty(&self) -> bool {
        self.tracks.iter().all(|t| t.samples.is_empty())
    }

    /// Media seconds in the clip (the longest track, with its start offset).
    pub fn duration_secs(&self) -> f64 {
        let start = self.start_secs();
        self.tracks
            .iter()
            .filter_map(|t| {
                let first = t.first_dts? as f64 / f64::from(t.timescale);
                Some(first - start + t.duration() as f64 / f64::from(t.timescale))
            })
            .fold(0.0, f64::max)
    }

    fn start_secs(&self) -> f64 {
        self.tracks
            .iter()
            .filter_map(|t| t.first_dts.map(|d| d as f64 / f64::from(t.timescale)))
            .fold(f64::INFINITY, f64::min)
    }

    /// `ftyp`, `moov` and the `mdat` header: the file is these bytes followed by the data
    /// returned by every [`ClipWriter::add_part`], in order.
    pub fn header(&self) -> Vec<u8> {
        let large = self.data_len + 16 > u64::from(u32::MAX);
        // The header's size does not depend on the offsets' values (stco or co64 is decided by
        // the data size): size it with offset 0, then write it with the real ones.
        let probe = self.header_with(0, large);
        self.header_with(probe.len() as u64, large)
    }

    fn header_with(&self, data_start: u64, large: bool) -> Vec<u8> {
        let mut w = BoxWriter::with_capacity(4096 + self.tracks.len() * 64);
        write_ftyp(&mut w, b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"]);
        let start = self.start_secs();
        let tracks: Vec<&ClipTrack> = self
            .tracks
            .iter()
            .filter(|t| !t.samples.is_empty())
            .collect();
        let movie_duration = (self.duration_secs() * MOVIE_TIMESCALE as f64).round() as u64;
        // Decided without data_start, so that sizing and writing agree (1 MiB covers any moov).
        let co64 = self.data_len + (1 << 20) > u64::from(u32::MAX);
        w.open(b"moov");
        write_mvhd(&mut w, movie_duration, tracks.len());
        for (i, t) in tracks.iter().enumerate() {
            let media_duration = t.duration();
            let offset_secs = t
                .first_dts
                .map_or(0.0, |d| d as f64 / f64::from(t.timescale))
                - start;
            let empty_edit = (offset_secs * MOVIE_TIMESCALE as f64).round() as u64;
            let trak = Trak {
                id: i as u32 + 1,
                entries: &t.entries,
                orientation: self.orientation,
                movie_duration: empty_edit
                    + media_duration * MOVIE_TIMESCALE / u64::from(t.timescale),
                media_duration,
                empty_edit,
            };
            write_trak(&mut w, &trak, |w| write_tables(w, t, data_start, co64));
        }
        w.close();
        let mut out = w.finish();
        if large {
            out.extend_from_slice(&1u32.to_be_bytes());
            out.extend_from_slice(b"mdat");
            out.extend_from_slice(&(self.data_len + 16).to_be_bytes());
        } else {
            out.extend_from_slice(&((self.data_len + 8) as u32).to_be_bytes());
            out.extend_from_slice(b"mdat");
        }
        out
    }
}

/// `stts`, `ctts`, `stss`, `stsc`, `stsz`, `stco`/`co64`.
fn write_tables(w: &mut BoxWriter, t: &ClipTrack, data_start: u64, co64: bool) {
    // Decoding time to sample, run-length coded.
    let stts = run_length(t.samples.iter().map(|s| s.duration));
    w.open_full(b"stts", 0, 0);
    w.u32(stts.len() as u32);
    for (count, delta) in stts {
        w.u32(count);
        w.u32(delta);
    }
    w.close();
    if t.samples.iter().any(|s| s.cto != 0) {
        let ctts = run_length(t.samples.iter().map(|s| s.cto));
        w.open_full(b"ctts", 1, 0);
        w.u32(ctts.len() as u32);
        for (count, offset) in ctts {
            w.u32(count);
            w.i32(offset);
        }
        w.close();
    }
    if t.kind == TrackKind::Video && t.samples.iter().any(|s| !s.keyframe) {
        let sync: Vec<u32> = (1..)
            .zip(&t.samples)
            .filter(|(_, s)| s.keyframe)
            .map(|(i, _)| i)
            .collect();
        w.open_full(b"stss", 0, 0);
        w.u32(sync.len() as u32);
        for i in sync {
            w.u32(i);
        }
        w.close();
    }
    // Sample to chunk: a new entry whenever the samples per chunk or the description change.
    let mut stsc: Vec<(u32, u32, u32)> = Vec::new();
    for (i, c) in (1u32..).zip(&t.chunks) {
        if stsc
            .last()
            .is_none_or(|&(_, n, e)| n != c.samples || e != c.entry)
        {
            stsc.push((i, c.samples, c.entry));
        }
    }
    w.open_full(b"stsc", 0, 0);
    w.u32(stsc.len() as u32);
    for (first, n, entry) in stsc {
        w.u32(first);
        w.u32(n);
        w.u32(entry);
    }
    w.close();
    w.open_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(t.samples.len() as u32);
    for s in &t.samples {
        w.u32(s.size);
    }
    w.close();
    if co64 {
        w.open_full(b"co64", 0, 0);
        w.u32(t.chunks.len() as u32);
        for c in &t.chunks {
            w.u64(data_start + c.offset);
        }
    } else {
        w.open_full(b"stco", 0, 0);
        w.u32(t.chunks.len() as u32);
        for c in &t.chunks {
            w.u32((data_start + c.offset) as u32);
        }
    }
    w.close();
}

fn run_length<T: PartialEq + Copy>(values: impl Iterator<Item = T>) -> Vec<(u32, T)> {
    let mut out: Vec<(u32, T)> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some((n, last)) if *last == v => *n += 1,
            _ => out.push((1, v)),
        }
    }
    out
}
