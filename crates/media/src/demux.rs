//! Demuxing a progressive MP4 file held in memory (the file source, the demo stream).
//!
//! Box parsing is mp4-atom's; this module expands the sample tables into a flat list of frames
//! whose payloads are slices of the file's buffer, so demuxing copies no media.

use bytes::Bytes;
use mp4_atom::{Codec as SampleEntry, Decode, Encode, Moov, StszSamples, Trak};

use crate::codec::CodecError;
use crate::frame::Frame;
use crate::track::Track;

/// Why a file cannot be used as a source.
#[derive(Debug, thiserror::Error)]
pub enum DemuxError {
    /// The file has no `moov` box (a fragmented or truncated file).
    #[error("no moov box: not a progressive MP4 file, or truncated")]
    NoMoov,
    /// A box could not be parsed.
    #[error("invalid MP4: {0}")]
    Invalid(String),
    /// A sample table points outside the file.
    #[error("track {track}: sample table is inconsistent ({what})")]
    SampleTable {
        /// Track index.
        track: usize,
        /// What did not add up.
        what: &'static str,
    },
    /// A codec configuration is unusable.
    #[error("track {track}: {source}")]
    Codec {
        /// Track index.
        track: usize,
        /// The cause.
        source: CodecError,
    },
    /// No track in the file is H.264, H.265 or AAC.
    #[error("no H.264/H.265 video or AAC audio track")]
    NoUsableTrack,
}

/// A demuxed file: the supported tracks and all their frames in decode order per track.
#[derive(Debug)]
pub struct Mp4File {
    /// Supported tracks (unsupported ones are skipped).
    pub tracks: Vec<Track>,
    /// Frames per track, in decode order, with timestamps starting at the edit list's start.
    pub frames: Vec<Vec<Frame>>,
    /// The longest track's end, in seconds: the loop period of a looped file.
    pub duration_secs: f64,
    /// Each track's end (last DTS + duration) in its timescale.
    pub track_ends: Vec<i64>,
}

impl Mp4File {
    /// Every frame as (track, index), all tracks interleaved in decode-time order, as a live
    /// source delivers them.
    pub fn interleaved(&self) -> Vec<(usize, usize)> {
        let mut order: Vec<(f64, usize, usize)> = self
            .frames
            .iter()
            .enumerate()
            .flat_map(|(t, frames)| {
                let ts = f64::from(self.tracks[t].timescale());
                frames
                    .iter()
                    .enumerate()
                    .map(move |(i, f)| (f.dts as f64 / ts, t, i))
            })
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        order.into_iter().map(|(_, t, i)| (t, i)).collect()
    }
}

/// Demuxes `data`, a whole MP4 file.
pub fn demux(data: &Bytes) -> Result<Mp4File, DemuxError> {
    let moov = find_moov(data)?;
    let mut tracks = Vec::new();
    let mut frames = Vec::new();
    let mut track_ends = Vec::new();
    for (i, trak) in moov.trak.iter().enumerate() {
        let Some(track) = track_of(i, trak)? else {
            continue;
        };
        let (f, end) = frames_of(i, trak, data)?;
        let index = tracks.len();
        frames.push(
            f.into_iter()
                .map(|mut fr| {
                    fr.track = index;
                    fr
                })
                .collect::<Vec<_>>(),
        );
        track_ends.push(end);
        tracks.push(track);
    }
    if tracks.is_empty() {
        return Err(DemuxError::NoUsableTrack);
    }
    let duration_secs = tracks
        .iter()
        .zip(&track_ends)
        .map(|(t, &end)| end as f64 / f64::from(t.timescale()))
        .fold(0.0, f64::max);
    Ok(Mp4File {
        tracks,
        frames,
        duration_secs,
        track_ends,
    })
}

