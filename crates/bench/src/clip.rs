//! A pre-encoded MP4 clip turned into a loop of RTP payloads, built once and shared by every
//! simulated camera.
//!
//! The file is read with `sluice_media::demux`. Its first H.264 track becomes the video stream
//! (90 kHz RTP clock) and its first AAC track, if any, the audio stream (clocked at its sampling
//! rate). Every access unit is packetized once ([`crate::rtp`]); a camera only stamps sequence
//! numbers, timestamps and its SSRC when it sends. The loop period is the video track's length,
//! so RTP timestamps continue across loops without a jump; audio frames past it are left out.

use std::time::Duration;

use bytes::Bytes;
use sluice_media::Codec;
use sluice_media::demux::{DemuxError, demux};

use crate::rtp;

/// Why a file cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The MP4 file could not be demuxed.
    #[error("cannot demux the clip: {0}")]
    Demux(#[from] DemuxError),
    /// The file has no H.264 track.
    #[error("the clip has no H.264 video track (H.265 is not simulated)")]
    NoVideo,
    /// The `avcC` record is malformed.
    #[error("the clip's avcC record is malformed: {0}")]
    BadConfig(&'static str),
    /// A video frame's length-prefixed NAL units do not add up.
    #[error("video frame {0} has malformed NAL unit lengths")]
    BadFrame(usize),
    /// The clip is too short to loop.
    #[error("the clip's video track is empty or has no duration")]
    Empty,
    /// The first video frame is not a keyframe (or no keyframe has data), so no session could
    /// start decoding.
    #[error("the clip does not start with a keyframe")]
    NoLeadingKeyframe,
}

/// How the clip is packetized.
#[derive(Clone, Copy, Debug)]
pub struct ClipOptions {
    /// Largest RTP payload; larger NAL units are split into FU-A fragments.
    pub max_payload: usize,
    /// Repeat SPS and PPS in band before every keyframe, as most cameras do.
    pub inband_parameter_sets: bool,
    /// Put the send time in every video access unit ([`crate::wallclock`]).
    pub wallclock_sei: bool,
}

impl Default for ClipOptions {
    fn default() -> Self {
        ClipOptions {
            max_payload: 1400,
            inband_parameter_sets: true,
            wallclock_sei: true,
        }
    }
}

/// The H.264 stream's parameters, for the SDP.
#[derive(Clone, Debug)]
pub struct VideoInfo {
    /// Sequence parameter sets (NAL units without start codes or lengths).
    pub sps: Vec<Bytes>,
    /// Picture parameter sets.
    pub pps: Vec<Bytes>,
    /// `profile_idc`, constraint flags and `level_idc`, from the first SPS.
    pub profile_level_id: [u8; 3],
    /// Picture size.
    pub width: u16,
    /// Picture size.
    pub height: u16,
}

/// The AAC stream's parameters, for the SDP.
#[derive(Clone, Debug)]
pub struct AudioInfo {
    /// AudioSpecificConfig.
    pub config: Bytes,
    /// Sampling rate, also the RTP clock rate.
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
}

/// One access unit, ready to send: when within the loop, which stream, its RTP timestamp
/// within the loop, and its RTP payloads in order.
#[derive(Clone, Debug)]
pub struct ClipEvent {
    /// Time from the loop's start at which it is sent (its decode time).
    pub at: Duration,
    /// 0: video, 1: audio.
    pub stream: usize,
    /// A video keyframe (where a session may start).
    pub keyframe: bool,
    /// RTP timestamp offset from the loop's start (the presentation time, in the stream's
    /// clock).
    pub rtp_offset: u32,
    /// The RTP payloads; the last one carries the marker bit.
    pub payloads: Vec<Bytes>,
    /// Where the send-time SEI goes among the payloads (after in-band parameter sets), when
    /// the clip carries one.
    pub wallclock_at: Option<usize>,
}

/// A clip ready to be replayed by any number of cameras.
#[derive(Clone, Debug)]
pub struct Clip {
    /// Video parameters.
    pub video: VideoInfo,
    /// Audio parameters, when the clip has an AAC track.
    pub audio: Option<AudioInfo>,
    /// Loop length.
    pub period: Duration,
    /// Loop length in each stream's RTP clock (index as [`ClipEvent::stream`]).
    pub period_ticks: Vec<u32>,
    /// RTP clock rate of each stream.
    pub clock_rates: Vec<u32>,
    /// Every access unit of one loop, in sending order.
    pub events: Vec<ClipEvent>,
    /// Video frames in one loop.
    pub video_frames: usize,
}

impl Clip {
    /// Reads an MP4 file held in memory.
    pub fn from_mp4(data: &Bytes, options: ClipOptions) -> Result<Clip, ClipError> {
        let file = demux(data)?;
        let vi = file
            .tracks
            .iter()
            .position(|t| t.codec() == Codec::H264)
            .ok_or(ClipError::NoVideo)?;
        let ai = file.tracks.iter().position(|t| t.codec() == Codec::Aac);
        let vtrack = &file.tracks[vi];
        let config = parse_avcc(vtrack.config())?;
        let vscale = i64::from(vtrack.timescale());
        let vframes = &file.frames[vi];
        let first = vframes.first().ok_or(ClipError::Empty)?;
        if !first.keyframe {
            return Err(ClipError::NoLeadingKeyframe);
        }
        let video_start = first.dts;
        let video_ticks = file.track_ends[vi] - video_start;
        if video_ticks <= 0 {
            return Err(ClipError::Empty);
        }
        let period_secs = video_ticks as f64 / vscale as f64;
        let mut clock_rates = vec![90_000];
        let mut period_ticks = vec![rescale(video_ticks, vscale, 90_000) as u32];
        let audio = ai.map(|a| {
            let t = &file.tracks[a];
            clock_rates.push(t.sample_rate());
            period_ticks.push((period_secs * f64::from(t.sample_rate())).round() as u32);
            AudioInfo {
                config: t.config().clone(),
                sample_rate: t.sample_rate(),
                channels: t.channels(),
            }
        });

        let mut events = Vec::new();
        for (n, (track, index)) in file.interleaved().into_iter().enumerate() {
            let frame = &file.frames[track][index];
            let tscale = i64::from(file.tracks[track].timescale());
            // The loop starts with the first video frame; audio outside it (AAC priming before
            // it, a frame that would overlap the next loop's first) is left out. A clip whose
            // length is a multiple of the audio frame duration (8 s at 16 kHz) loses none.
            let secs = (frame.dts - rescale(video_start, vscale, tscale)) as f64 / tscale as f64;
            let duration = if track == vi {
                0.0
            } else {
                f64::from(frame.duration.unwrap_or(file.tracks[track].frame_samples()))
                    / tscale as f64
            };
            if secs < 0.0 || secs + duration > period_secs + 1e-6 || secs >= period_secs {
                continue;
            }
            let at = Duration::from_secs_f64(secs);
            let mut wallclock_at = None;
            let (stream, payloads, rtp_offset) = if track == vi {
                let mut sets = Vec::new();
                if frame.keyframe && options.inband_parameter_sets {
                    sets.extend(config.sps.iter().cloned());
                    sets.extend(config.pps.iter().cloned());
                }
                let mut payloads = rtp::h264_payloads(&sets, options.max_payload);
                if options.wallclock_sei {
                    wallclock_at = Some(payloads.len());
                }
                let mut nals = Vec::new();
                split_nals(&frame.data, config.length_size, &mut nals)
                    .ok_or(ClipError::BadFrame(n))?;
                payloads.extend(rtp::h264_payloads(&nals, options.max_payload));
                let offset = rescale(frame.pts - video_start, vscale, 90_000);
                (0, payloads, offset)
            } else if Some(track) == ai {
                let rate = i64::from(file.tracks[track].sample_rate());
                let offset = rescale(frame.pts, tscale, rate) - rescale(video_start, vscale, rate);
                (1, vec![rtp::aac_payload(&frame.data)], offset)
            } else {
                continue;
            };
            if payloads.is_empty() {
                continue;
            }
            events.push(ClipEvent {
                at,
                stream,
                keyframe: stream == 0 && frame.keyframe,
                rtp_offset: rtp_offset as u32,
                payloads,
                wallclock_at,
            });
        }
        // A session starts at a keyframe: without one nothing could ever be sent.
        if !events.iter().any(|e| e.keyframe) {
            return Err(ClipError::NoLeadingKeyframe);
        }
        Ok(Clip {
            video: VideoInfo {
                profile_level_id: config.profile_level_id,
                sps: config.sps,
                pps: config.pps,
                width: vtrack.width(),
                height: vtrack.height(),
            },
            audio,
            period: Duration::from_secs_f64(period_secs),
            period_ticks,
            clock_rates,
            events,
            video_frames: vframes.len(),
        })
    }

    /// Number of RTP streams (1 or 2).
    pub fn streams(&self) -> usize {
        self.clock_rates.len()
    }

    /// Access units (video frames and audio frames) per second of replay.
    pub fn frames_per_sec(&self) -> f64 {
        self.events.len() as f64 / self.period.as_secs_f64()
    }

    /// Video frames per second of replay.
    pub fn video_fps(&self) -> f64 {
        self.video_frames as f64 / self.period.as_secs_f64()
    }

    /// Payload bits per second of replay (RTP payloads, headers excluded).
    pub fn bitrate(&self) -> f64 {
        let bytes: usize = self
            .events
            .iter()
            .flat_map(|e| e.payloads.iter())
            .map(Bytes::len)
            .sum();
        bytes as f64 * 8.0 / self.period.as_secs_f64()
    }
}

/// `value` ticks of a `from` Hz clock in a `to` Hz clock, rounded down.
fn rescale(value: i64, from: i64, to: i64) -> i64 {
    (i128::from(value) * i128::from(to) / i128::from(from.max(1))) as i64
}

struct AvcConfig {
    length_size: usize,
    profile_level_id: [u8; 3],
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
}

/// Reads an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1).
fn parse_avcc(avcc: &Bytes) -> Result<AvcConfig, ClipError> {
    let head = avcc.get(..6).ok_or(ClipError::BadConfig("too short"))?;
    let length_size = usize::from(head[4] & 3) + 1;
    if length_size == 3 {
        return Err(ClipError::BadConfig("NAL length size of 3"));
    }
    let mut pos = 6;
    let read_sets = |count: usize, pos: &mut usize| -> Result<Vec<Bytes>, ClipError> {
        let mut sets = Vec::with_capacity(count);
        for _ in 0..count {
            let len = avcc
                .get(*pos..*pos + 2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .ok_or(ClipError::BadConfig("truncated parameter set length"))?;
            let end = *pos + 2 + len;
            if len == 0 || end > avcc.len() {
                return Err(ClipError::BadConfig("truncated parameter set"));
            }
            sets.push(avcc.slice(*pos + 2..end));
            *pos = end;
        }
        Ok(sets)
    };
    let sps = read_sets(usize::from(head[5] & 0x1f), &mut pos)?;
    let pps_count = usize::from(*avcc.get(pos).ok_or(ClipError::BadConfig("no PPS count"))?);
    pos += 1;
    let pps = read_sets(pps_count, &mut pos)?;
    let first = sps.first().ok_or(ClipError::BadConfig("no SPS"))?;
    if pps.is_empty() {
        return Err(ClipError::BadConfig("no PPS"));
    }
    let profile_level_id = match first.get(1..4) {
        Some(p) => [p[0], p[1], p[2]],
        None => return Err(ClipError::BadConfig("SPS too short")),
    };
    Ok(AvcConfig {
        length_size,
        profile_level_id,
        sps,
        pps,
    })
}

/// Splits length-prefixed NAL units, appending them to `out`; `None` if the lengths do not add
/// up to the frame.
fn split_nals(frame: &Bytes, length_size: usize, out: &mut Vec<Bytes>) -> Option<()> {
    let mut pos = 0;
    while pos < frame.len() {
        let len = frame
            .get(pos..pos + length_size)?
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let start = pos + length_size;
        let end = start.checked_add(len)?;
        if len == 0 || end > frame.len() {
            return None;
        }
        out.push(frame.slice(start..end));
        pos = end;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avcc() -> Bytes {
        let mut v = vec![
            1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0x00, 0x1f,
        ];
        v.extend_from_slice(&[1, 0, 2, 0x68, 0xee]);
        Bytes::from(v)
    }

    /// Sluice's bundled demo clip: 8 s of H.264 640×360 25 fps (1 s GOP) and AAC 48 kHz.
    fn demo() -> Bytes {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../sluice/assets/demo.mp4");
        Bytes::from(std::fs::read(path).expect("the demo clip"))
    }

    #[test]
    fn a_clip_becomes_a_seamless_loop() {
        let clip = Clip::from_mp4(&demo(), ClipOptions::default()).unwrap();
        assert_eq!((clip.video.width, clip.video.height), (640, 360));
        assert_eq!(clip.period, Duration::from_secs(8));
        assert_eq!(clip.period_ticks, vec![8 * 90_000, 8 * 48_000]);
        assert_eq!(clip.video_frames, 200);
        let video: Vec<&ClipEvent> = clip.events.iter().filter(|e| e.stream == 0).collect();
        assert_eq!(video.len(), 200);
        assert!(video[0].keyframe && video[0].at == Duration::ZERO);
        assert_eq!(video.iter().filter(|e| e.keyframe).count(), 8, "a 1 s GOP");
        // Video timestamps step by 1/25 s and the last frame ends exactly at the loop's end.
        for (i, e) in video.iter().enumerate() {
            assert_eq!(e.rtp_offset, i as u32 * 3600);
        }
        // Events are in sending order and inside the loop; audio never overlaps the next loop.
        assert!(clip.events.windows(2).all(|w| w[0].at <= w[1].at));
        let audio: Vec<&ClipEvent> = clip.events.iter().filter(|e| e.stream == 1).collect();
        assert!(!audio.is_empty());
        assert!(audio.iter().all(|e| e.rtp_offset + 1024 <= 8 * 48_000));
        // Keyframes carry SPS and PPS in band, then the send-time SEI goes before the slices.
        assert_eq!(video[0].wallclock_at, Some(2));
        assert_eq!(video[0].payloads[0][0] & 0x1f, 7);
        assert_eq!(video[0].payloads[1][0] & 0x1f, 8);
        assert_eq!(video[1].wallclock_at, Some(0));
        assert!(
            clip.events
                .iter()
                .all(|e| e.payloads.iter().all(|p| p.len() <= 1400))
        );

        let bare = ClipOptions {
            inband_parameter_sets: false,
            wallclock_sei: false,
            ..ClipOptions::default()
        };
        let clip = Clip::from_mp4(&demo(), bare).unwrap();
        let first = clip.events.iter().find(|e| e.stream == 0).unwrap();
        assert_eq!(first.wallclock_at, None);
        assert!(
            first.payloads.iter().all(|p| !matches!(p[0] & 0x1f, 7 | 8)),
            "no parameter set in band"
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(
            Clip::from_mp4(&Bytes::from_static(b"not an mp4"), ClipOptions::default()).is_err()
        );
        let demo = demo();
        assert!(Clip::from_mp4(&demo.slice(..demo.len() / 2), ClipOptions::default()).is_err());
    }

    #[test]
    fn reads_the_avcc_record() {
        let c = parse_avcc(&avcc()).unwrap();
        assert_eq!(c.length_size, 4);
        assert_eq!(c.profile_level_id, [0x64, 0x00, 0x1f]);
        assert_eq!(c.sps, vec![Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f])]);
        assert_eq!(c.pps, vec![Bytes::from_static(&[0x68, 0xee])]);
        // Every truncation is an error, never a panic.
        let full = avcc();
        for n in 0..full.len() {
            assert!(parse_avcc(&full.slice(..n)).is_err(), "prefix of {n} bytes");
        }
    }

    #[test]
    fn splits_length_prefixed_nal_units() {
        let frame = Bytes::from_static(&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x06]);
        let mut out = Vec::new();
        assert!(split_nals(&frame, 4, &mut out).is_some());
        assert_eq!(out, vec![&[0x65, 1][..], &[0x06][..]]);
        let mut out = Vec::new();
        assert!(split_nals(&frame.slice(..10), 4, &mut out).is_none());
        assert!(split_nals(&Bytes::from_static(&[0, 0, 0, 0]), 4, &mut out).is_none());
        assert!(split_nals(&Bytes::from_static(&[0xff; 3]), 4, &mut out).is_none());
    }
}
