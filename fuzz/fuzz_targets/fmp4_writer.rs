//! The fMP4 writer: init segments for arbitrary track sets and orientations, and fragments of
//! arbitrary runs (track IDs, decode times, durations, composition offsets, sync flags, sizes).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mp4_atom::{Decode, Ftyp, Moov};
use sluice_fuzz::{TrackSpec, check_fragment};
use sluice_media::mp4::fragment::{Sample, TrackRun, write_fragment};
use sluice_media::mp4::{Orientation, write_init};
use sluice_media::{Track, TrackKind};

#[derive(Arbitrary, Debug)]
struct SampleSpec {
    duration: u32,
    cto: i32,
    keyframe: bool,
    size: u8,
}

#[derive(Arbitrary, Debug)]
struct RunSpec {
    track_id: u32,
    video: bool,
    base_decode_time: u64,
    samples: Vec<SampleSpec>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    tracks: Vec<TrackSpec>,
    orientation: u8,
    sequence: u32,
    runs: Vec<RunSpec>,
}

fuzz_target!(|input: Input| {
    let tracks: Vec<Track> = input.tracks.iter().filter_map(TrackSpec::build).collect();
    let orientation = Orientation::new(input.orientation).unwrap_or(Orientation::NORMAL);
    let init = write_init(&tracks, orientation);
    let mut buf = &init[..];
    Ftyp::decode(&mut buf).expect("ftyp parses");
    let moov = Moov::decode(&mut buf).expect("moov parses");
    assert!(buf.is_empty(), "bytes after the moov");
    assert_eq!(moov.trak.len(), tracks.len());
    assert_eq!(moov.mvex.as_ref().map_or(0, |m| m.trex.len()), tracks.len());
    for (i, (trak, track)) in moov.trak.iter().zip(&tracks).enumerate() {
        assert_eq!(trak.tkhd.track_id as usize, i + 1);
        assert_eq!(trak.mdia.mdhd.timescale, track.timescale());
        if track.kind() == TrackKind::Video {
            assert_eq!(trak.tkhd.width.integer(), track.width());
            assert_eq!(trak.tkhd.height.integer(), track.height());
        }
    }

    let mut fill = 0u8;
    let runs: Vec<TrackRun> = input
        .runs
        .iter()
        .map(|r| TrackRun {
            track_id: r.track_id,
            video: r.video,
            base_decode_time: r.base_decode_time,
            samples: r
                .samples
                .iter()
                .map(|s| {
                    fill = fill.wrapping_add(1);
                    Sample {
                        duration: s.duration,
                        cto: s.cto,
                        keyframe: s.keyframe,
                        data: Bytes::from(vec![fill; usize::from(s.size)]),
                    }
                })
                .collect(),
        })
        .collect();
    let fragment = write_fragment(input.sequence, &runs);
    check_fragment(&fragment, input.sequence, &runs);
});
