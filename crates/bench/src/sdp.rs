//! The session description a simulated camera answers `DESCRIBE` with.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::clip::Clip;

/// Payload type of the video stream.
pub const VIDEO_PT: u8 = 96;
/// Payload type of the audio stream.
pub const AUDIO_PT: u8 = 97;

/// The control attribute of stream `index`, relative to the `Content-Base`.
pub fn control(index: usize) -> String {
    format!("trackID={index}")
}

/// SDP (RFC 8866) for `clip`: H.264 with its parameter sets in `sprop-parameter-sets`, and AAC
/// (`mpeg4-generic`, `AAC-hbr`) when the clip has audio.
pub fn render(clip: &Clip, session_id: u64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "v=0\r\no=- {session_id} 1 IN IP4 127.0.0.1\r\ns=Sluice bench camera\r\n\
         c=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:sluice-bench rtsp-sim\r\n"
    );
    let v = &clip.video;
    let sets: Vec<String> = v
        .sps
        .iter()
        .chain(&v.pps)
        .map(|p| STANDARD.encode(p))
        .collect();
    let [profile, constraints, level] = v.profile_level_id;
    let _ = write!(
        s,
        "m=video 0 RTP/AVP {VIDEO_PT}\r\na=rtpmap:{VIDEO_PT} H264/90000\r\n\
         a=fmtp:{VIDEO_PT} packetization-mode=1;profile-level-id={profile:02x}{constraints:02x}{level:02x};\
         sprop-parameter-sets={}\r\na=framerate:{:.3}\r\na=control:{}\r\n",
        sets.join(","),
        clip.video_fps(),
        control(0)
    );
    if let Some(a) = &clip.audio {
        let config: String = a.config.iter().map(|b| format!("{b:02x}")).collect();
        let _ = write!(
            s,
            "m=audio 0 RTP/AVP {AUDIO_PT}\r\na=rtpmap:{AUDIO_PT} MPEG4-GENERIC/{}/{}\r\n\
             a=fmtp:{AUDIO_PT} streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;\
             indexlength=3;indexdeltalength=3;config={config}\r\na=control:{}\r\n",
            a.sample_rate,
            a.channels,
            control(1)
        );
    }
    s
}