fn find_moov(data: &[u8]) -> Result<Moov, DemuxError> {
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size32 = u32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        let kind = &data[pos + 4..pos + 8];
        let size = match size32 {
            0 => data.len() - pos,
            1 => {
                let b = data.get(pos + 8..pos + 16).ok_or(DemuxError::NoMoov)?;
                usize::try_from(u64::from_be_bytes(b.try_into().unwrap_or([0; 8])))
                    .map_err(|_| DemuxError::NoMoov)?
            }
            n => n as usize,
        };
        if size < 8 || pos.checked_add(size).is_none_or(|end| end > data.len()) {
            break;
        }
        if kind == b"moov" {
            let moov = &data[pos..pos + size];
            let defused = defuse_sample_groups(moov);
            let mut buf = defused.as_deref().unwrap_or(moov);
            return Moov::decode(&mut buf).map_err(|e| DemuxError::Invalid(e.to_string()));
        }
        pos += size;
    }
    Err(DemuxError::NoMoov)
}

/// Works around an unbounded loop in mp4-atom 0.17: it decodes a version-0 `sgpd` (sample
/// group description) box by giving the first entry the rest of the box and each further entry
/// nothing, `entry_count` times — up to 2^32 entries, gigabytes of memory and minutes of CPU
/// for a 28-byte file (found by `fuzz/fuzz_targets/demux.rs`; the input is in
/// `fuzz/regressions/demux/`). It decodes such a box wherever one appears in the tree, so every
/// plausible version-0 `sgpd` header in the `moov` is renamed `free`, which mp4-atom skips:
/// Sluice uses no sample groups, and version 0 is deprecated. Returns the patched copy, or
/// `None` when there is nothing to rename.
fn defuse_sample_groups(moov: &[u8]) -> Option<Vec<u8>> {
    let mut patched: Option<Vec<u8>> = None;
    let mut from = 4;
    while let Some(found) = moov
        .get(from..)
        .and_then(|rest| rest.windows(4).position(|w| w == b"sgpd"))
    {
        let at = from + found;
        from = at + 4;
        let size = u32::from_be_bytes([moov[at - 4], moov[at - 3], moov[at - 2], moov[at - 1]]);
        let version_at = match size {
            0 => at + 4,
            1 => at + 12,
            n => {
                let fits = (at - 4)
                    .checked_add(n as usize)
                    .is_some_and(|end| end <= moov.len());
                if n < 20 || !fits {
                    continue;
                }
                at + 4
            }
        };
        if moov.get(version_at).is_some_and(|&v| v == 0) {
            patched.get_or_insert_with(|| moov.to_vec())[at..at + 4].copy_from_slice(b"free");
        }
    }
    patched
}

/// The record inside an encoded box (its body without the 8-byte header).
fn box_body<T: Encode>(b: &T) -> Result<Bytes, DemuxError> {
    let mut buf = Vec::new();
    b.encode(&mut buf)
        .map_err(|e| DemuxError::Invalid(e.to_string()))?;
    Ok(Bytes::from(buf).slice(8..))
}

