//! H.265: hvcC codec strings (RFC 6381 / ISO/IEC 14496-15 Annex E) on arbitrary records.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sluice_fuzz::assert_config_in_init;
use sluice_media::Track;
use sluice_media::codec::hevc;

fuzz_target!(|data: &[u8]| {
    match hevc::codec_string(data) {
        Ok(s) => {
            assert!(
                data.len() >= 23 && data[0] == 1,
                "accepted a record that is not one"
            );
            // hvc1.[A-C]?<profile>.<compat hex>.<L|H><level>[.<constraint hex>]*
            let fields: Vec<&str> = s.split('.').collect();
            assert_eq!(fields[0], "hvc1");
            assert!((4..=10).contains(&fields.len()), "{s}");
            assert!(fields.iter().all(|f| !f.is_empty()), "{s}");
            assert!(s.is_ascii());
            let level = &fields[3][1..];
            assert_eq!(level.parse::<u8>().ok(), Some(data[12]), "{s}");
        }
        Err(_) => assert!(
            data.len() < 23 || data[0] != 1,
            "rejected a record: {data:?}"
        ),
    }
    if let Ok(track) = Track::h265(Bytes::copy_from_slice(data), 90_000, 640, 360) {
        assert_config_in_init(track, b"hvcC", data);
    }
});
