//! Track parameters: what a decoder needs to know before the first frame.

use bytes::Bytes;

use crate::codec::{self, CodecError};

/// The codecs Sluice remuxes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC, always written with the `hvc1` sample entry (parameter sets out of band),
    /// which is what Safari and Chromium require.
    H265,
    /// AAC (any object type carried in an AudioSpecificConfig).
    Aac,
}

impl Codec {
    /// Whether this is a video or an audio codec.
    pub fn kind(self) -> TrackKind {
        match self {
            Codec::H264 | Codec::H265 => TrackKind::Video,
            Codec::Aac => TrackKind::Audio,
        }
    }

    /// Short lowercase name, as shown by the API.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Aac => "aac",
        }
    }
}

/// Video or audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// A video track; segments are cut on its keyframes.
    Video,
    /// An audio track; never causes a cut.
    Audio,
}

/// The parameters of one track.
///
/// Built through [`Track::h264`], [`Track::h265`] or [`Track::aac`], which validate the
/// decoder configuration record and derive the RFC 6381 codec string from it, so a `Track`
/// always describes something a player can be told about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    codec: Codec,
    timescale: u32,
    config: Bytes,
    width: u16,
    height: u16,
    sample_rate: u32,
    channels: u16,
    frame_samples: u32,
    codec_string: String,
}

impl Track {
    /// An H.264 track from the body of an `avcC` box (AVCDecoderConfigurationRecord).
    pub fn h264(avcc: Bytes, timescale: u32, width: u16, height: u16) -> Result<Self, CodecError> {
        let codec_string = codec::avc::codec_string(&avcc)?;
        Self::video(Codec::H264, avcc, timescale, width, height, codec_string)
    }

    /// An H.265 track from the body of an `hvcC` box (HEVCDecoderConfigurationRecord).
    pub fn h265(hvcc: Bytes, timescale: u32, width: u16, height: u16) -> Result<Self, CodecError> {
        let codec_string = codec::hevc::codec_string(&hvcc)?;
        Self::video(Codec::H265, hvcc, timescale, width, height, codec_string)
    }

    fn video(
        codec: Codec,
        config: Bytes,
        timescale: u32,
        width: u16,
        height: u16,
        codec_string: String,
    ) -> Result<Self, CodecError> {
        if timescale == 0 {
            return Err(CodecError::ZeroTimescale);
        }
        if width == 0 || height == 0 {
            return Err(CodecError::NoDimensions);
        }
        Ok(Track {
            codec,
            timescale,
            config,
            width,
            height,
            sample_rate: 0,
            channels: 0,
            frame_samples: 0,
            codec_string,
        })
    }

    /// An AAC track from its AudioSpecificConfig. The timescale is the sampling rate.
    pub fn aac(asc: Bytes) -> Result<Self, CodecError> {
        let info = codec::aac::parse(&asc)?;
        Ok(Track {
            codec: Codec::Aac,
            timescale: info.sample_rate,
            width: 0,
            height: 0,
            sample_rate: info.sample_rate,
            channels: info.channels,
            frame_samples: info.frame_samples,
            codec_string: format!("mp4a.40.{}", info.object_type),
            config: asc,
        })
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Video or audio.
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }

    /// Ticks per second of this track's timestamps.
    pub fn timescale(&self) -> u32 {
        self.timescale
    }

    /// The decoder configuration record: `avcC`/`hvcC` body or AudioSpecificConfig.
    pub fn config(&self) -> &Bytes {
        &self.config
    }

    /// Picture width in pixels (0 for audio).
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Picture height in pixels (0 for audio).
    pub fn height(&self) -> u16 {
        self.height
    }

    /// Audio sampling rate in Hz (0 for video).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Audio channel count (0 for video).
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Samples per audio frame (1024 or 960 for AAC; 0 for video): the duration of an audio
    /// frame whose successor has not arrived yet.
    pub fn frame_samples(&self) -> u32 {
        self.frame_samples
    }

    /// The RFC 6381 codec string (`avc1.64001f`, `hvc1.1.6.L93.B0`, `mp4a.40.2`).
    pub fn codec_string(&self) -> &str {
        &self.codec_string
    }
}
