//! Media fragments: one `moof` (a `traf` per track) followed by one `mdat`.
//!
//! The payloads are not copied: a [`Fragment`] is the `moof` and `mdat` header in one small
//! buffer followed by the frames' own [`Bytes`], ready to be written out as a vectored body.

use bytes::Bytes;

use super::boxes::BoxWriter;

/// `tfhd` flag: offsets are relative to the start of the `moof`.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
/// `trun` flags.
const DATA_OFFSET_PRESENT: u32 = 0x0001;
const SAMPLE_DURATION_PRESENT: u32 = 0x0100;
const SAMPLE_SIZE_PRESENT: u32 = 0x0200;
const SAMPLE_FLAGS_PRESENT: u32 = 0x0400;
const SAMPLE_CTO_PRESENT: u32 = 0x0800;
/// Sample flags: a sync sample that depends on no other (`sample_depends_on` = 2).
const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// Sample flags: depends on others (`sample_depends_on` = 1) and `sample_is_non_sync_sample`.
const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// One sample of a track run.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Composition time offset (PTS − DTS); negative values make the `trun` version 1.
    pub cto: i32,
    /// Whether this is a sync sample.
    pub keyframe: bool,
    /// Payload.
    pub data: Bytes,
}

/// The samples of one track in one fragment.
#[derive(Clone, Debug)]
pub struct TrackRun {
    /// Track ID as in the init segment (track index + 1).
    pub track_id: u32,
    /// True for video: per-sample sync flags and composition offsets are written.
    pub video: bool,
    /// Decode time of the first sample (`tfdt`), in the track's timescale.
    pub base_decode_time: u64,
    /// The samples, in decode order.
    pub samples: Vec<Sample>,
}

/// A written `moof`+`mdat`.
#[derive(Clone, Debug, Default)]
pub struct Fragment {
    /// The `moof` and `mdat` header, then each sample's payload, in file order.
    pub chunks: Vec<Bytes>,
    /// Total size in bytes.
    pub size: usize,
}

impl Fragment {
    /// Concatenates the chunks (for tests and the rare caller that needs one buffer).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out
    }
}

/// Writes one fragment with `sequence` as its `mfhd` sequence number. Runs without samples
/// are skipped.
pub fn write_fragment(sequence: u32, runs: &[TrackRun]) -> Fragment {
    let runs: Vec<&TrackRun> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let sample_count: usize = runs.iter().map(|r| r.samples.len()).sum();
    let mut w = BoxWriter::with_capacity(64 + runs.len() * 64 + sample_count * 16);
    w.open(b"moof");
    w.open_full(b"mfhd", 0, 0);
    w.u32(sequence);
    w.close();
    let mut data_offset_slots = Vec::with_capacity(runs.len());
    for run in &runs {
        w.open(b"traf");
        w.open_full(b"tfhd", 0, DEFAULT_BASE_IS_MOOF);
        w.u32(run.track_id);
        w.close();
        w.open_full(b"tfdt", 1, 0);
        w.u64(run.base_decode_time);
        w.close();

        let any_cto = run.video && run.samples.iter().any(|s| s.cto != 0);
        let negative_cto = any_cto && run.samples.iter().any(|s| s.cto < 0);
        let mut flags = DATA_OFFSET_PRESENT | SAMPLE_DURATION_PRESENT | SAMPLE_SIZE_PRESENT;
        if run.video {
            flags |= SAMPLE_FLAGS_PRESENT;
        }
        if any_cto {
            flags |= SAMPLE_CTO_PRESENT;
        }
        w.open_full(b"trun", u8::from(negative_cto), flags);
        w.u32(run.samples.len() as u32);
        data_offset_slots.push(w.buf.len());
        w.i32(0); // data_offset, patched below
        for s in &run.samples {
            w.u32(s.duration);
            w.u32(s.data.len() as u32);
            if run.video {
                w.u32(if s.keyframe {
                    SYNC_SAMPLE_FLAGS
                } else {
                    NON_SYNC_SAMPLE_FLAGS
                });
            }
            if any_cto {
                w.i32(s.cto);
            }
        }
        w.close();
        w.close();
    }
    w.close(); // moof

    let payload: usize = runs
        .iter()
        .flat_map(|r| r.samples.iter())
        .map(|s| s.data.len())
        .sum();
    let moof_len = w.buf.len();
    let large = payload + 8 > u32::MAX as usize;
    let mdat_header = if large { 16 } else { 8 };
    let mut offset = moof_len + mdat_header;
    for (slot, run) in data_offset_slots.into_iter().zip(&runs) {
        let v = i32::try_from(offset).unwrap_or(i32::MAX);
        w.buf[slot..slot + 4].copy_from_slice(&v.to_be_bytes());
        offset += run.samples.iter().map(|s| s.data.len()).sum::<usize>();
    }
    let mut header = w.finish();
    if large {
        header.extend_from_slice(&1u32.to_be_bytes());
        header.extend_from_slice(b"mdat");
        header.extend_from_slice(&((payload + 16) as u64).to_be_bytes());
    } else {
        header.extend_from_slice(&((payload + 8) as u32).to_be_bytes());
        header.extend_from_slice(b"mdat");
    }
    let size = header.len() + payload;
    let mut chunks = Vec::with_capacity(1 + sample_count);
    chunks.push(Bytes::from(header));
    for run in &runs {
        chunks.extend(run.samples.iter().map(|s| s.data.clone()));
    }
    Fragment { chunks, size }
}
