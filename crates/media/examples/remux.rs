//! Remuxes an MP4 file into fMP4 HLS segments on disk, as fast as possible: the same work as
//! `ffmpeg -i IN -c copy -f hls -hls_segment_type fmp4 -hls_time 1`, so the two can be timed side
//! by side (`benches/peer_remux.sh`).
//!
//! Usage: `remux IN.mp4 OUTDIR`

use std::time::SystemTime;

use bytes::Bytes;
use sluice_media::pipeline::{Pipeline, PipelineConfig};
use sluice_media::playlist::{PlaylistConfig, media_playlist};
use sluice_media::ring::SegmentRing;
use sluice_media::segmenter::{Event, SegmenterConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: remux IN.mp4 OUTDIR".into());
    };
    let out = std::path::PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let file = sluice_media::demux::demux(&Bytes::from(std::fs::read(input)?))?;

    let order = file.interleaved();

    let segmenter = SegmenterConfig {
        min_segment_secs: 0.9,
        part_target_secs: 0.3,
    };
    let mut pipeline = Pipeline::new(PipelineConfig {
        segmenter,
        max_gap_secs: 10.0,
        timeline_origin_secs: 0.0,
    });
    pipeline.start_run(&file.tracks)?;
    let mut ring = SegmentRing::new(usize::MAX / 2);
    let mut events = Vec::new();
    let now = SystemTime::now();
    for (t, i) in order {
        pipeline.push(file.frames[t][i].clone(), now, &mut events);
        write(&mut ring, &mut events, &out)?;
    }
    pipeline.finish(&mut events);
    write(&mut ring, &mut events, &out)?;
    if let Some(init) = ring.segments().front().map(|s| s.init.bytes.clone()) {
        std::fs::write(out.join("init.mp4"), init)?;
    }
    let cfg = PlaylistConfig {
        ll_hls: false,
        part_target: 0.3,
        min_segment: 0.9,
    };
    std::fs::write(
        out.join("playlist.m3u8"),
        media_playlist(&ring, &cfg, false).unwrap_or_default(),
    )?;
    Ok(())
}

/// Applies events; each completed segment is written to `OUT/segment/N.m4s`.
fn write(
    ring: &mut SegmentRing,
    events: &mut Vec<Event>,
    out: &std::path::Path,
) -> std::io::Result<()> {
    for event in events.drain(..) {
        let ended = matches!(event, Event::SegmentEnd { .. });
        ring.apply(event);
        if ended && let Some(seg) = ring.last() {
            let mut f = Vec::with_capacity(seg.size());
            for part in &seg.parts {
                for chunk in &part.fragment.chunks {
                    f.extend_from_slice(chunk);
                }
            }
            std::fs::write(out.join(format!("{}.m4s", seg.sequence)), f)?;
        }
    }
    Ok(())
}