fn track_of(i: usize, trak: &Trak) -> Result<Option<Track>, DemuxError> {
    let timescale = trak.mdia.mdhd.timescale;
    let Some(entry) = trak.mdia.minf.stbl.stsd.codecs.first() else {
        return Ok(None);
    };
    let codec_err = |source| DemuxError::Codec { track: i, source };
    let track = match entry {
        SampleEntry::Avc1(avc1) => Track::h264(
            box_body(&avc1.avcc)?,
            timescale,
            avc1.visual.width,
            avc1.visual.height,
        ),
        SampleEntry::Hvc1(hvc1) => Track::h265(
            box_body(&hvc1.hvcc)?,
            timescale,
            hvc1.visual.width,
            hvc1.visual.height,
        ),
        SampleEntry::Hev1(hev1) => Track::h265(
            box_body(&hev1.hvcc)?,
            timescale,
            hev1.visual.width,
            hev1.visual.height,
        ),
        SampleEntry::Mp4a(mp4a) => match &mp4a.esds.es_desc.dec_config.dec_specific {
            Some(dsi) if !dsi.raw.is_empty() => Track::aac(Bytes::from(dsi.raw.clone())),
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    track.map(Some).map_err(codec_err)
}

fn frames_of(i: usize, trak: &Trak, data: &Bytes) -> Result<(Vec<Frame>, i64), DemuxError> {
    let bad = |what| DemuxError::SampleTable { track: i, what };
    let stbl = &trak.mdia.minf.stbl;
    let sizes: Vec<u32> = match &stbl.stsz.samples {
        StszSamples::Identical { count, .. } if *count as usize > data.len() => {
            return Err(bad("more samples than bytes in the file"));
        }
        StszSamples::Identical { count, size } => vec![*size; *count as usize],
        StszSamples::Different { sizes } => sizes.clone(),
    };
    let n = sizes.len();

    let chunk_offsets: Vec<u64> = match (&stbl.stco, &stbl.co64) {
        (Some(stco), _) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
        (None, Some(co64)) => co64.entries.clone(),
        (None, None) => return Err(bad("no chunk offsets")),
    };
    let mut offsets = Vec::with_capacity(n);
    let entries = &stbl.stsc.entries;
    for (e, entry) in entries.iter().enumerate() {
        let first = entry.first_chunk.max(1) as usize;
        let last = entries.get(e + 1).map_or(chunk_offsets.len(), |next| {
            (next.first_chunk as usize).saturating_sub(1)
        });
        for chunk in first..=last {
            // Every sample placed: the rest of the table has nothing to add (and a hostile one
            // could make this loop quadratic).
            if offsets.len() == n {
                break;
            }
            let Some(&base) = chunk_offsets.get(chunk - 1) else {
                break;
            };
            let mut off = base;
            for _ in 0..entry.samples_per_chunk {
                let Some(&size) = sizes.get(offsets.len()) else {
                    break;
                };
                offsets.push(off);
                off = off.saturating_add(u64::from(size));
            }
        }
    }
    if offsets.len() != n {
        return Err(bad("chunk map does not cover every sample"));
    }

    let mut durations = Vec::with_capacity(n);
    for e in &stbl.stts.entries {
        let count = (e.sample_count as usize).min(n - durations.len());
        durations.extend(std::iter::repeat_n(e.sample_delta, count));
    }
    if durations.len() < n {
        return Err(bad("fewer time-to-sample entries than samples"));
    }
    let mut ctos = Vec::with_capacity(n);
    if let Some(ctts) = &stbl.ctts {
        for e in &ctts.entries {
            let count = (e.sample_count as usize).min(n - ctos.len());
            ctos.extend(std::iter::repeat_n(e.sample_offset, count));
        }
    }
    let keyframes: Option<std::collections::HashSet<u32>> = stbl
        .stss
        .as_ref()
        .map(|s| s.entries.iter().copied().collect());

    // A leading edit with a media time skips encoder priming (AAC) or B-frame delay.
    let shift = trak
        .edts
        .as_ref()
        .and_then(|e| e.elst.as_ref())
        .and_then(|l| l.entries.iter().find_map(|e| e.media_time))
        .map_or(Ok(0), i64::try_from)
        .map_err(|_| bad("edit list starts after the track's end"))?;
    let media_end: i64 = durations.iter().map(|&d| i64::from(d)).sum();
    if shift > media_end {
        return Err(bad("edit list starts after the track's end"));
    }

    let mut frames = Vec::with_capacity(n);
    let mut dts = 0i64;
    for s in 0..n {
        let start = usize::try_from(offsets[s]).map_err(|_| bad("offset too large"))?;
        let end = start
            .checked_add(sizes[s] as usize)
            .filter(|&end| end <= data.len())
            .ok_or(bad("sample beyond the end of the file"))?;
        let cto = ctos.get(s).copied().unwrap_or(0);
        frames.push(Frame {
            track: i,
            dts: dts - shift,
            pts: dts + cto - shift,
            duration: Some(durations[s]),
            keyframe: keyframes
                .as_ref()
                .is_none_or(|k| k.contains(&(s as u32 + 1))),
            data: data.slice(start..end),
        });
        dts += i64::from(durations[s]);
    }
    Ok((frames, dts - shift))
}
