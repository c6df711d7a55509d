//! The HLS request parsers on arbitrary text: the playlist query (`_HLS_msn`, `_HLS_part`,
//! `_HLS_skip`) decided against a real ring as the handler does, and media file names.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice::outputs::hls::{parse_media_name, parse_query};
use sluice_fuzz::{Driver, Settings};
use sluice_media::playlist::{
    PlaylistConfig, advance_part_limit, blocking, media_playlist, part_target,
};
use sluice_media::ring::SegmentRing;

const DEMO: &[u8] = include_bytes!("../../crates/sluice/assets/demo.mp4");

/// The demo clip's segments, as a live stream's ring holds them.
fn ring() -> &'static SegmentRing {
    static RING: OnceLock<SegmentRing> = OnceLock::new();
    RING.get_or_init(|| {
        let file = sluice_media::demux::demux(&bytes::Bytes::from_static(DEMO)).unwrap();
        let mut driver = Driver::new(&Settings {
            segment: 5,
            part: 15,
            max_gap: 9,
            segments: 5,
        });
        driver.start(file.tracks.clone(), &mut |_| {});
        for (t, i) in file.interleaved() {
            driver.push(file.frames[t][i].clone(), &mut |_| {});
        }
        driver.ring
    })
}

fuzz_target!(|data: &str| {
    if let Ok(q) = parse_query(Some(data)) {
        assert!(q.part.is_none() || q.msn.is_some());
        assert!(q.msn.is_none() || data.contains("_HLS_msn="));
        // As the playlist handler decides a blocking request (crates/sluice/src/hls/mod.rs).
        let ring = ring();
        let cfg = PlaylistConfig {
            ll_hls: true,
            part_target: 0.25,
            min_segment: 0.9,
        };
        if let Some(msn) = q.msn {
            let limit = advance_part_limit(part_target(ring, &cfg));
            let _ = blocking(ring, msn, q.part, limit);
        }
        assert!(media_playlist(ring, &cfg, q.skip).is_some());
    }
    if let Some((sequence, part)) = parse_media_name(data) {
        assert!(data.ends_with(".m4s"));
        let canonical = match part {
            Some(p) => format!("{sequence}.{p}.m4s"),
            None => format!("{sequence}.m4s"),
        };
        assert_eq!(parse_media_name(&canonical), Some((sequence, part)));
    }
});
