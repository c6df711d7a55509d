//! AAC: the AudioSpecificConfig parser on arbitrary bytes, the `esds` the init segment writes
//! around it, and the AAC-LC config builder.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mp4_atom::{Codec, Decode, Ftyp, Moov};
use sluice_media::Track;
use sluice_media::codec::aac;
use sluice_media::mp4::{Orientation, write_init};

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = aac::parse(data) {
        assert!(info.sample_rate > 0);
        assert!(info.object_type < 32 + 64);
        assert!(info.channels <= 8);
        assert!(matches!(info.frame_samples, 960 | 1024));
        let track = Track::aac(Bytes::copy_from_slice(data)).expect("parsed, so a valid track");
        assert_eq!(
            track.codec_string(),
            format!("mp4a.40.{}", info.object_type)
        );
        assert_eq!(track.timescale(), info.sample_rate);
        // The init segment's esds carries the config verbatim, whatever its length.
        let init = write_init(&[track], Orientation::NORMAL);
        let mut buf = &init[..];
        Ftyp::decode(&mut buf).expect("the init's ftyp parses");
        let moov = Moov::decode(&mut buf).expect("the init's moov parses");
        let Codec::Mp4a(mp4a) = &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not an mp4a sample entry");
        };
        let dsi = mp4a.esds.es_desc.dec_config.dec_specific.as_ref();
        assert_eq!(
            dsi.map(|d| &d.raw[..]),
            Some(data),
            "esds does not carry the ASC"
        );
    } else {
        assert!(Track::aac(Bytes::copy_from_slice(data)).is_err());
    }

    // The AAC-LC builder's output parses back to what it was given.
    if let [a, b, c, d, ch, ..] = *data {
        let rate = u32::from_be_bytes([a, b, c, d]);
        if let Some(asc) = aac::lc_config(rate, ch) {
            let info = aac::parse(&asc).expect("lc_config output parses");
            assert_eq!((info.object_type, info.sample_rate), (2, rate));
            let expected = match ch & 0x0f {
                c @ 0..=6 => u16::from(c),
                7 => 8,
                _ => 0,
            };
            assert_eq!(info.channels, expected);
        }
    }
});
