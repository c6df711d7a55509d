//! The clip writer fed the parts the pipeline makes from arbitrary frames, across runs and
//! parameter changes; the clip must demux back into exactly the payloads it was given.
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mp4_atom::{Decode, Ftyp, Moov};
use sluice_fuzz::{Driver, Op, Settings};
use sluice_media::TrackKind;
use sluice_media::demux::demux;
use sluice_media::mp4::{ClipWriter, Orientation};
use sluice_media::segmenter::{Event, InitSegment};

#[derive(Arbitrary, Debug)]
struct Input {
    settings: Settings,
    orientation: u8,
    ops: Vec<Op>,
}

/// The clip being written, and per clip track the payloads it must contain.
struct Clip {
    writer: ClipWriter,
    /// (kind, timescale) of the clip's tracks, in order.
    tracks: Vec<(TrackKind, u32)>,
    expected: Vec<Vec<(Bytes, bool)>>,
    data: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let orientation = Orientation::new(input.orientation).unwrap_or(Orientation::NORMAL);
    let mut driver = Driver::new(&input.settings);
    let mut clip: Option<Clip> = None;
    let mut init: Option<Arc<InitSegment>> = None;
    let mut on_event = |event: &Event| match event {
        Event::SegmentStart { init: i, .. } => init = Some(i.clone()),
        Event::Part(part) => {
            let init = init.as_ref().expect("a part after its segment's start");
            let clip = clip.get_or_insert_with(|| Clip {
                writer: ClipWriter::new(init, orientation),
                tracks: init
                    .tracks
                    .iter()
                    .map(|t| (t.kind(), t.timescale()))
                    .collect(),
                expected: vec![Vec::new(); init.tracks.len()],
                data: Vec::new(),
            });
            // The writer's rule: a run goes to the clip track of the same kind and timescale.
            let mut accepted = Vec::new();
            let mut chunks = part.fragment.chunks.iter().skip(1);
            for run in &part.runs {
                let source = &init.tracks[run.track];
                let target = clip
                    .tracks
                    .iter()
                    .position(|&(k, ts)| k == source.kind() && ts == source.timescale());
                for sample in &run.samples {
                    let chunk = chunks.next().unwrap().clone();
                    if let Some(t) = target {
                        clip.expected[t].push((chunk.clone(), sample.keyframe));
                        accepted.push(chunk);
                    }
                }
            }
            let data = clip.writer.add_part(init, part);
            assert_eq!(
                data, accepted,
                "add_part returns the accepted runs' payloads"
            );
            for chunk in data {
                clip.data.extend_from_slice(&chunk);
            }
            assert_eq!(clip.writer.data_len(), clip.data.len() as u64);
        }
        Event::SegmentEnd { .. } => {}
    };
    for op in &input.ops {
        driver.apply(op, &mut on_event);
    }
    driver.end(&mut on_event);

    let Some(clip) = clip else {
        return;
    };
    assert!(!clip.writer.is_empty());
    let duration = clip.writer.duration_secs();
    assert!(
        duration.is_finite() && duration > 0.0,
        "clip duration {duration}"
    );
    let mut file = clip.writer.header();
    let mut buf = &file[..];
    Ftyp::decode(&mut buf).expect("ftyp parses");
    Moov::decode(&mut buf).expect("moov parses");
    assert_eq!(&buf[4..8], b"mdat");
    file.extend_from_slice(&clip.data);

    // Our own demuxer reads back every payload, per track, in order, with its sync flag.
    let demuxed = demux(&Bytes::from(file)).expect("the clip demuxes");
    let expected: Vec<&Vec<(Bytes, bool)>> =
        clip.expected.iter().filter(|e| !e.is_empty()).collect();
    assert_eq!(
        demuxed.frames.len(),
        expected.len(),
        "one track per track with samples"
    );
    for (frames, expected) in demuxed.frames.iter().zip(expected) {
        assert_eq!(frames.len(), expected.len());
        for (frame, (data, keyframe)) in frames.iter().zip(expected) {
            assert_eq!(&frame.data, data, "payload");
            if demuxed.tracks[frame.track].kind() == TrackKind::Video {
                assert_eq!(frame.keyframe, *keyframe, "sync sample");
            }
        }
    }
});
