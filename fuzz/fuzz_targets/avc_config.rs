//! H.264: avcC validation and codec strings on arbitrary records, and avcC records built from
//! arbitrary SPS/PPS (as an RTSP source gets them from `sprop-parameter-sets`).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::assert_config_in_init;
use sluice_media::Track;
use sluice_media::codec::avc;

fuzz_target!(|data: &[u8]| {
    let valid = avc::validate(data).is_ok();
    match avc::codec_string(data) {
        Ok(s) => {
            assert!(valid, "a codec string for an invalid record");
            assert_eq!(
                s,
                format!("avc1.{:02x}{:02x}{:02x}", data[1], data[2], data[3])
            );
        }
        Err(_) => assert!(!valid, "no codec string for a valid record"),
    }
    if let Ok(track) = Track::h264(Bytes::copy_from_slice(data), 90_000, 640, 360) {
        assert!(valid);
        assert_config_in_init(track, b"avcC", data);
    }

    // The first two bytes split the rest into an SPS and a PPS.
    if data.len() >= 2 {
        let at = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
        let (sps, pps) = data[2..].split_at(at);
        if let Ok(avcc) = avc::avcc_from_parameter_sets(sps, pps) {
            avc::validate(&avcc).expect("an avcC built from an SPS and a PPS is valid");
            assert_eq!(
                avc::codec_string(&avcc).unwrap(),
                format!("avc1.{:02x}{:02x}{:02x}", sps[1], sps[2], sps[3])
            );
        }
    }
});
