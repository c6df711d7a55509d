//! The MP4 demuxer on arbitrary files (a `file://` source is user input), and what it returns
//! played through the pipeline twice, as the file source loops it.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::{Driver, Settings};
use sluice_media::demux::demux;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let Ok(file) = demux(&bytes) else {
        return;
    };
    assert!(!file.tracks.is_empty());
    assert_eq!(file.frames.len(), file.tracks.len());
    assert_eq!(file.track_ends.len(), file.tracks.len());
    assert!(file.duration_secs.is_finite() && file.duration_secs >= 0.0);
    for (t, frames) in file.frames.iter().enumerate() {
        for pair in frames.windows(2) {
            assert!(pair[1].dts >= pair[0].dts, "track {t}: DTS goes backwards");
        }
        for f in frames {
            assert_eq!(f.track, t);
            assert!(f.data.len() <= data.len());
        }
    }
    let order = file.interleaved();
    assert_eq!(order.len(), file.frames.iter().map(Vec::len).sum::<usize>());

    // The file source (crates/sluice/src/source/file.rs) loops the file, shifting each pass
    // by the file's duration in the track's timescale.
    let settings = Settings {
        segment: 5,
        part: 20,
        max_gap: 9,
        segments: 5,
    };
    let mut driver = Driver::new(&settings);
    driver.start(file.tracks.clone(), &mut |_| {});
    let periods: Vec<i64> = file
        .tracks
        .iter()
        .map(|t| (file.duration_secs * f64::from(t.timescale())).round() as i64)
        .collect();
    for pass in 0..2 {
        for &(t, i) in &order {
            let mut frame = file.frames[t][i].clone();
            let shift = pass * periods[t];
            frame.dts += shift;
            frame.pts += shift;
            driver.push(frame, &mut |_| {});
        }
    }
    driver.end(&mut |_| {});
});
