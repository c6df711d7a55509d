//! HLS playlist rendering (RFC 8216bis), from a [`SegmentRing`].
//!
//! The text is deterministic for a given ring, so tests pin it exactly.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ring::{Segment, SegmentRing};
use crate::track::TrackKind;

/// How playlists are rendered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlaylistConfig {
    /// Low-latency HLS: parts, part target, preload hint.
    pub ll_hls: bool,
    /// The part target duration in seconds (`EXT-X-PART-INF:PART-TARGET`).
    pub part_target: f64,
    /// The minimum segment duration, used as the target duration before any segment completes.
    pub min_segment: f64,
}

/// Renders the media playlist, or `None` while the ring holds no segment with content.
pub fn media_playlist(ring: &SegmentRing, cfg: &PlaylistConfig) -> Option<String> {
    let window: Vec<&Segment> = ring
        .segments()
        .iter()
        .filter(|s| s.is_complete() || (cfg.ll_hls && !s.parts.is_empty()))
        .collect();
    let first = window.first()?;
    let target = target_duration(&window, cfg.min_segment);

    let mut out = String::with_capacity(256 + window.len() * 160);
    out.push_str("#EXTM3U\n");
    let _ = writeln!(out, "#EXT-X-VERSION:{}", if cfg.ll_hls { 9 } else { 6 });
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", first.sequence);
    let _ = writeln!(out, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", first.discontinuity);
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    if cfg.ll_hls {
        let _ = writeln!(out, "#EXT-X-PART-INF:PART-TARGET={:.3}", cfg.part_target);
        let _ = writeln!(
            out,
            "#EXT-X-SERVER-CONTROL:PART-HOLD-BACK={:.3}",
            3.0 * cfg.part_target
        );
    }
    out.push_str("#EXT-X-MAP:URI=\"init.mp4\"\n");

    // Parts are listed for the segments that end within three target durations of the live
    // edge, as RFC 8216bis recommends.
    let mut parts_from = window.len();
    let mut tail = 0.0;
    for (i, seg) in window.iter().enumerate().rev() {
        if tail >= 3.0 * target as f64 {
            break;
        }
        parts_from = i;
        tail += seg.duration_so_far();
    }

    let mut prev_discontinuity = first.discontinuity;
    let mut prev_init = first.init.id;
    for (i, seg) in window.iter().enumerate() {
        if seg.discontinuity != prev_discontinuity {
            out.push_str("#EXT-X-DISCONTINUITY\n");
            if seg.init.id != prev_init {
                let _ = writeln!(out, "#EXT-X-MAP:URI=\"init/{}.mp4\"", seg.init.id);
            }
        }
        prev_discontinuity = seg.discontinuity;
        prev_init = seg.init.id;
        let _ = writeln!(
            out,
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            format_date_time(seg.start_time)
        );
        if cfg.ll_hls && i >= parts_from {
            for (p, part) in seg.parts.iter().enumerate() {
                let _ = write!(
                    out,
                    "#EXT-X-PART:DURATION={:.3},URI=\"./segment/{}.{}.m4s\"",
                    part.duration, seg.sequence, p
                );
                if part.independent {
                    out.push_str(",INDEPENDENT=YES");
                }
                out.push('\n');
            }
        }
        if let Some(duration) = seg.duration {
            let _ = writeln!(out, "#EXTINF:{duration:.3},");
            let _ = writeln!(out, "./segment/{}.m4s", seg.sequence);
        }
    }
    if cfg.ll_hls {
        let last = window[window.len() - 1];
        let (s, p) = if last.is_complete() {
            (last.sequence + 1, 0)
        } else {
            (last.sequence, last.parts.len())
        };
        let _ = writeln!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"./segment/{s}.{p}.m4s\""
        );
    }
    Some(out)
}

/// `EXT-X-TARGETDURATION`: the longest segment rounded to the nearest second (RFC 8216bis
/// §4.4.3.1), counting the one in progress, at least 1.
fn target_duration(window: &[&Segment], min_segment: f64) -> u64 {
    let longest = window
        .iter()
        .map(|s| s.duration_so_far())
        .fold(min_segment, f64::max);
    (longest.round() as u64).max(1)
}

/// Renders the multivariant playlist, or `None` while the ring holds no part yet.
pub fn master_playlist(ring: &SegmentRing) -> Option<String> {
    let last = ring.segments().iter().rev().find(|s| !s.parts.is_empty())?;
    let complete: Vec<&Segment> = ring
        .segments()
        .iter()
        .filter(|s| s.is_complete() && s.duration_so_far() > 0.0)
        .collect();
    let bitrate = |s: &Segment| s.size() as f64 * 8.0 / s.duration_so_far().max(0.001);
    let (peak, average) = if complete.is_empty() {
        let b = bitrate(last);
        (b, b)
    } else {
        let peak = complete.iter().map(|s| bitrate(s)).fold(0.0, f64::max);
        let bytes: usize = complete.iter().map(|s| s.size()).sum();
        let secs: f64 = complete.iter().map(|s| s.duration_so_far()).sum();
        (peak, bytes as f64 * 8.0 / secs)
    };
    let init = &last.init;
    let mut out = String::from("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let _ = write!(
        out,
        "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"",
        (peak * 1.2).round() as u64,
        average.round() as u64,
        init.codecs()
    );
    if let Some(video) = init.tracks.iter().find(|t| t.kind() == TrackKind::Video) {
        let _ = write!(out, ",RESOLUTION={}x{}", video.width(), video.height());
    }
    out.push_str("\nplaylist.m3u8\n");
    Some(out)
}

/// Formats a wall-clock time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_date_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let millis = since.subsec_millis();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_467_600_123);
        assert_eq!(format_date_time(t), "2026-11-23T21:00:00.123Z");
        assert_eq!(format_date_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(format_date_time(leap), "2000-02-29T00:00:00.000Z");
    }
}
