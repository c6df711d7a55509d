//! The picture of a snapshot: one H.264 keyframe, as Sluice holds it in memory, to a JPEG of the
//! requested size in the stream's display orientation. Synchronous and CPU-bound: a 1080p
//! keyframe of 150 KB takes about 70 ms of one core at native size (decode ~50 ms, JPEG encode
//! ~17 ms) and 50 ms at 320 wide (`cargo bench -p sluice --bench snapshot`), so callers on an
//! async runtime run it on a blocking thread.
//!
//! Steps, each in a sibling module: the `avcC` parameter sets and the sample's NAL units become
//! one Annex B access unit (`annexb`), OpenH264 decodes it (`decode`), the YUV 4:2:0 planes are
//! area averaged to the target size in stored orientation (`scale`), converted to JFIF's
//! full-range BT.601 YCbCr (`color`, with range and matrix read from the SPS by `sps`), and
//! encoded with the orientation (`orient`) applied as the encoder reads them (`encode`).

use bytes::Bytes;
use sluice_media::{Codec, Track};

use super::annexb::{self, NAL_IDR, NAL_SLICE, NAL_SPS};
use super::color::Conversion;
use super::decode;
use super::encode::{self, Planes};
pub use super::error::SnapshotError;
pub use super::orient::Orientation;
use super::scale;
use super::sps;

/// The JPEG quality used when a request names none.
pub const DEFAULT_QUALITY: u8 = 80;

/// The largest width or height a request may name (8K UHD's width).
pub const MAX_DIMENSION: u32 = 7680;

/// The size of a snapshot, in displayed (oriented) pixels.
///
/// - Neither side: the picture's native size.
/// - One side: that side, the other following the displayed picture's aspect ratio (rounded,
///   at least 1).
/// - Both sides: exactly that size; the aspect ratio is not kept.
///
/// Snapshots only scale down: a side above the native one is clamped to the native one (so
/// `width=4000` on a 1920×1080 picture gives 1920×1080, and with one side given the other side
/// follows the clamped one). Sides are validated against 1..=[`MAX_DIMENSION`] before clamping.
/// Odd sizes are fine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotSize {
    /// Requested displayed width in pixels.
    pub width: Option<u32>,
    /// Requested displayed height in pixels.
    pub height: Option<u32>,
}

impl SnapshotSize {
    /// The native size.
    pub const NATIVE: SnapshotSize = SnapshotSize {
        width: None,
        height: None,
    };

    /// Checks each given side is within 1..=[`MAX_DIMENSION`]; callers may use it to reject a
    /// request before decoding anything.
    pub fn validate(&self) -> Result<(), SnapshotError> {
        for (name, side) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = side
                && !(1..=MAX_DIMENSION).contains(&v)
            {
                return Err(SnapshotError::InvalidSize(format!(
                    "{name} {v} is not within 1 to {MAX_DIMENSION}"
                )));
            }
        }
        Ok(())
    }

    /// The output size for a displayed picture of `native_width` × `native_height`.
    pub fn resolve(
        &self,
        native_width: u32,
        native_height: u32,
    ) -> Result<(u32, u32), SnapshotError> {
        self.validate()?;
        if native_width == 0 || native_height == 0 {
            return Err(SnapshotError::InvalidSize("the picture is empty".into()));
        }
        // `side * other / native`, rounded, for `side <= native`: fits in u32, at least 1.
        let follow = |side: u32, other: u32, native: u32| {
            let scaled =
                (u64::from(other) * u64::from(side) + u64::from(native) / 2) / u64::from(native);
            (scaled as u32).max(1)
        };
        Ok(match (self.width, self.height) {
            (None, None) => (native_width, native_height),
            (Some(w), None) => {
                let w = w.min(native_width);
                (w, follow(w, native_height, native_width))
            }
            (None, Some(h)) => {
                let h = h.min(native_height);
                (follow(h, native_width, native_height), h)
            }
            (Some(w), Some(h)) => (w.min(native_width), h.min(native_height)),
        })
    }
}

/// A JPEG file and its (displayed) dimensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jpeg {
    /// The file: baseline JFIF, 4:2:0 chroma.
    pub bytes: Bytes,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// A snapshot of `track`'s keyframe `sample`: dispatches on the codec, and reports
/// [`SnapshotError::Unsupported`] for the codecs that have no decoder here (H.265, audio).
pub fn keyframe_to_jpeg(
    track: &Track,
    sample: &[u8],
    orientation: u8,
    size: SnapshotSize,
    quality: u8,
) -> Result<Jpeg, SnapshotError> {
    match track.codec() {
        Codec::H264 => h264_keyframe_to_jpeg(track.config(), sample, orientation, size, quality),
        Codec::H265 => Err(SnapshotError::Unsupported(
            "snapshots of H.265 streams are not available: H.265 decoding is not built in".into(),
        )),
        Codec::Aac => Err(SnapshotError::Unsupported(
            "an audio track has no picture".into(),
        )),
    }
}

/// Decodes an H.264 keyframe and encodes it as a JPEG.
///
/// - `avcc`: the track's `avcC` record body ([`Track::config`]), giving the parameter sets and
///   the NAL length size;
/// - `sample`: the keyframe in MP4 form (length-prefixed NAL units); parameter sets carried in
///   band override the record's;
/// - `orientation`: the EXIF orientation (1..=8) to display the picture in;
/// - `size`: the displayed size wanted (see [`SnapshotSize`]);
/// - `quality`: JPEG quality, clamped to 1..=100 ([`DEFAULT_QUALITY`] is 80).
///
/// Any input, however malformed, gives an error rather than a panic.
pub fn h264_keyframe_to_jpeg(
    avcc: &[u8],
    sample: &[u8],
    orientation: u8,
    size: SnapshotSize,
    quality: u8,
) -> Result<Jpeg, SnapshotError> {
    let orientation = Orientation::from_exif(orientation)
        .ok_or(SnapshotError::InvalidOrientation(orientation))?;
    size.validate()?;
    let config = annexb::parse_avcc(avcc).map_err(undecodable)?;
    let units = annexb::sample_nal_units(sample, config.length_size).map_err(undecodable)?;
    if !units
        .iter()
        .any(|u| (NAL_SLICE..=NAL_IDR).contains(&annexb::nal_type(u)))
    {
        return Err(SnapshotError::NoPicture);
    }
    // The SPS in force: the last one in band, else the record's.
    let sps = units
        .iter()
        .rev()
        .chain(config.sps.iter())
        .find(|u| annexb::nal_type(u) == NAL_SPS);
    let signal = sps.and_then(|s| sps::signal_type(s)).unwrap_or_default();
    let access_unit = annexb::access_unit(&config, &units);
    let planes = decode::decode(&access_unit, |picture| {
        let too_big = |_| SnapshotError::Undecodable("the picture is too large".into());
        let stored_w = u32::try_from(picture.y.width).map_err(too_big)?;
        let stored_h = u32::try_from(picture.y.height).map_err(too_big)?;
        let (native_w, native_h) = orientation.apply_to_size(stored_w, stored_h);
        let (out_w, out_h) = size.resolve(native_w, native_h)?;
        let (w, h) = orientation.apply_to_size(out_w, out_h);
        let (w, h) = (w as usize, h as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let luma_ratio = (
            picture.y.width as f64 / w as f64,
            picture.y.height as f64 / h as f64,
        );
        Ok((
            Planes {
                y: scale::resize(picture.y, w, h),
                cb: scale::resize_by(picture.u, cw, ch, luma_ratio),
                cr: scale::resize_by(picture.v, cw, ch, luma_ratio),
            },
            picture.y.height,
        ))
    });
    let (mut planes, stored_height) = planes?;
    Conversion::new(signal, stored_height).apply(&mut planes.y, &mut planes.cb, &mut planes.cr);
    let (bytes, width, height) = encode::encode(&planes, orientation, quality)?;
    Ok(Jpeg {
        bytes: Bytes::from(bytes),
        width,
        height,
    })
}

fn undecodable(reason: &'static str) -> SnapshotError {
    SnapshotError::Undecodable(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_media::demux::{Mp4File, demux};

    /// The bundled demo clip (640×360 H.264 Main): its track and frames.
    fn demo() -> Mp4File {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo.mp4");
        demux(&Bytes::from(std::fs::read(path).unwrap())).unwrap()
    }

    fn demo_keyframe() -> (Track, Bytes) {
        let file = demo();
        let video = file.tracks.iter().position(|t| t.codec() == Codec::H264);
        let video = video.unwrap();
        let key = file.frames[video].iter().find(|f| f.keyframe).unwrap();
        (file.tracks[video].clone(), key.data.clone())
    }

    /// Width and height from a JPEG's start-of-frame segment.
    fn sof_size(jpeg: &[u8]) -> (u32, u32) {
        assert_eq!(&jpeg[..2], [0xff, 0xd8], "no SOI");
        let mut pos = 2;
        loop {
            assert_eq!(jpeg[pos], 0xff);
            let marker = jpeg[pos + 1];
            let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
            if marker == 0xc0 {
                let h = u16::from_be_bytes([jpeg[pos + 5], jpeg[pos + 6]]);
                let w = u16::from_be_bytes([jpeg[pos + 7], jpeg[pos + 8]]);
                return (u32::from(w), u32::from(h));
            }
            pos += 2 + len;
        }
    }

    fn snapshot(orientation: u8, width: Option<u32>, height: Option<u32>) -> Jpeg {
        let (track, key) = demo_keyframe();
        let size = SnapshotSize { width, height };
        let jpeg = h264_keyframe_to_jpeg(track.config(), &key, orientation, size, DEFAULT_QUALITY)
            .unwrap();
        assert_eq!(sof_size(&jpeg.bytes), (jpeg.width, jpeg.height));
        assert_eq!(&jpeg.bytes[jpeg.bytes.len() - 2..], [0xff, 0xd9], "no EOI");
        jpeg
    }

    #[test]
    fn sizes_follow_the_request_and_the_orientation() {
        // Orientation, requested width and height, expected size.
        type Case = (u8, Option<u32>, Option<u32>, (u32, u32));
        let cases: &[Case] = &[
            (1, None, None, (640, 360)),
            (1, Some(320), None, (320, 180)),
            (1, None, Some(90), (160, 90)),
            (1, Some(101), Some(77), (101, 77)),
            (1, Some(1), None, (1, 1)),
            (1, Some(4000), None, (640, 360)),
            (1, Some(4000), Some(100), (640, 100)),
            (3, Some(321), None, (321, 181)),
            (6, None, None, (360, 640)),
            (8, None, None, (360, 640)),
            (6, Some(180), None, (180, 320)),
            (8, Some(180), None, (180, 320)),
            (5, None, Some(320), (180, 320)),
            (7, Some(99), Some(51), (99, 51)),
        ];
        for &(orientation, width, height, expected) in cases {
            let jpeg = snapshot(orientation, width, height);
            assert_eq!(
                (jpeg.width, jpeg.height),
                expected,
                "orientation {orientation}, {width:?}x{height:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_sizes_and_orientations() {
        let (track, key) = demo_keyframe();
        let run = |orientation, width, height| {
            h264_keyframe_to_jpeg(
                track.config(),
                &key,
                orientation,
                SnapshotSize { width, height },
                80,
            )
        };
        for (w, h) in [(Some(0), None), (None, Some(0)), (Some(7681), Some(10))] {
            assert!(
                matches!(run(1, w, h), Err(SnapshotError::InvalidSize(_))),
                "{w:?}x{h:?}"
            );
        }
        assert!(run(1, Some(7680), None).is_ok());
        assert_eq!(
            run(0, None, None),
            Err(SnapshotError::InvalidOrientation(0))
        );
        assert_eq!(
            run(9, None, None),
            Err(SnapshotError::InvalidOrientation(9))
        );
    }

    #[test]
    fn quality_changes_the_size_of_the_file() {
        let (track, key) = demo_keyframe();
        let at = |q| {
            h264_keyframe_to_jpeg(track.config(), &key, 1, SnapshotSize::NATIVE, q)
                .unwrap()
                .bytes
                .len()
        };
        let (low, default, high) = (at(0), at(DEFAULT_QUALITY), at(255));
        assert!(low < default && default < high, "{low} {default} {high}");
    }

    #[test]
    fn h265_and_audio_are_unsupported() {
        let mut hvcc = vec![0u8; 23];
        hvcc[0] = 1;
        hvcc[1] = 1;
        let track = Track::h265(Bytes::from(hvcc), 90_000, 640, 360).unwrap();
        let err =
            keyframe_to_jpeg(&track, &[0, 0, 0, 1, 0x26], 1, SnapshotSize::NATIVE, 80).unwrap_err();
        assert!(
            matches!(&err, SnapshotError::Unsupported(m) if m.contains("H.265")),
            "{err}"
        );
        let (track, key) = demo_keyframe();
        assert!(keyframe_to_jpeg(&track, &key, 1, SnapshotSize::NATIVE, 80).is_ok());
    }

    #[test]
    fn a_predicted_frame_alone_or_no_slice_gives_an_error() {
        let file = demo();
        let (track, _) = demo_keyframe();
        let p = file.frames[0].iter().find(|f| !f.keyframe).unwrap();
        let result = h264_keyframe_to_jpeg(track.config(), &p.data, 1, SnapshotSize::NATIVE, 80);
        println!("P-frame alone: {result:?}");
        assert!(result.is_err());
        // Only an SEI NAL unit.
        let sei = [0, 0, 0, 3, 0x06, 0x05, 0x80];
        assert_eq!(
            h264_keyframe_to_jpeg(track.config(), &sei, 1, SnapshotSize::NATIVE, 80),
            Err(SnapshotError::NoPicture)
        );
    }

    /// A small deterministic generator, so failures reproduce.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn garbage_gives_errors_not_panics() {
        let (track, key) = demo_keyframe();
        let avcc = track.config();
        let mut rng = Lcg(7);
        let size = SnapshotSize {
            width: Some(64),
            height: None,
        };
        let run = |avcc: &[u8], sample: &[u8]| h264_keyframe_to_jpeg(avcc, sample, 6, size, 80);
        // Pure noise, as config and as sample.
        for len in [0, 1, 4, 7, 16, 100, 1000, 10_000] {
            assert!(run(&rng.bytes(len), &key).is_err());
            assert!(run(avcc, &rng.bytes(len)).is_err());
        }
        // Noise behind valid length prefixes, typed as IDR slices.
        for len in [1usize, 2, 10, 100, 5000] {
            let mut sample = (len as u32).to_be_bytes().to_vec();
            let mut body = rng.bytes(len);
            body[0] = 0x65;
            sample.extend_from_slice(&body);
            let _ = run(avcc, &sample);
        }
        // The real keyframe, damaged: truncated, and with bytes overwritten past the slice
        // header (the decoder must cope with corrupt residuals), with its length kept.
        let mut ok = 0;
        for cut in [5, 50, 500, key.len() / 2, key.len() - 1] {
            let mut sample = key.to_vec();
            sample.truncate(cut);
            let _ = run(avcc, &sample);
        }
        for _ in 0..200 {
            let mut sample = key.to_vec();
            for _ in 0..1 + rng.next() % 16 {
                let i = 4 + rng.next() as usize % (sample.len() - 4);
                sample[i] = rng.next() as u8;
            }
            ok += usize::from(run(avcc, &sample).is_ok());
        }
        // The record, damaged.
        for _ in 0..200 {
            let mut record = avcc.to_vec();
            let i = rng.next() as usize % record.len();
            record[i] = rng.next() as u8;
            let _ = run(&record, &key);
        }
        println!("damaged keyframes still decoded: {ok}/200");
    }
}
